package auth

import (
	"context"
	"time"

	"permsync/store"
)

// PermissionState is what the request guard reads on every signed-in request:
// the user's claims epoch and the live tombstones. The database version below
// reads the tables each time; a cached version invalidated by events can
// replace it without touching the guard.
type PermissionState interface {
	UserEpoch(ctx context.Context, userID string) (int64, error)
	Tombstoned(ctx context.Context) (map[string]struct{}, error)
	// TombstonedAsOf is Tombstoned for a caller that read the tombstone
	// version (store.DB.TombstoneVersion) from the database, with the
	// session row: the answer reflects at least that version, even when
	// the change was made by another replica whose notification has not
	// arrived yet.
	TombstonedAsOf(ctx context.Context, version int64) (map[string]struct{}, error)
}

// DBPermissionState reads PermissionState from the database.
type DBPermissionState struct {
	DB *store.DB
}

// UserEpoch returns the user's claims epoch.
func (p DBPermissionState) UserEpoch(ctx context.Context, userID string) (int64, error) {
	return p.DB.UserEpoch(ctx, userID)
}

// Tombstoned returns the permission keys hidden by live tombstones.
func (p DBPermissionState) Tombstoned(ctx context.Context) (map[string]struct{}, error) {
	keys, err := p.DB.LiveTombstoneKeys(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	out := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		out[k] = struct{}{}
	}
	return out, nil
}

// TombstonedAsOf reads the tables, which are always current.
func (p DBPermissionState) TombstonedAsOf(ctx context.Context, _ int64) (map[string]struct{}, error) {
	return p.Tombstoned(ctx)
}
