package fanout

import (
	"context"
	"errors"
	"time"

	"permsync/store"
)

// SettlingError says that a planned fan-out should wait: some of its users
// are refreshed by fan-out FanoutID once that fan-out's Kinde call, under way
// now, succeeds. Nothing was written; plan again shortly (the webhook worker
// snoozes its job). A permsync edit's call and Kinde's webhook for it race:
// the webhook can be processed before the call's answer is recorded.
type SettlingError struct{ FanoutID string }

func (e *SettlingError) Error() string {
	return "fan-out " + e.FanoutID + " is making its Kinde call; its refreshes may cover these users"
}

// IsSettling reports whether err is (or wraps) a *SettlingError.
func IsSettling(err error) bool {
	_, ok := errors.AsType[*SettlingError](err)
	return ok
}

// settleSnooze is how long a webhook job waits for a Kinde call under way to
// be answered before planning again.
const settleSnooze = time.Second

// StartNeededTx is StartTx for refreshes needed because of a change Kinde
// made at since (a webhook's event time, or when the directory found it).
// A user whose refresh another fan-out already makes (store.Tx.RefreshCovers:
// sent after since, or pending past its Kinde call) is not called again: the
// item is recorded done at once, with a reason naming that fan-out
// (CoveredBy), and gets no job, so the counts stay exact. When wait is set
// and a user's only cover is a fan-out whose Kinde call is under way, it
// returns a *SettlingError before writing anything; without wait such a user
// is refreshed. It returns how many users were covered. The denials are not
// its business: callers write them as before.
func (e *Engine) StartNeededTx(ctx context.Context, tx *store.Tx, f *store.Fanout, items []store.FanoutItem,
	since time.Time, wait bool) (int, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.UserID
	}
	covers, err := tx.RefreshCovers(ctx, ids, since)
	if err != nil {
		return 0, err
	}
	covered := 0
	for i, it := range items {
		c, ok := covers[it.UserID]
		if !ok {
			continue
		}
		if c.Settling {
			if wait {
				return 0, &SettlingError{FanoutID: c.FanoutID}
			}
			continue
		}
		reasons := AddReason(ParseReasons(it.Reasons), CoveredBy(c.FanoutID))
		items[i].Reasons = FormatReasons(reasons)
		items[i].Status = store.FanoutItemDone
		covered++
	}
	return covered, e.StartTx(ctx, tx, f, items)
}
