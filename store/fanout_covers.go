package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// RefreshCover is another fan-out that already makes a user's refresh_claims.
type RefreshCover struct {
	FanoutID string
	// Settling: the user's only candidate is a pending item of a fan-out
	// whose Kinde call is under way (phase deleting). It covers the user once
	// that call succeeds, and not if Kinde refuses it or it is undone.
	Settling bool
}

// RefreshCovers returns, for each of userIDs whose refresh_claims (needed
// because of a change Kinde made at since) another fan-out already makes,
// that fan-out: one whose item for the user is done with its call sent after
// since, or still pending in a fan-out past its Kinde call (refreshing, or
// with no Kinde call), whose call will be sent later. An item pending in a
// fan-out in its undo window or whose Kinde call failed or is retried does
// not count (it may be undone or never run); one whose Kinde call is under
// way is returned as Settling when nothing else covers the user. Users
// without a cover are absent. One query, however many users.
func (tx *Tx) RefreshCovers(ctx context.Context, userIDs []string, since time.Time) (map[string]RefreshCover, error) {
	out := map[string]RefreshCover{}
	if len(userIDs) == 0 {
		return out, nil
	}
	var in string
	var list any
	if tx.db.dialect == Postgres {
		in, list = `= ANY(?::text[])`, userIDs
	} else {
		b, err := json.Marshal(userIDs)
		if err != nil {
			return nil, fmt.Errorf("refresh covers: %w", err)
		}
		in, list = `IN (SELECT value FROM json_each(?))`, string(b)
	}
	// Two halves, each an index range on (user_id, status, sent_at): the
	// done items sent after since (few: the others are skipped in the index,
	// however long a user's history), and the pending ones with their
	// fan-out's phase.
	rows, err := tx.Query(ctx, `SELECT user_id, fanout_id, '' FROM fanout_items
		WHERE user_id `+in+` AND status = ? AND sent_at > ?
		UNION ALL
		SELECT i.user_id, i.fanout_id, f.phase FROM fanout_items i JOIN fanouts f ON f.id = i.fanout_id
		WHERE i.user_id `+in+` AND i.status = ? AND f.phase IN ('', ?, ?)
		ORDER BY 1, 2`,
		list, FanoutItemDone, Millis(since), list, FanoutItemPending, FanoutPhaseRefreshing, FanoutPhaseDeleting)
	if err != nil {
		return nil, fmt.Errorf("refresh covers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var user, fanout, phase string
		if err := rows.Scan(&user, &fanout, &phase); err != nil {
			return nil, fmt.Errorf("refresh covers: %w", err)
		}
		settling := phase == FanoutPhaseDeleting
		if prev, ok := out[user]; ok && (settling || !prev.Settling) {
			continue // keep the first cover that is not settling
		}
		out[user] = RefreshCover{FanoutID: fanout, Settling: settling}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("refresh covers: %w", err)
	}
	return out, nil
}
