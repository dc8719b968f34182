package fanout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"permsync/events"
	"permsync/fanout"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// idleEngine opens a test database and an engine that is not started:
// nothing calls Kinde, jobs are only queued.
func idleEngine(tb testing.TB) (*store.DB, *fanout.Engine) {
	tb.Helper()
	db, err := store.Open(context.Background(), store.Options{URL: testsupport.DatabaseURL(tb), DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	kc := kinde.New(kinde.Config{IssuerURL: "http://127.0.0.1:1", ClientID: "c", ClientSecret: "s"})
	eng, err := fanout.New(db, fanout.Deps{Kinde: kc, Events: events.NewBroker()}, fanout.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return db, eng
}

// TestStartNeededTx: a planned fan-out's users whose refresh another
// fan-out makes are recorded done, naming it, and get no job; one whose only
// cover is a Kinde call under way makes the caller wait, or is refreshed
// when it does not.
func TestStartNeededTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, eng := idleEngine(t)
	since := time.Now()
	for _, f := range []*store.Fanout{
		{ID: "fo_calling", Kind: fanout.KindRBACEdit, Phase: store.FanoutPhaseDeleting},
		{ID: "fo_refreshing", Kind: fanout.KindRBACEdit, Phase: store.FanoutPhaseRefreshing},
	} {
		user := map[string]string{"fo_calling": "u_calling", "fo_refreshing": "u_refreshing"}[f.ID]
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.CreateFanout(ctx, f, []store.FanoutItem{{UserID: user}})
		}); err != nil {
			t.Fatal(err)
		}
	}
	plan := func(id string) (*store.Fanout, []store.FanoutItem) {
		return &store.Fanout{ID: id, Kind: fanout.KindWebhook, Reason: "role changed at Kinde"},
			fanout.Items([]fanout.AffectedUser{
				{UserID: "u_calling", Reasons: []fanout.Reason{{Kind: fanout.ReasonRole, RoleKey: "auditor"}}},
				{UserID: "u_refreshing", Reasons: []fanout.Reason{{Kind: fanout.ReasonRole, RoleKey: "auditor"}}},
				{UserID: "u_new", Reasons: []fanout.Reason{{Kind: fanout.ReasonSession}}},
			})
	}

	f, items := plan("fo_wait")
	err := db.InTx(ctx, func(tx *store.Tx) error {
		_, err := eng.StartNeededTx(ctx, tx, f, items, since, true)
		return err
	})
	if se, ok := errors.AsType[*fanout.SettlingError](err); !ok || se.FanoutID != "fo_calling" || !fanout.IsSettling(err) {
		t.Fatalf("waiting: err = %v; want a SettlingError naming fo_calling", err)
	}
	if _, err := db.Fanout(ctx, "fo_wait"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a fan-out that waits was recorded: %v", err)
	}

	f, items = plan("fo_now")
	var covered int
	err = db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		covered, err = eng.StartNeededTx(ctx, tx, f, items, since, false)
		return err
	})
	if err != nil || covered != 1 {
		t.Fatalf("StartNeededTx = %d, %v; want 1 covered", covered, err)
	}
	got, err := db.Fanout(ctx, "fo_now")
	if err != nil || got.Total != 3 || got.Done != 1 || got.Pending() != 2 || !got.FinishedAt.IsZero() {
		t.Fatalf("fan-out = %+v, %v; want 3 users, 1 done", got, err)
	}
	for _, user := range []string{"u_calling", "u_refreshing", "u_new"} {
		it, err := db.FanoutItem(ctx, "fo_now", user)
		if err != nil {
			t.Fatal(err)
		}
		isCovered := user == "u_refreshing"
		if isCovered != (it.Status == store.FanoutItemDone) || isCovered != (it.JobID == 0) {
			t.Errorf("%s: status %s, job %d; want covered %v (done, no job)", user, it.Status, it.JobID, isCovered)
		}
		rs := fanout.ParseReasons(it.Reasons)
		if hasCover := len(rs) > 0 && rs[len(rs)-1] == fanout.CoveredBy("fo_refreshing"); hasCover != isCovered {
			t.Errorf("%s: reasons %q; covered by fo_refreshing %v", user, it.Reasons, isCovered)
		}
		if isCovered && rs[len(rs)-1].Label() != "already refreshed by fan-out fo_refreshing" {
			t.Errorf("the cover reads %q", rs[len(rs)-1].Label())
		}
	}
}
