package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestButtonClaimsRefreshOncePerInterval: twenty concurrent clicks get one
// reservation; a click inside the interval gets none; after it, one again.
func TestButtonClaimsRefreshOncePerInterval(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	user := uniq("kp_tabs")
	now := time.Now()
	var yes atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := db.ReserveButtonClaimsRefresh(ctx, user, now, 30*time.Second)
			if err != nil {
				t.Error(err)
			}
			if ok {
				yes.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := yes.Load(); n != 1 {
		t.Fatalf("%d of 20 concurrent clicks reserved; want 1", n)
	}
	if ok, err := db.ReserveButtonClaimsRefresh(ctx, user, now.Add(29*time.Second), 30*time.Second); err != nil || ok {
		t.Fatalf("a click 29 s later reserved = %v, %v; want false", ok, err)
	}
	if ok, err := db.ReserveButtonClaimsRefresh(ctx, user, now.Add(30*time.Second), 30*time.Second); err != nil || !ok {
		t.Fatalf("a click 30 s later reserved = %v, %v; want true", ok, err)
	}
	if ok, err := db.ReserveButtonClaimsRefresh(ctx, user, now.Add(30*time.Second), 0); err != nil || !ok {
		t.Fatalf("with no interval reserved = %v, %v; want true", ok, err)
	}
}

// TestClaimsClearedOnlyMovesForward: the latest start time is kept, inside
// a transaction too.
func TestClaimsClearedOnlyMovesForward(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	user := uniq("kp_clear")
	if at, err := db.ClaimsClearedAt(ctx, user); err != nil || !at.IsZero() {
		t.Fatalf("unknown user: %v, %v; want zero", at, err)
	}
	t1 := time.UnixMilli(time.Now().UnixMilli())
	if err := db.MarkClaimsCleared(ctx, user, t1); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *Tx) error { return tx.MarkClaimsCleared(ctx, user, t1.Add(-time.Minute)) }); err != nil {
		t.Fatal(err)
	}
	if at, err := db.ClaimsClearedAt(ctx, user); err != nil || !at.Equal(t1) {
		t.Fatalf("after an older mark: %v, %v; want %v", at, err, t1)
	}
	// A button reservation does not touch it.
	if _, err := db.ReserveButtonClaimsRefresh(ctx, user, t1, time.Second); err != nil {
		t.Fatal(err)
	}
	t2 := t1.Add(time.Second)
	if err := db.MarkClaimsCleared(ctx, user, t2); err != nil {
		t.Fatal(err)
	}
	if at, err := db.ClaimsClearedAt(ctx, user); err != nil || !at.Equal(t2) {
		t.Fatalf("after a newer mark: %v, %v; want %v", at, err, t2)
	}
}
