package auth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"permsync/events"
	"permsync/store"
)

// fakeState is a PermStateSource in memory that counts reads.
type fakeState struct {
	mu     sync.Mutex
	epochs map[string]int64
	tombs  []store.Tombstone
	// tombVersion is the tombstone version (store.DB.TombstoneVersion).
	tombVersion int64
	reads       atomic.Int64
	fail        bool
}

func (f *fakeState) AllUserEpochs(context.Context) (map[string]int64, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, fmt.Errorf("db down")
	}
	out := map[string]int64{}
	for k, v := range f.epochs {
		out[k] = v
	}
	return out, nil
}

func (f *fakeState) UserEpoch(_ context.Context, id string) (int64, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, fmt.Errorf("db down")
	}
	return f.epochs[id], nil
}

func (f *fakeState) LiveTombstones(_ context.Context, now time.Time) ([]store.Tombstone, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, fmt.Errorf("db down")
	}
	var out []store.Tombstone
	for _, t := range f.tombs {
		if t.ExpiresAt.After(now) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeState) TombstoneVersion(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, fmt.Errorf("db down")
	}
	return f.tombVersion, nil
}

func (f *fakeState) set(fn func(*fakeState)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func newTestCache(t *testing.T, src *fakeState, opts ...events.Option) (*PermCache, *events.Broker) {
	t.Helper()
	b := events.NewBroker(opts...)
	c, err := NewPermCache(context.Background(), src, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, b
}

func TestPermCacheServesFromMemoryUntilToldOtherwise(t *testing.T) {
	ctx := context.Background()
	src := &fakeState{epochs: map[string]int64{"kp_alice": 2},
		tombs: []store.Tombstone{{PermissionKey: "export:reports", ExpiresAt: time.Now().Add(time.Hour)}}}
	c, b := newTestCache(t, src)
	loads := src.reads.Load()

	for range 100 {
		if e, err := c.UserEpoch(ctx, "kp_alice"); err != nil || e != 2 {
			t.Fatalf("UserEpoch = %d, %v; want 2", e, err)
		}
		if e, _ := c.UserEpoch(ctx, "kp_bob"); e != 0 {
			t.Fatalf("unknown user epoch = %d, want 0", e)
		}
		dead, err := c.Tombstoned(ctx)
		if _, ok := dead["export:reports"]; err != nil || !ok || len(dead) != 1 {
			t.Fatalf("Tombstoned = %v, %v", dead, err)
		}
	}
	if n := src.reads.Load() - loads; n != 0 {
		t.Fatalf("%d database reads on the hot path with nothing changed; want 0", n)
	}

	// A change without an event is not seen (the cache really is a cache)...
	src.set(func(f *fakeState) { f.epochs["kp_alice"] = 3 })
	if e, _ := c.UserEpoch(ctx, "kp_alice"); e != 2 {
		t.Fatalf("epoch changed without an event: %d", e)
	}
	// ...and the event makes the very next read see it, with one re-read.
	events.NotifyEpochChanged(b, "kp_alice")
	if e, _ := c.UserEpoch(ctx, "kp_alice"); e != 3 {
		t.Fatalf("after EpochChanged, epoch = %d; want 3", e)
	}
	if n := src.reads.Load() - loads; n != 1 {
		t.Fatalf("%d reads for one epoch change; want 1", n)
	}

	src.set(func(f *fakeState) {
		f.tombs = append(f.tombs, store.Tombstone{PermissionKey: "read:reports", ExpiresAt: time.Now().Add(time.Hour)})
	})
	events.NotifyTombstonesChanged(b)
	if dead, _ := c.Tombstoned(ctx); len(dead) != 2 {
		t.Fatalf("after TombstonesChanged, tombstones = %v", dead)
	}
}

// TestPermCacheTombstonedAsOfSeesOtherReplicasAtOnce: another replica wrote a
// tombstone and its notification has not arrived; a request that read the
// newer tombstone version with its session row still sees the tombstone, and
// a request at the cached version costs no read.
func TestPermCacheTombstonedAsOfSeesOtherReplicasAtOnce(t *testing.T) {
	ctx := context.Background()
	src := &fakeState{epochs: map[string]int64{}, tombVersion: 4}
	c, _ := newTestCache(t, src)
	loads := src.reads.Load()
	if dead, err := c.TombstonedAsOf(ctx, 4); err != nil || len(dead) != 0 {
		t.Fatalf("TombstonedAsOf(4) = %v, %v; want none", dead, err)
	}
	if n := src.reads.Load() - loads; n != 0 {
		t.Fatalf("%d reads at the cached version; want 0", n)
	}

	// No event: the change is another replica's.
	src.set(func(f *fakeState) {
		f.tombVersion = 5
		f.tombs = append(f.tombs, store.Tombstone{PermissionKey: "export:reports", ExpiresAt: time.Now().Add(time.Hour)})
	})
	if dead, _ := c.Tombstoned(ctx); len(dead) != 0 {
		t.Fatalf("Tombstoned without an event = %v; want the cached (empty) set", dead)
	}
	dead, err := c.TombstonedAsOf(ctx, 5)
	if _, ok := dead["export:reports"]; err != nil || !ok {
		t.Fatalf("TombstonedAsOf(5) = %v, %v; want export:reports", dead, err)
	}
	loads = src.reads.Load()
	for _, v := range []int64{5, 4, 0} {
		if dead, _ := c.TombstonedAsOf(ctx, v); len(dead) != 1 {
			t.Fatalf("TombstonedAsOf(%d) = %v", v, dead)
		}
	}
	if n := src.reads.Load() - loads; n != 0 {
		t.Fatalf("%d reads once caught up; want 0", n)
	}
}

func TestPermCacheExpiresTombstonesInMemory(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	src := &fakeState{epochs: map[string]int64{}, tombs: []store.Tombstone{
		{PermissionKey: "a", ExpiresAt: now.Add(time.Minute)},
		{PermissionKey: "b", ExpiresAt: now.Add(time.Hour)},
	}}
	c, _ := newTestCache(t, src)
	if dead, _ := c.Tombstoned(ctx); len(dead) != 2 {
		t.Fatalf("tombstones = %v", dead)
	}
	loads := src.reads.Load()
	c.now = func() time.Time { return now.Add(2 * time.Minute) }
	dead, _ := c.Tombstoned(ctx)
	if _, ok := dead["a"]; ok || len(dead) != 1 {
		t.Fatalf("after a's expiry, tombstones = %v; want only b", dead)
	}
	if src.reads.Load() != loads {
		t.Fatal("expiry re-read the database")
	}
}

func TestPermCacheReloadsAllWhenEventsMayBeLost(t *testing.T) {
	ctx := context.Background()
	src := &fakeState{epochs: map[string]int64{}}
	c, b := newTestCache(t, src, events.WithBuffer(2))
	src.set(func(f *fakeState) {
		for i := range 5 {
			f.epochs[fmt.Sprintf("kp_%d", i)] = int64(i + 1)
		}
	})
	for i := range 5 { // overflows the buffer of 2: the oldest three are dropped
		events.NotifyEpochChanged(b, fmt.Sprintf("kp_%d", i))
	}
	for i := range 5 {
		if e, _ := c.UserEpoch(ctx, fmt.Sprintf("kp_%d", i)); e != int64(i+1) {
			t.Fatalf("kp_%d epoch = %d after a lossy burst; want %d", i, e, i+1)
		}
	}
}

func TestPermCacheRetriesAfterAFailedReread(t *testing.T) {
	ctx := context.Background()
	src := &fakeState{epochs: map[string]int64{"kp_a": 1}}
	c, b := newTestCache(t, src)
	src.set(func(f *fakeState) { f.fail, f.epochs["kp_a"] = true, 2 })
	events.NotifyEpochChanged(b, "kp_a")
	if _, err := c.UserEpoch(ctx, "kp_a"); err == nil {
		t.Fatal("no error while the database is down")
	}
	src.set(func(f *fakeState) { f.fail = false })
	if e, err := c.UserEpoch(ctx, "kp_a"); err != nil || e != 2 {
		t.Fatalf("after recovery: %d, %v; want 2 (the pending change was kept)", e, err)
	}
}

func TestPermCacheConcurrentReadersSeePublishedChanges(t *testing.T) {
	ctx := context.Background()
	src := &fakeState{epochs: map[string]int64{"kp_a": 0}}
	c, b := newTestCache(t, src)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Run(runCtx)
	for i := 1; i <= 200; i++ {
		src.set(func(f *fakeState) { f.epochs["kp_a"] = int64(i) })
		events.NotifyEpochChanged(b, "kp_a")
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if e, err := c.UserEpoch(ctx, "kp_a"); err != nil || e < int64(i) {
					t.Errorf("read after publish %d saw %d (%v)", i, e, err)
				}
			})
		}
		wg.Wait()
	}
}
