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
	mu      sync.Mutex
	epochs  map[string]int64
	denials []store.Denial
	// version is the denial version (store.DB.DenialVersion).
	version int64
	reads   atomic.Int64
	fail    bool
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

func (f *fakeState) LiveDenials(_ context.Context, now time.Time) ([]store.Denial, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, fmt.Errorf("db down")
	}
	var out []store.Denial
	for _, d := range f.denials {
		if d.SettledAt.IsZero() || d.ExpiresAt.After(now) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeState) DenialVersion(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, fmt.Errorf("db down")
	}
	return f.version, nil
}

// tomb is a settled denial of key for everyone, issued an hour ago.
func tomb(key string, expires time.Time) store.Denial {
	at := time.Now().Add(-time.Hour)
	return store.Denial{PermissionKey: key, CreatedAt: at, SettledAt: at, ExpiresAt: expires}
}

// deniedOf is what d takes from a session of kp_alice in org_acme with old
// claims holding keys.
func deniedOf(d *Denials, keys ...string) map[string]struct{} {
	return d.Denied("kp_alice", "org_acme", time.Now().Add(-2*time.Hour), keys)
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
		denials: []store.Denial{tomb("export:reports", time.Now().Add(time.Hour))}}
	c, b := newTestCache(t, src)
	loads := src.reads.Load()

	for range 100 {
		if e, err := c.UserEpoch(ctx, "kp_alice"); err != nil || e != 2 {
			t.Fatalf("UserEpoch = %d, %v; want 2", e, err)
		}
		if e, _ := c.UserEpoch(ctx, "kp_bob"); e != 0 {
			t.Fatalf("unknown user epoch = %d, want 0", e)
		}
		d, err := c.Denials(ctx)
		dead := deniedOf(d, "export:reports", "read:reports")
		if _, ok := dead["export:reports"]; err != nil || !ok || len(dead) != 1 {
			t.Fatalf("Denials = %v, %v", dead, err)
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
		f.denials = append(f.denials, tomb("read:reports", time.Now().Add(time.Hour)))
	})
	events.NotifyTombstonesChanged(b)
	if d, _ := c.Denials(ctx); len(deniedOf(d, "export:reports", "read:reports")) != 2 {
		t.Fatalf("after TombstonesChanged, denied = %v", deniedOf(d, "export:reports", "read:reports"))
	}
}

// TestPermCacheDenialsAsOfSeesOtherReplicasAtOnce: another replica wrote a
// denial and its notification has not arrived; a request that read the newer
// denial version with its session row still sees the denial, and a request
// at the cached version costs no read.
func TestPermCacheDenialsAsOfSeesOtherReplicasAtOnce(t *testing.T) {
	ctx := context.Background()
	src := &fakeState{epochs: map[string]int64{}, version: 4}
	c, _ := newTestCache(t, src)
	loads := src.reads.Load()
	if d, err := c.DenialsAsOf(ctx, 4); err != nil || len(deniedOf(d, "export:reports")) != 0 {
		t.Fatalf("DenialsAsOf(4) = %v, %v; want none", deniedOf(d, "export:reports"), err)
	}
	if n := src.reads.Load() - loads; n != 0 {
		t.Fatalf("%d reads at the cached version; want 0", n)
	}

	// No event: the change is another replica's.
	src.set(func(f *fakeState) {
		f.version = 5
		f.denials = append(f.denials, tomb("export:reports", time.Now().Add(time.Hour)))
	})
	if d, _ := c.Denials(ctx); len(deniedOf(d, "export:reports")) != 0 {
		t.Fatalf("Denials without an event = %v; want the cached (empty) set", deniedOf(d, "export:reports"))
	}
	d, err := c.DenialsAsOf(ctx, 5)
	if _, ok := deniedOf(d, "export:reports")["export:reports"]; err != nil || !ok {
		t.Fatalf("DenialsAsOf(5) = %v, %v; want export:reports", deniedOf(d, "export:reports"), err)
	}
	loads = src.reads.Load()
	for _, v := range []int64{5, 4, 0} {
		if d, _ := c.DenialsAsOf(ctx, v); len(deniedOf(d, "export:reports")) != 1 {
			t.Fatalf("DenialsAsOf(%d) = %v", v, deniedOf(d, "export:reports"))
		}
	}
	if n := src.reads.Load() - loads; n != 0 {
		t.Fatalf("%d reads once caught up; want 0", n)
	}
}

func TestPermCacheExpiresDenialsInMemory(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	src := &fakeState{epochs: map[string]int64{}, denials: []store.Denial{
		tomb("a", now.Add(time.Minute)),
		tomb("b", now.Add(time.Hour)),
		{PermissionKey: "c", CreatedAt: now, ExpiresAt: now}, // unsettled: no expiry
	}}
	c, _ := newTestCache(t, src)
	if d, _ := c.Denials(ctx); len(deniedOf(d, "a", "b", "c")) != 3 {
		t.Fatalf("denied = %v", deniedOf(d, "a", "b", "c"))
	}
	loads := src.reads.Load()
	c.now = func() time.Time { return now.Add(2 * time.Minute) }
	d, _ := c.Denials(ctx)
	dead := deniedOf(d, "a", "b", "c")
	if _, ok := dead["a"]; ok || len(dead) != 2 {
		t.Fatalf("after a's expiry, denied = %v; want b and c", dead)
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
