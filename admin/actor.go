package admin

import (
	"context"
	"slices"
	"time"
)

// Actor is the signed-in user performing an admin action.
type Actor struct {
	UserID string
	Email  string
	// Permissions are the actor's effective permission keys: their token's
	// permissions minus the denials that apply, as the request guard
	// computed them.
	Permissions []string
}

// name is how the actor appears in the audit log and on fan-outs.
func (a Actor) name() string {
	if a.Email != "" {
		return a.Email
	}
	return a.UserID
}

// Can reports whether the actor holds the permission key.
func (a Actor) Can(key string) bool { return key != "" && slices.Contains(a.Permissions, key) }

// authorize checks that the actor holds the admin permission and that it is
// not denied to everyone (defence in depth: the guard already applied the
// denials to the actor's session). It returns ErrForbidden otherwise.
func (s *Service) authorize(ctx context.Context, a Actor) error {
	if a.UserID == "" || !a.Can(s.adminKey) {
		return ErrForbidden
	}
	keys, err := s.db.LiveDeniedKeys(ctx, time.Now())
	if err != nil {
		return errInternal(err)
	}
	if slices.Contains(keys, s.adminKey) {
		return ErrForbidden
	}
	return nil
}

// Authorize returns ErrForbidden unless a holds the admin permission. Every
// Service method checks it; handlers call it before admin pages served by
// other packages (the webhooks page).
func (s *Service) Authorize(ctx context.Context, a Actor) error { return s.authorize(ctx, a) }
