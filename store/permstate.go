package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// UserEpoch returns a user's claims epoch; a user never bumped is at 0.
func (db *DB) UserEpoch(ctx context.Context, userID string) (int64, error) {
	var epoch int64
	err := db.QueryRow(ctx, `SELECT epoch FROM user_epochs WHERE user_id = ?`, userID).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("user epoch: %w", err)
	}
	return epoch, nil
}

// BumpUserEpoch advances a user's claims epoch by one and returns the new
// value. Call it only after Kinde's claim cache for the user was invalidated
// (refresh_claims succeeded), so that the refresh it triggers gets new claims.
func (db *DB) BumpUserEpoch(ctx context.Context, userID, reason string) (int64, error) {
	var epoch int64
	err := db.QueryRow(ctx, `INSERT INTO user_epochs (user_id, epoch, changed_at, reason) VALUES (?, 1, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET epoch = user_epochs.epoch + 1, changed_at = excluded.changed_at,
		reason = excluded.reason
		RETURNING epoch`, userID, time.Now().UnixMilli(), reason).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("bump user epoch: %w", err)
	}
	return epoch, nil
}

// Tombstone hides a permission key from every session until ExpiresAt.
type Tombstone struct {
	PermissionKey string
	PermissionID  string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	Reason        string
}

// PutTombstone writes or extends a tombstone.
func (db *DB) PutTombstone(ctx context.Context, t Tombstone) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	_, err := db.Exec(ctx, `INSERT INTO tombstones (permission_key, permission_id, created_at, expires_at, reason)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (permission_key) DO UPDATE SET permission_id = excluded.permission_id,
		expires_at = excluded.expires_at, reason = excluded.reason`,
		t.PermissionKey, t.PermissionID, Millis(t.CreatedAt), Millis(t.ExpiresAt), t.Reason)
	if err != nil {
		return fmt.Errorf("put tombstone: %w", err)
	}
	return nil
}

// LiveTombstoneKeys returns the permission keys whose tombstones have not
// expired at now.
func (db *DB) LiveTombstoneKeys(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT permission_key FROM tombstones WHERE expires_at > ?`, Millis(now))
	if err != nil {
		return nil, fmt.Errorf("live tombstones: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("live tombstones: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}
