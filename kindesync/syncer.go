// Package kindesync keeps permsync in step with changes made at Kinde: it
// records received webhooks (verified by handlers/webhooks.go) and acts on
// each once through a durable job of the fan-out engine: tombstoning keys,
// fanning claim refreshes out to holders, bumping epochs and ending
// sessions. It also registers permsync's webhook endpoint at Kinde and keeps
// the permission id → key map current.
package kindesync

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// KindeAPI is what webhook processing asks Kinde. *kinde.Client satisfies it.
type KindeAPI interface {
	AllPermissions(ctx context.Context) ([]kinde.Permission, error)
	AllRoleUsers(ctx context.Context, roleID string) ([]kinde.RoleUser, error)
}

// SessionStore is what webhook processing needs from permsync's sessions.
// *store.DB satisfies it.
type SessionStore interface {
	UsersWithPermission(ctx context.Context, key string) ([]string, error)
	DeleteUserSessions(ctx context.Context, userID string) (int64, error)
}

// Fanouts starts fan-outs and enqueues webhook jobs inside the caller's
// transaction. *fanout.Engine satisfies it.
type Fanouts interface {
	StartTx(ctx context.Context, tx *store.Tx, f *store.Fanout, items []store.FanoutItem) error
	EnqueueWebhookTx(ctx context.Context, tx *store.Tx, webhookID string) error
}

// Directory is what permsync knows of Kinde's users, roles and permissions
// (admin.Service's snapshot: Service.Directory()).
type Directory interface {
	// RememberPermissions records permission ids and keys.
	RememberPermissions(ctx context.Context, perms []kinde.Permission)
	// Invalidate drops the snapshot: the next listing asks Kinde again.
	Invalidate()
	// Permission finds a permission in the last snapshot.
	Permission(id string) (kinde.Permission, bool)
	// Holders returns the members the last snapshot showed holding key.
	Holders(key string) []fanout.AffectedUser
	// RoleKey finds a role's key in the last snapshot, or "".
	RoleKey(id string) string
	// RoleHolders returns the ids of the members the last snapshot showed
	// holding the role key.
	RoleHolders(key string) []string
	// PermissionHolders asks Kinde who holds p (roles and direct grants).
	PermissionHolders(ctx context.Context, p kinde.Permission) ([]fanout.AffectedUser, error)
}

// Options configure a Syncer.
type Options struct {
	// TombstoneTTL is how long a key deleted at Kinde stays removed from
	// every session (default fanout.DefaultTombstoneTTL).
	TombstoneTTL time.Duration
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

// Syncer records and processes Kinde webhooks. It is safe for concurrent use.
type Syncer struct {
	db           *store.DB
	kinde        KindeAPI
	sessions     SessionStore
	pub          events.Publisher
	fanouts      Fanouts
	dir          Directory
	log          *slog.Logger
	tombstoneTTL time.Duration
}

// New returns a Syncer; every argument but opts is required.
func New(db *store.DB, kc KindeAPI, sessions SessionStore, pub events.Publisher, fanouts Fanouts, dir Directory,
	opts Options) (*Syncer, error) {
	if db == nil || kc == nil || sessions == nil || pub == nil || fanouts == nil || dir == nil {
		return nil, errors.New("kindesync: New: db, kinde, sessions, publisher, fan-outs and directory are required")
	}
	s := &Syncer{db: db, kinde: kc, sessions: sessions, pub: pub, fanouts: fanouts, dir: dir, log: opts.Logger,
		tombstoneTTL: opts.TombstoneTTL}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.tombstoneTTL <= 0 {
		s.tombstoneTTL = fanout.DefaultTombstoneTTL
	}
	return s, nil
}

// publishProgress sends a fan-out's counters to the admin topic.
func (s *Syncer) publishProgress(ctx context.Context, fanoutID string) {
	fanout.PublishProgress(ctx, s.db, s.pub, s.log, fanoutID, "", "")
}
