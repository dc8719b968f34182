package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file complements permstate.go with the transactional and listing
// forms the admin fan-out needs: bumping an epoch in the same transaction
// that marks a fan-out item done, writing a tombstone in the same
// transaction that records the fan-out, and the admin pages' listings.

// UserEpochInfo is a user's claims epoch and when and why it last changed.
type UserEpochInfo struct {
	UserID    string
	Epoch     int64
	ChangedAt time.Time
	Reason    string
}

// BumpUserEpoch advances a user's claims epoch by one inside the transaction
// and returns the new value. See (*DB).BumpUserEpoch.
func (tx *Tx) BumpUserEpoch(ctx context.Context, userID, reason string) (int64, error) {
	var epoch int64
	err := tx.QueryRow(ctx, `INSERT INTO user_epochs (user_id, epoch, changed_at, reason) VALUES (?, 1, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET epoch = user_epochs.epoch + 1, changed_at = excluded.changed_at,
		reason = excluded.reason
		RETURNING epoch`, userID, time.Now().UnixMilli(), reason).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("bump user epoch: %w", err)
	}
	return epoch, nil
}

// UserEpochs returns the epochs of the given users that were ever bumped,
// keyed by user id. Users never bumped are absent (their epoch is 0).
func (db *DB) UserEpochs(ctx context.Context, userIDs []string) (map[string]UserEpochInfo, error) {
	out := make(map[string]UserEpochInfo, len(userIDs))
	for chunk := range slices.Chunk(userIDs, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := db.Query(ctx, `SELECT user_id, epoch, changed_at, reason FROM user_epochs
			WHERE user_id IN (`+sqlMarks(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("user epochs: %w", err)
		}
		for rows.Next() {
			var e UserEpochInfo
			var changed int64
			if err := rows.Scan(&e.UserID, &e.Epoch, &changed, &e.Reason); err != nil {
				rows.Close()
				return nil, fmt.Errorf("user epochs: %w", err)
			}
			e.ChangedAt = FromMillis(changed)
			out[e.UserID] = e
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("user epochs: %w", err)
		}
	}
	return out, nil
}

// PutTombstone writes or extends a tombstone inside the transaction. See
// (*DB).PutTombstone.
func (tx *Tx) PutTombstone(ctx context.Context, t Tombstone) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	_, err := tx.Exec(ctx, `INSERT INTO tombstones (permission_key, permission_id, created_at, expires_at, reason)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (permission_key) DO UPDATE SET permission_id = excluded.permission_id,
		created_at = excluded.created_at, expires_at = excluded.expires_at, reason = excluded.reason`,
		t.PermissionKey, t.PermissionID, Millis(t.CreatedAt), Millis(t.ExpiresAt), t.Reason)
	if err != nil {
		return fmt.Errorf("put tombstone: %w", err)
	}
	return nil
}

// LiveTombstones returns the tombstones that have not expired at now, newest
// first.
func (db *DB) LiveTombstones(ctx context.Context, now time.Time) ([]Tombstone, error) {
	rows, err := db.Query(ctx, `SELECT permission_key, permission_id, created_at, expires_at, reason
		FROM tombstones WHERE expires_at > ? ORDER BY created_at DESC, permission_key`, Millis(now))
	if err != nil {
		return nil, fmt.Errorf("live tombstones: %w", err)
	}
	defer rows.Close()
	var out []Tombstone
	for rows.Next() {
		var t Tombstone
		var created, expires int64
		if err := rows.Scan(&t.PermissionKey, &t.PermissionID, &created, &expires, &t.Reason); err != nil {
			return nil, fmt.Errorf("live tombstones: %w", err)
		}
		t.CreatedAt, t.ExpiresAt = FromMillis(created), FromMillis(expires)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("live tombstones: %w", err)
	}
	return out, nil
}

// ExpireTombstones deletes the tombstones that expired at or before now and
// reports how many.
func (db *DB) ExpireTombstones(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.Exec(ctx, `DELETE FROM tombstones WHERE expires_at <= ?`, Millis(now))
	if err != nil {
		return 0, fmt.Errorf("expire tombstones: %w", err)
	}
	return res.RowsAffected()
}

// LiftTombstone deletes the tombstone of a key if it was written for the
// permission id given (so a newer tombstone for the same key survives). It
// reports whether one was deleted. An empty permissionID lifts whatever
// tombstone the key has.
func (db *DB) LiftTombstone(ctx context.Context, key, permissionID string) (bool, error) {
	q := `DELETE FROM tombstones WHERE permission_key = ?`
	args := []any{key}
	if permissionID != "" {
		q += ` AND permission_id = ?`
		args = append(args, permissionID)
	}
	res, err := db.Exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("lift tombstone: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// sqlMarks returns "?, ?, …" with n marks, for an IN list.
func sqlMarks(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
