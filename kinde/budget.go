package kinde

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Priority is a lane of a Client's Management API budget. Every request waits
// for a turn of the shared rate limit; when a turn comes up it goes to the
// oldest waiting request of the most urgent lane, so a queue of fan-out or
// sync calls never delays a call made for someone waiting on a page.
type Priority int

// The lanes, most urgent first.
const (
	// PriorityInteractive is work someone is waiting for: an admin's action,
	// a user's "Refresh session". It is the lane of a context that names none.
	PriorityInteractive Priority = iota
	// PriorityFanout is background work that finishes a change already made:
	// claim-refresh fan-outs, webhook processing, the Kinde side of a deletion.
	PriorityFanout
	// PrioritySync is bulk reading that keeps local copies true: directory
	// sync and reconciliation. It gets only the turns no one else wants.
	PrioritySync

	numPriorities = 3
)

// String names the lane (for logs and metrics).
func (p Priority) String() string {
	switch p {
	case PriorityInteractive:
		return "interactive"
	case PriorityFanout:
		return "fanout"
	case PrioritySync:
		return "sync"
	}
	return "unknown"
}

type priorityKey struct{}

// WithPriority returns a context whose Management API calls wait in lane p.
// An unknown value is treated as PrioritySync.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf returns the lane of ctx: the one given to WithPriority, else
// PriorityInteractive.
func PriorityOf(ctx context.Context) Priority {
	p, ok := ctx.Value(priorityKey{}).(Priority)
	switch {
	case !ok:
		return PriorityInteractive
	case p < PriorityInteractive || p >= numPriorities:
		return PrioritySync
	}
	return p
}

// budget hands out the turns of a rate limit by priority. Waiters queue in
// their lane; one granter goroutine, running only while someone waits, takes
// each turn from the limiter and only then picks who gets it, so a call that
// arrives while the granter waits for the next turn is considered for it.
type budget struct {
	lim *rate.Limiter
	// next blocks until lim allows one more request.
	next func()
	// idle, when set, is called when no one waits any more (under mu).
	idle func()

	mu      sync.Mutex
	lanes   [numPriorities][]*turn
	running bool
}

// turn is one waiting request; ready is closed when it may go.
type turn struct {
	ready chan struct{}
}

func newBudget(lim *rate.Limiter) *budget {
	next, idle := paced(lim)
	return &budget{lim: lim, next: next, idle: idle}
}

// maxCatchUp is how late a turn may be given and still keep its place in
// the schedule.
const maxCatchUp = 100 * time.Millisecond

// paced returns a turn-taker that waits for lim on a fixed schedule, and
// the function that tells it nobody waits any more. While requests queue,
// each turn is due one interval after the previous turn was due, not after
// the granter woke up: a busy machine wakes a sleeping goroutine anywhere
// from a fraction of a millisecond to tens of milliseconds late, and at
// 500 calls/s a turn is due every 2 ms, so waiting "one interval from now"
// each time would run well under the rate. Turns that fell due meanwhile
// are given at once, so the rate holds on average; lateness beyond
// maxCatchUp is not made up. Once nobody waits, the schedule starts again
// from the next request, so idle time is never made up with a burst. Only
// the granter calls them.
func paced(lim *rate.Limiter) (next, idle func()) {
	var due time.Time // when the previous turn was due; zero after idle
	next = func() {
		at := time.Now()
		if due.Before(at) && due.After(at.Add(-maxCatchUp)) {
			at = due
		}
		due = at.Add(lim.ReserveN(at, 1).DelayFrom(at))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
	}
	return next, func() { due = time.Time{} }
}

// wait blocks until the request may go, or ctx ends.
func (b *budget) wait(ctx context.Context, p Priority) error {
	t := &turn{ready: make(chan struct{})}
	b.mu.Lock()
	b.lanes[p] = append(b.lanes[p], t)
	if !b.running {
		b.running = true
		go b.grant()
	}
	b.mu.Unlock()
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-t.ready:
			// Granted as ctx ended: the turn is spent either way.
		default:
			b.lanes[p] = removeTurn(b.lanes[p], t)
		}
		return ctx.Err()
	}
}

// grant runs while anyone waits: it takes the limiter's next turn and gives
// it to the first waiter of the most urgent lane.
func (b *budget) grant() {
	for {
		b.mu.Lock()
		if b.queuedLocked() == 0 {
			if b.idle != nil {
				b.idle()
			}
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.next()
		b.mu.Lock()
		for p := range b.lanes {
			if len(b.lanes[p]) > 0 {
				t := b.lanes[p][0]
				b.lanes[p] = b.lanes[p][1:]
				close(t.ready)
				break
			}
		}
		b.mu.Unlock()
	}
}

// queuedLocked counts the waiters.
func (b *budget) queuedLocked() int {
	n := 0
	for _, l := range b.lanes {
		n += len(l)
	}
	return n
}

func removeTurn(lane []*turn, t *turn) []*turn {
	for i, w := range lane {
		if w == t {
			return append(lane[:i:i], lane[i+1:]...)
		}
	}
	return lane
}
