package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Each user's claim cache at Kinde, as permsync knows it (user_claims).

// ReserveButtonClaimsRefresh reports whether "Refresh session" may call
// refresh_claims for the user now, and if so records that it does. It says
// yes at most once per interval per user, across every replica: concurrent
// clicks from many tabs get one yes. An interval of zero or less always
// says yes.
func (db *DB) ReserveButtonClaimsRefresh(ctx context.Context, userID string, now time.Time, interval time.Duration) (bool, error) {
	res, err := db.Exec(ctx, `INSERT INTO user_claims (user_id, button_at) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET button_at = excluded.button_at
		WHERE user_claims.button_at <= ?`, userID, Millis(now), Millis(now.Add(-max(interval, 0))))
	if err != nil {
		return false, fmt.Errorf("reserve claims refresh: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("reserve claims refresh: %w", err)
	}
	return n > 0, nil
}

// MarkClaimsCleared records that a refresh_claims for the user, started at
// at, succeeded: tokens granted to them afterwards carry claims at least as
// fresh as at. An earlier time than the one recorded changes nothing. No
// fan-out made it ("Refresh session"): see RefreshCovers.
func (db *DB) MarkClaimsCleared(ctx context.Context, userID string, at time.Time) error {
	return markClaimsCleared(ctx, db, userID, at)
}

// MarkClaimsCleared is MarkClaimsCleared inside the transaction.
func (tx *Tx) MarkClaimsCleared(ctx context.Context, userID string, at time.Time) error {
	return markClaimsCleared(ctx, tx, userID, at)
}

func markClaimsCleared(ctx context.Context, q querier, userID string, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO user_claims (user_id, cleared_at) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET cleared_at = CASE
		WHEN excluded.cleared_at > user_claims.cleared_at THEN excluded.cleared_at ELSE user_claims.cleared_at END,
		cleared_by = CASE WHEN excluded.cleared_at > user_claims.cleared_at THEN '' ELSE user_claims.cleared_by END`,
		userID, Millis(at))
	if err != nil {
		return fmt.Errorf("mark claims cleared: %w", err)
	}
	return nil
}

// ClaimsClearedAt returns when the latest successful refresh_claims for the
// user started (zero if none is known).
func (db *DB) ClaimsClearedAt(ctx context.Context, userID string) (time.Time, error) {
	var at int64
	err := db.queryRowPrepared(ctx, `SELECT cleared_at FROM user_claims WHERE user_id = ?`, userID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("claims cleared at: %w", err)
	}
	return FromMillis(at), nil
}
