package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Permission state: each user's claims epoch and the tombstoned permission
// keys (DESIGN §4). The writes the admin fan-out makes come in two forms, on
// *DB and on *Tx, so that an epoch bump can share a transaction with the
// fan-out item it completes and a tombstone with the fan-out it starts; both
// forms run the same statement through a querier.

// UserEpochInfo is a user's claims epoch and when and why it last changed.
type UserEpochInfo struct {
	UserID    string
	Epoch     int64
	ChangedAt time.Time
	Reason    string
}

// UserEpoch returns a user's claims epoch; a user never bumped is at 0.
func (db *DB) UserEpoch(ctx context.Context, userID string) (int64, error) {
	var epoch int64
	err := db.queryRowPrepared(ctx, `SELECT epoch FROM user_epochs WHERE user_id = ?`, userID).Scan(&epoch)
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
	return bumpUserEpoch(ctx, db, userID, reason)
}

// BumpUserEpoch is BumpUserEpoch inside the transaction.
func (tx *Tx) BumpUserEpoch(ctx context.Context, userID, reason string) (int64, error) {
	return bumpUserEpoch(ctx, tx, userID, reason)
}

func bumpUserEpoch(ctx context.Context, q querier, userID, reason string) (int64, error) {
	var epoch int64
	err := q.QueryRow(ctx, `INSERT INTO user_epochs (user_id, epoch, changed_at, reason) VALUES (?, 1, ?, ?)
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

// AllUserEpochs returns every user's claims epoch that was ever bumped, for
// a cache loading its state at start. Users never bumped are absent (0).
func (db *DB) AllUserEpochs(ctx context.Context) (map[string]int64, error) {
	rows, err := db.Query(ctx, `SELECT user_id, epoch FROM user_epochs`)
	if err != nil {
		return nil, fmt.Errorf("all user epochs: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var epoch int64
		if err := rows.Scan(&id, &epoch); err != nil {
			return nil, fmt.Errorf("all user epochs: %w", err)
		}
		out[id] = epoch
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("all user epochs: %w", err)
	}
	return out, nil
}

// Tombstone hides a permission key from every session until ExpiresAt.
type Tombstone struct {
	PermissionKey string
	PermissionID  string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	Reason        string
}

// PutTombstone writes or extends a tombstone. Extending one keeps its
// CreatedAt.
func (db *DB) PutTombstone(ctx context.Context, t Tombstone) error {
	return db.InTx(ctx, func(tx *Tx) error { return putTombstone(ctx, tx, t, false) })
}

// PutTombstone writes or replaces a tombstone inside the transaction.
// Unlike (*DB).PutTombstone, replacing one also moves its CreatedAt to t's.
func (tx *Tx) PutTombstone(ctx context.Context, t Tombstone) error {
	return putTombstone(ctx, tx, t, true)
}

// putTombstone upserts t; on an existing key it replaces the permission id,
// expiry and reason, and with restamp the creation time too. It bumps the
// tombstone version in the same transaction.
func putTombstone(ctx context.Context, q *Tx, t Tombstone, restamp bool) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	stmt := `INSERT INTO tombstones (permission_key, permission_id, created_at, expires_at, reason)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (permission_key) DO UPDATE SET permission_id = excluded.permission_id,
		expires_at = excluded.expires_at, reason = excluded.reason`
	if restamp {
		stmt += `, created_at = excluded.created_at`
	}
	_, err := q.Exec(ctx, stmt, t.PermissionKey, t.PermissionID, Millis(t.CreatedAt), Millis(t.ExpiresAt), t.Reason)
	if err != nil {
		return fmt.Errorf("put tombstone: %w", err)
	}
	return bumpTombstoneVersion(ctx, q)
}

// TombstoneVersion returns the tombstone version: a counter that every
// tombstone write or lift bumps in its own transaction. Sessions are read
// with it (Session.TombstoneVersion), so a cache of the tombstones can tell
// it is older than the database without waiting for a notification. Expiry
// does not bump it: readers drop expired tombstones by their ExpiresAt.
func (db *DB) TombstoneVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := db.queryRowPrepared(ctx, `SELECT tombstone_version FROM perm_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("tombstone version: %w", err)
	}
	return v, nil
}

func bumpTombstoneVersion(ctx context.Context, q querier) error {
	if _, err := q.Exec(ctx, `UPDATE perm_state SET tombstone_version = tombstone_version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("bump tombstone version: %w", err)
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
	var n int64
	err := db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return bumpTombstoneVersion(ctx, tx)
	})
	if err != nil {
		return false, fmt.Errorf("lift tombstone: %w", err)
	}
	return n > 0, nil
}
