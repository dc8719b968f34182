package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// newFanout records a fan-out with the given users and returns its id.
func newFanout(t *testing.T, db *DB, users ...string) string {
	t.Helper()
	ctx := context.Background()
	f := &Fanout{ID: fmt.Sprintf("fo_test_%d", time.Now().UnixNano()), Kind: "permission_deleted",
		ActorID: "kp_admin", PermissionKey: "export:reports"}
	items := make([]FanoutItem, len(users))
	for i, u := range users {
		items[i] = FanoutItem{UserID: u, Reasons: "direct"}
	}
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.CreateFanout(ctx, f, items) }); err != nil {
		t.Fatal(err)
	}
	return f.ID
}

func complete(t *testing.T, db *DB, fid, uid string) bool {
	t.Helper()
	var ok bool
	err := db.InTx(context.Background(), func(tx *Tx) error {
		var err error
		ok, err = tx.CompleteFanoutItem(context.Background(), fid, uid, 1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestFanoutCountersAreExact(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	fid := newFanout(t, db, "u1", "u2", "u3")

	if !complete(t, db, fid, "u1") || complete(t, db, fid, "u1") {
		t.Fatal("an item must be counted exactly once")
	}
	if ok, err := db.FailFanoutItem(ctx, fid, "u2", 3, "Kinde failed with 502."); err != nil || !ok {
		t.Fatalf("fail: %v %v", ok, err)
	}
	if ok, _ := db.FailFanoutItem(ctx, fid, "u1", 1, "late"); ok {
		t.Fatal("a done item must not become failed")
	}
	f, err := db.Fanout(ctx, fid)
	if err != nil || f.Done != 1 || f.Failed != 1 || f.Pending() != 1 || !f.FinishedAt.IsZero() {
		t.Fatalf("fanout = %+v, %v", f, err)
	}
	if !complete(t, db, fid, "u3") {
		t.Fatal("u3")
	}
	if f, _ = db.Fanout(ctx, fid); f.FinishedAt.IsZero() {
		t.Fatal("fan-out should be finished")
	}

	var requeued []FanoutItem
	err = db.InTx(ctx, func(tx *Tx) error {
		var err error
		requeued, err = tx.RequeueFailedFanoutItems(ctx, fid)
		return err
	})
	if err != nil || len(requeued) != 1 || requeued[0].UserID != "u2" || requeued[0].Round != 1 {
		t.Fatalf("requeued = %+v, %v", requeued, err)
	}
	if f, _ = db.Fanout(ctx, fid); f.Failed != 0 || !f.FinishedAt.IsZero() {
		t.Fatalf("after requeue = %+v", f)
	}
	if !complete(t, db, fid, "u2") {
		t.Fatal("requeued item should complete")
	}
	f, _ = db.Fanout(ctx, fid)
	if f.Done != 3 || f.Failed != 0 || f.FinishedAt.IsZero() {
		t.Fatalf("final = %+v", f)
	}
	items, err := db.FanoutItems(ctx, fid)
	if err != nil || len(items) != 3 || items[0].Status != FanoutItemDone {
		t.Fatalf("items = %+v, %v", items, err)
	}
	if _, err := db.Fanout(ctx, "fo_missing"); err != ErrNotFound {
		t.Fatalf("missing = %v", err)
	}
}

func TestEmptyFanoutIsFinished(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	f, err := db.Fanout(context.Background(), newFanout(t, db))
	if err != nil || f.Total != 0 || f.FinishedAt.IsZero() {
		t.Fatalf("fanout = %+v, %v", f, err)
	}
}

func TestEpochsTombstonesAuditKeys(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	user := fmt.Sprintf("kp_epoch_%d", time.Now().UnixNano())
	for want := int64(1); want <= 2; want++ {
		var got int64
		err := db.InTx(ctx, func(tx *Tx) error {
			var err error
			got, err = tx.BumpUserEpoch(ctx, user, "test")
			return err
		})
		if err != nil || got != want {
			t.Fatalf("bump = %d, %v; want %d", got, err, want)
		}
	}
	eps, err := db.UserEpochs(ctx, []string{user, "kp_nobody"})
	if err != nil || eps[user].Epoch != 2 || eps[user].Reason != "test" || len(eps) != 1 {
		t.Fatalf("epochs = %+v, %v", eps, err)
	}

	key := fmt.Sprintf("test:%d", time.Now().UnixNano())
	if err := db.UpsertPermissionKeys(ctx, []PermissionKey{{ID: "pid-" + key, Key: key, Name: "Test"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.MarkPermissionDeleted(ctx, "pid-"+key, key) }); err != nil {
		t.Fatal(err)
	}
	pk, err := db.PermissionKeyByID(ctx, "pid-"+key)
	if err != nil || pk.Key != key || pk.DeletedAt.IsZero() || pk.Name != "Test" {
		t.Fatalf("permission key = %+v, %v", pk, err)
	}

	if err := db.AddAudit(ctx, AuditEntry{ActorID: "kp_a", Actor: "a@x", Action: "test.action", Target: key,
		Outcome: AuditOK, Detail: "done"}); err != nil {
		t.Fatal(err)
	}
	es, err := db.AuditEntries(ctx, 1)
	if err != nil || len(es) != 1 || es[0].Target != key || es[0].ActorID != "kp_a" {
		t.Fatalf("audit = %+v, %v", es, err)
	}
}

// TestCompleteFanoutItemsInBatches: a batch completes and counts only the
// items pending in its round, once each however often it is recorded (a
// job that ran again after a crash), bumps exactly those users' epochs,
// marks every refreshed user's claims cleared, and finishes the fan-out
// with its last item; PendingFanoutUsers and SetFanoutItemJobs agree.
func TestCompleteFanoutItemsInBatches(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	users := make([]string, 1200) // more than one statement's worth
	for i := range users {
		users[i] = fmt.Sprintf("kp_batch%04d", i)
	}
	fid := newFanout(t, db, users...)
	jobs := map[string]int64{}
	for i, u := range users {
		jobs[u] = int64(100 + i/50)
	}
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.SetFanoutItemJobs(ctx, fid, jobs) }); err != nil {
		t.Fatal(err)
	}
	items, err := db.FanoutItems(ctx, fid)
	if err != nil || len(items) != len(users) {
		t.Fatalf("items: %d, %v", len(items), err)
	}
	for _, it := range items {
		if it.JobID != jobs[it.UserID] {
			t.Fatalf("item %s has job %d; want %d", it.UserID, it.JobID, jobs[it.UserID])
		}
	}
	if _, err := db.FailFanoutItem(ctx, fid, users[0], 1, "Kinde failed with 502."); err != nil {
		t.Fatal(err)
	}

	record := func(round int, at time.Time, ids ...string) map[string]int64 {
		t.Helper()
		rs := make([]Refreshed, len(ids))
		for i, id := range ids {
			rs[i] = Refreshed{UserID: id, At: at}
		}
		var epochs map[string]int64
		if err := db.InTx(ctx, func(tx *Tx) error {
			var err error
			epochs, err = tx.CompleteFanoutItems(ctx, fid, round, 1, "permission deleted", rs)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return epochs
	}
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	first := users[:700]
	if got, err := db.PendingFanoutUsers(ctx, fid, 0, first); err != nil || len(got) != 699 || got[0] != users[1] {
		t.Fatalf("pending before = %d (%v), %v; want 699 from %s", len(got), got[:min(1, len(got))], err, users[1])
	}
	if epochs := record(1, at, first...); len(epochs) != 0 {
		t.Fatalf("a batch of another round counted %d users", len(epochs))
	}
	epochs := record(0, at, first...)
	if len(epochs) != 699 || epochs[users[0]] != 0 || epochs[users[1]] != 1 {
		t.Fatalf("first batch counted %d users (failed user %d, next %d); want 699 at epoch 1",
			len(epochs), epochs[users[0]], epochs[users[1]])
	}
	if again := record(0, at.Add(time.Second), users[1:800]...); len(again) != 100 || again[users[700]] != 1 {
		t.Fatalf("a batch recorded again counted %d users; want only the 100 new ones", len(again))
	}
	f, err := db.Fanout(ctx, fid)
	if err != nil || f.Done != 799 || f.Failed != 1 || !f.FinishedAt.IsZero() {
		t.Fatalf("fan-out = %+v, %v; want 799 done, 1 failed, not finished", f, err)
	}
	if pending, _ := db.PendingFanoutUsers(ctx, fid, 0, users); len(pending) != 400 {
		t.Fatalf("%d users pending; want 400", len(pending))
	}
	if cleared, err := db.ClaimsClearedAt(ctx, users[1]); err != nil || !cleared.Equal(at.Add(time.Second)) {
		t.Fatalf("claims cleared at %v, %v; want the later call's start %v", cleared, err, at.Add(time.Second))
	}
	record(0, at, users[800:]...)
	f, _ = db.Fanout(ctx, fid)
	if f.Done != 1199 || f.Failed != 1 || f.FinishedAt.IsZero() {
		t.Fatalf("fan-out = %+v; want 1199 done, 1 failed, finished", f)
	}
	ep, err := db.UserEpochs(ctx, users)
	if err != nil || len(ep) != 1199 {
		t.Fatalf("%d users have an epoch, %v; want 1199", len(ep), err)
	}
	for id, e := range ep {
		if e.Epoch != 1 {
			t.Fatalf("user %s at epoch %d; want 1 (counted once)", id, e.Epoch)
		}
	}
}
