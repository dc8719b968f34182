package admin

import (
	"errors"
	"log/slog"
	"time"

	"permsync/directory"
	"permsync/fanout"
	"permsync/store"
)

// Defaults for Options.
const (
	// DefaultAdminPermission is the permission key that grants admin access.
	DefaultAdminPermission = "admin:permissions"
	// DefaultTombstoneTTL outlives Kinde's default (and recommended maximum)
	// access-token lifetime of 24 hours, with an hour to spare.
	DefaultTombstoneTTL = fanout.DefaultTombstoneTTL
)

// Options configure a Service. Zero values take the defaults above.
type Options struct {
	// AdminPermission is the key an actor needs (PERMSYNC_ADMIN_PERMISSION).
	AdminPermission string
	// TombstoneTTL is how long a deleted permission's key stays removed from
	// every session's effective permissions. Set it to at least the longest
	// access-token lifetime of the Kinde application.
	TombstoneTTL time.Duration
	// Directory is the local copy of Kinde's RBAC state the pages read;
	// required.
	Directory *directory.Directory
	// Webhooks, when set, feeds the overview's webhook health.
	Webhooks WebhookStats
	// Holders says who holds a key, locally (the directory). nil: holders
	// are resolved at Kinde when a permission is deleted.
	Holders HolderSource
	// UndoWindow is how long a deletion waits before Kinde is called (Undo
	// cancels it meanwhile); 0 calls Kinde at once. The app passes
	// PERMSYNC_UNDO_WINDOW (default DefaultUndoWindow).
	UndoWindow time.Duration
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

// Service is the admin use cases. It is safe for concurrent use.
type Service struct {
	db       *store.DB
	kinde    KindeAPI
	sessions SessionStore
	pub      Publisher
	fanouts  Fanouts
	log      *slog.Logger
	webhooks WebhookStats
	holders  HolderSource
	tokens   TokenRevoker // nil: only Kinde's session delete

	dir *directory.Directory

	adminKey     string
	undoWindow   time.Duration
	tombstoneTTL time.Duration
}

// NewService returns a Service. db, kc, sessions, pub and fanouts are
// required; fanouts is usually the *fanout.Engine.
func NewService(db *store.DB, kc KindeAPI, sessions SessionStore, pub Publisher, fanouts Fanouts, opts Options) (*Service, error) {
	switch {
	case db == nil:
		return nil, errors.New("admin: NewService: db is nil")
	case kc == nil:
		return nil, errors.New("admin: NewService: kinde client is nil")
	case sessions == nil:
		return nil, errors.New("admin: NewService: session store is nil")
	case pub == nil:
		return nil, errors.New("admin: NewService: publisher is nil")
	case fanouts == nil:
		return nil, errors.New("admin: NewService: fan-out engine is nil")
	case opts.Directory == nil:
		return nil, errors.New("admin: NewService: directory is nil")
	}
	s := &Service{
		db: db, kinde: kc, sessions: sessions, pub: pub, fanouts: fanouts,
		log:          opts.Logger,
		webhooks:     opts.Webhooks,
		holders:      opts.Holders,
		undoWindow:   max(opts.UndoWindow, 0),
		adminKey:     opts.AdminPermission,
		tombstoneTTL: opts.TombstoneTTL,
		dir:          opts.Directory,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.adminKey == "" {
		s.adminKey = DefaultAdminPermission
	}
	if s.tombstoneTTL <= 0 {
		s.tombstoneTTL = DefaultTombstoneTTL
	}
	return s, nil
}

// AdminPermission returns the permission key this service requires.
func (s *Service) AdminPermission() string { return s.adminKey }
