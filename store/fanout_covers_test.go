package store

import (
	"context"
	"testing"
	"time"
)

// TestRefreshCovers: which fan-outs meet a refresh needed since a change.
// A call started after it (by a fan-out or "Refresh session"), or one
// pending past its Kinde call, does; one started before it, one pending in an undo window or a refused Kinde call, a failed
// item, or an item itself done by a cover does not; a pending item whose
// Kinde call is under way is reported settling unless something else covers
// the user.
func TestRefreshCovers(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	since := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	create := func(id, phase string, items ...FanoutItem) *Fanout {
		t.Helper()
		f := &Fanout{ID: id, Kind: "rbac_edit", Phase: phase}
		if err := db.InTx(ctx, func(tx *Tx) error { return tx.CreateFanout(ctx, f, items) }); err != nil {
			t.Fatal(err)
		}
		return f
	}
	pending := func(user string) FanoutItem { return FanoutItem{UserID: user} }
	create("fo_wait", FanoutPhaseWaiting, pending("u_wait"))
	create("fo_retry", FanoutPhaseRetrying, pending("u_retry"))
	create("fo_failed", FanoutPhaseFailed, pending("u_kinde_failed"))
	create("fo_del", FanoutPhaseDeleting, pending("u_del"), pending("u_both"))
	create("fo_ref", FanoutPhaseRefreshing, pending("u_both"), pending("u_ref"), pending("u_item_failed"))
	create("fo_plain", "", pending("u_plain"))
	create("fo_sent", "", pending("u_old"), pending("u_new"))
	covered := create("fo_covered", "", FanoutItem{UserID: "u_cov", Status: FanoutItemDone})
	if covered.Total != 1 || covered.Done != 1 || covered.FinishedAt.IsZero() {
		t.Fatalf("a fan-out whose one item is done at its creation = %+v; want counted and finished", covered)
	}
	if ok, err := db.FailFanoutItem(ctx, "fo_ref", "u_item_failed", 1, "gone"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	err := db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.CompleteFanoutItems(ctx, "fo_sent", 0, 1, "test", []Refreshed{
			{UserID: "u_old", At: since.Add(-time.Second)}})
		if err != nil {
			return err
		}
		_, err = tx.CompleteFanoutItems(ctx, "fo_sent", 0, 1, "test", []Refreshed{
			{UserID: "u_new", At: since.Add(time.Second)}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if it, err := db.FanoutItem(ctx, "fo_sent", "u_new"); err != nil || it.Status != FanoutItemDone {
		t.Fatalf("u_new's item = %+v, %v; want done", it, err)
	}

	// "Refresh session" after the change covers too, naming no fan-out.
	if err := db.MarkClaimsCleared(ctx, "u_button", since.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkClaimsCleared(ctx, "u_button_old", since.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	var covers map[string]RefreshCover
	err = db.InTx(ctx, func(tx *Tx) error {
		var err error
		covers, err = tx.RefreshCovers(ctx, []string{"u_wait", "u_retry", "u_kinde_failed", "u_del", "u_both", "u_ref",
			"u_item_failed", "u_plain", "u_old", "u_new", "u_cov", "u_button", "u_button_old", "u_none"}, since)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]RefreshCover{
		"u_del":    {FanoutID: "fo_del", Settling: true},
		"u_both":   {FanoutID: "fo_ref"},
		"u_ref":    {FanoutID: "fo_ref"},
		"u_plain":  {FanoutID: "fo_plain"},
		"u_new":    {FanoutID: "fo_sent"},
		"u_button": {},
	}
	if len(covers) != len(want) {
		t.Errorf("covers = %+v; want %+v", covers, want)
	}
	for user, w := range want {
		if covers[user] != w {
			t.Errorf("%s: cover %+v; want %+v", user, covers[user], w)
		}
	}
}
