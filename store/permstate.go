package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Permission state: each user's claims epoch (this file) and the denials
// (denials.go). The writes the admin fan-out makes come in two forms, on *DB
// and on *Tx, so that an epoch bump can share a transaction with the fan-out
// item it completes and a denial with the fan-out it starts; both forms run
// the same statement through a querier.

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
