package store

import (
	"context"
	"fmt"
)

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
