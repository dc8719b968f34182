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

	"permsync/directory"
	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// KindeAPI is what webhook processing asks Kinde: the directory's targeted
// re-reads. *kinde.Client satisfies it.
type KindeAPI interface {
	directory.Kinde
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
	// StartNeededTx starts a fan-out of refreshes needed since a change at
	// Kinde, leaving out users another fan-out already refreshes after it.
	StartNeededTx(ctx context.Context, tx *store.Tx, f *store.Fanout, items []store.FanoutItem, since time.Time,
		wait bool) (covered int, err error)
	EnqueueWebhookTx(ctx context.Context, tx *store.Tx, webhookID string) error
}

// Directory is the local copy of Kinde's RBAC state. *directory.Directory
// satisfies it.
type Directory interface {
	// Prepare turns an event into the directory's update (re-reading Kinde
	// for what the event leaves unsaid).
	Prepare(ctx context.Context, kc directory.Kinde, ev *kinde.Event) (*directory.Update, error)
	AllHolders(ctx context.Context, key string) ([]directory.Holder, error)
	RoleHolderIDs(ctx context.Context, roleID string) ([]string, error)
	PermissionByID(ctx context.Context, id string) (*directory.Permission, error)
	RoleByID(ctx context.Context, id string) (*directory.Role, error)
}

// PermissionKeys keeps the permission id → key map that permission.deleted
// needs (the event carries only the id). admin.Service.PermissionKeys()
// satisfies it.
type PermissionKeys interface {
	RememberPermissions(ctx context.Context, perms []kinde.Permission)
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
	keys         PermissionKeys
	log          *slog.Logger
	tombstoneTTL time.Duration
	refusals     *refusalSampler // which refused deliveries get a row (refusals.go)
}

// New returns a Syncer; every argument but opts is required.
func New(db *store.DB, kc KindeAPI, sessions SessionStore, pub events.Publisher, fanouts Fanouts, dir Directory,
	keys PermissionKeys, opts Options) (*Syncer, error) {
	if db == nil || kc == nil || sessions == nil || pub == nil || fanouts == nil || dir == nil || keys == nil {
		return nil, errors.New("kindesync: New: db, kinde, sessions, publisher, fan-outs, directory and permission keys are required")
	}
	s := &Syncer{db: db, kinde: kc, sessions: sessions, pub: pub, fanouts: fanouts, dir: dir, keys: keys, log: opts.Logger,
		tombstoneTTL: opts.TombstoneTTL, refusals: newRefusalSampler(refusalRate, refusalBurst)}
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
