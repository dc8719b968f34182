package fanout_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"permsync/fanout"
	"permsync/store"
)

// BenchmarkStartNeeded measures the transaction that records a webhook's
// fan-out to 5,000 users and queues their jobs: StartTx, as before
// coalescing, then StartNeededTx with the one query that finds covering
// fan-outs, when an earlier fan-out refreshed every user before the change
// (nobody covered: each user's latest refresh is read and dismissed) and
// when one still pending refreshes every user (everybody covered, no jobs). The
// engine is not started: nothing calls Kinde.
func BenchmarkStartNeeded(b *testing.B) {
	const users = 5000
	ctx := context.Background()
	db, eng := idleEngine(b)
	ids := make([]string, users)
	for i := range ids {
		ids[i] = fmt.Sprintf("kp_%032x", 0xc0a1e5ce+i)
	}
	items := func() []store.FanoutItem {
		out := make([]store.FanoutItem, users)
		for i, id := range ids {
			out[i] = store.FanoutItem{UserID: id, Email: fmt.Sprintf("u%05d@acme.test", i), Reasons: "role:analyst"}
		}
		return out
	}
	// Every user refreshed an hour ago, before the change.
	old := &store.Fanout{ID: fanout.NewID(), Kind: fanout.KindWebhook}
	done := make([]store.Refreshed, users)
	for i, id := range ids {
		done[i] = store.Refreshed{UserID: id, At: time.Now().Add(-time.Hour)}
	}
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateFanout(ctx, old, items()); err != nil {
			return err
		}
		_, err := tx.CompleteFanoutItems(ctx, old.ID, 0, 1, "bench", done)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	since := time.Now().Add(-time.Minute)
	run := func(b *testing.B, start func(tx *store.Tx, f *store.Fanout, items []store.FanoutItem) (int, error), want int) {
		for b.Loop() {
			b.StopTimer()
			f, its := &store.Fanout{ID: fanout.NewID(), Kind: fanout.KindWebhook, Reason: "bench"}, items()
			b.StartTimer()
			var covered int
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				var err error
				covered, err = start(tx, f, its)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if covered != want {
				b.Fatalf("covered %d; want %d", covered, want)
			}
			// Finished before the next one, as if refreshed before the
			// change: history the next query passes over.
			if _, err := db.Exec(ctx, `UPDATE fanout_items SET status = ? WHERE fanout_id = ?`,
				store.FanoutItemDone, f.ID); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Exec(ctx, `UPDATE fanouts SET done = total, finished_at = ? WHERE id = ?`,
				time.Now().UnixMilli(), f.ID); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	needed := func(tx *store.Tx, f *store.Fanout, its []store.FanoutItem) (int, error) {
		return eng.StartNeededTx(ctx, tx, f, its, since, true)
	}
	b.Run("StartTx", func(b *testing.B) {
		run(b, func(tx *store.Tx, f *store.Fanout, its []store.FanoutItem) (int, error) {
			return 0, eng.StartTx(ctx, tx, f, its)
		}, 0)
	})
	b.Run("StartNeededTx/none-covered", func(b *testing.B) { run(b, needed, 0) })
	// A fan-out past its Kinde call with every user pending covers them all.
	pending := &store.Fanout{ID: fanout.NewID(), Kind: fanout.KindRBACEdit, Phase: store.FanoutPhaseRefreshing}
	if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.CreateFanout(ctx, pending, items()) }); err != nil {
		b.Fatal(err)
	}
	b.Run("StartNeededTx/all-covered", func(b *testing.B) { run(b, needed, users) })
	// The cover query alone, every user covered.
	b.Run("RefreshCovers/all-covered", func(b *testing.B) {
		for b.Loop() {
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				covers, err := tx.RefreshCovers(ctx, ids, since)
				if err == nil && len(covers) != users {
					b.Fatalf("%d covers; want %d", len(covers), users)
				}
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
