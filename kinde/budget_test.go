package kinde

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"permsync/internal/testsupport"
)

// manualBudget is a budget whose turns the test releases one at a time.
func manualBudget() (*budget, chan struct{}) {
	tick := make(chan struct{})
	return &budget{next: func() { <-tick }}, tick
}

// queued waits until n requests wait in b.
func (b *budget) waitQueued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		q := b.queuedLocked()
		b.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued; want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBudgetServesTheMostUrgentLaneFirst: a burst of sync calls and fan-out
// calls is queued; an interactive call that arrives after them gets the next
// turn, then the fan-out calls, then the sync calls, each lane in arrival
// order.
func TestBudgetServesTheMostUrgentLaneFirst(t *testing.T) {
	b, tick := manualBudget()
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	start := func(name string, p Priority) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.wait(context.Background(), p); err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}()
	}
	queued := 0
	for _, c := range []struct {
		name string
		p    Priority
	}{{"sync1", PrioritySync}, {"sync2", PrioritySync}, {"fan1", PriorityFanout}, {"sync3", PrioritySync},
		{"fan2", PriorityFanout}, {"click", PriorityInteractive}} {
		start(c.name, c.p)
		queued++
		b.waitQueued(t, queued) // arrival order is the order above
	}
	for i := range queued { // one turn at a time, each recorded before the next
		tick <- struct{}{}
		for {
			mu.Lock()
			n := len(order)
			mu.Unlock()
			if n > i {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	want := "click fan1 fan2 sync1 sync2 sync3"
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("served %q; want %q", got, want)
	}
	testsupport.Eventually(t, 0, "the granter to stop with nobody waiting", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return !b.running
	})
}

// TestBudgetCancelledWaiterLeavesTheQueue: a waiter whose context ends is
// removed and does not take a turn from the next one.
func TestBudgetCancelledWaiterLeavesTheQueue(t *testing.T) {
	b, tick := manualBudget()
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { gone <- b.wait(ctx, PriorityInteractive) }()
	b.waitQueued(t, 1)
	got := make(chan error, 1)
	go func() { got <- b.wait(context.Background(), PrioritySync) }()
	b.waitQueued(t, 2)
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait = %v; want context.Canceled", err)
	}
	b.waitQueued(t, 1)
	tick <- struct{}{}
	if err := <-got; err != nil {
		t.Fatalf("sync wait = %v", err)
	}
}

func TestPriorityOf(t *testing.T) {
	ctx := context.Background()
	if p := PriorityOf(ctx); p != PriorityInteractive {
		t.Fatalf("no lane = %v; want interactive", p)
	}
	if p := PriorityOf(WithPriority(ctx, PriorityFanout)); p != PriorityFanout {
		t.Fatalf("fanout lane = %v", p)
	}
	if p := PriorityOf(WithPriority(ctx, Priority(42))); p != PrioritySync {
		t.Fatalf("unknown lane = %v; want sync", p)
	}
}

// TestClientInteractiveCallOvertakesQueuedSyncCalls drives the real client
// at 1 request per second: while sync calls wait for their turns, an
// interactive call is sent and reaches the server before every sync call
// that was still waiting.
func TestClientInteractiveCallOvertakesQueuedSyncCalls(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		mu.Lock()
		seen = append(seen, r.URL.Query().Get("who"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	c := f.client(Config{Rate: 1})
	call := func(ctx context.Context, who string) {
		if err := c.do(ctx, get("/ping", map[string][]string{"who": {who}}), nil); err != nil {
			t.Errorf("%s: %v", who, err)
		}
	}
	// Warm the M2M token so that it does not reorder the first calls.
	call(context.Background(), "warm")
	syncCtx := WithPriority(context.Background(), PrioritySync)
	var wg sync.WaitGroup
	for _, who := range []string{"s1", "s2", "s3", "s4"} {
		wg.Add(1)
		go func() { defer wg.Done(); call(syncCtx, who) }()
	}
	c.budget.waitQueued(t, 4)
	call(context.Background(), "click")
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	pos := map[string]int{}
	for i, who := range seen {
		pos[who] = i
	}
	// At most one sync call can have had its turn before the click arrived
	// (the one the granter was already waiting for).
	behind := 0
	for _, who := range []string{"s1", "s2", "s3", "s4"} {
		if pos[who] > pos["click"] {
			behind++
		}
	}
	if behind < 3 {
		t.Fatalf("order %v: the interactive call went after %d sync calls; want at most 1", seen, 4-behind)
	}
}
