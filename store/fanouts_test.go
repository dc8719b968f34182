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
