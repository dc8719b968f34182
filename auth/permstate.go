package auth

import (
	"context"
	"time"

	"permsync/store"
)

// PermissionState is what the request guard reads on every signed-in request:
// the user's claims epoch and the live denials. The database version below
// reads the tables each time; a cached version invalidated by events can
// replace it without touching the guard.
type PermissionState interface {
	UserEpoch(ctx context.Context, userID string) (int64, error)
	Denials(ctx context.Context) (*Denials, error)
	// DenialsAsOf is Denials for a caller that read the denial version
	// (store.DB.DenialVersion) from the database, with the session row:
	// the answer reflects at least that version, even when the change was
	// made by another replica whose notification has not arrived yet.
	DenialsAsOf(ctx context.Context, version int64) (*Denials, error)
}

// DBPermissionState reads PermissionState from the database.
type DBPermissionState struct {
	DB *store.DB
}

// UserEpoch returns the user's claims epoch.
func (p DBPermissionState) UserEpoch(ctx context.Context, userID string) (int64, error) {
	return p.DB.UserEpoch(ctx, userID)
}

// Denials returns the live denials.
func (p DBPermissionState) Denials(ctx context.Context) (*Denials, error) {
	now := time.Now()
	ds, err := p.DB.LiveDenials(ctx, now)
	if err != nil {
		return nil, err
	}
	return NewDenials(ds, now), nil
}

// DenialsAsOf reads the tables, which are always current.
func (p DBPermissionState) DenialsAsOf(ctx context.Context, _ int64) (*Denials, error) {
	return p.Denials(ctx)
}
