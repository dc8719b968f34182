package auth

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"permsync/events"
	"permsync/store"
)

// Subscriber is where the permission cache and the background refresher hear
// about changes. *events.Broker satisfies it.
type Subscriber interface {
	Subscribe(topic string) (<-chan events.Event, func())
}

// PermStateSource is the durable permission state the cache mirrors.
// *store.DB satisfies it.
type PermStateSource interface {
	AllUserEpochs(ctx context.Context) (map[string]int64, error)
	UserEpoch(ctx context.Context, userID string) (int64, error)
	LiveDenials(ctx context.Context, now time.Time) ([]store.Denial, error)
	DenialVersion(ctx context.Context) (int64, error)
}

// DefaultPermCacheResync is how often PermCache reloads everything as a
// safety net, whatever the events say.
const DefaultPermCacheResync = 5 * time.Minute

// permCachePoll is how often the cache's Run loop drains events that arrived
// while no request was reading.
const permCachePoll = 200 * time.Millisecond

// PermCache is a PermissionState held in memory: every user's claims epoch
// and the live denials, loaded at start and re-read from the database
// when an events.PermStateTopic event says they changed. When nothing
// changed, a guard read is a map lookup under a read lock: no database round
// trip.
//
// Freshness. Publishers put the event in the cache's inbox before Publish
// returns. A read first looks at the inbox under the read lock; if anything
// is waiting it takes the write lock, drains the inbox and re-reads what
// changed before answering. Events are only ever taken out of the inbox
// under the write lock, so a read that starts after a Publish returned never
// sees the state from before it. Run drains the inbox in the background so
// quiet periods do not leave work for the next request.
//
// Other replicas. On Postgres their changes arrive as notifications, a few
// milliseconds after they committed: too late for a request that reached
// this replica right after another one answered. So the session row is read
// together with the denial version (store.Session.DenialVersion) and the
// user's epoch, in the query the request makes anyway; DenialsAsOf re-reads
// the denials when the cache holds an older version, and the guard compares
// the session with the epoch read with it.
//
// Lost events. If the inbox was full when drained (the broker drops the
// oldest event of a full subscriber), or an events.Resync arrives, or a
// re-read failed, everything is reloaded. Run also reloads every
// DefaultPermCacheResync as a safety net.
type PermCache struct {
	src    PermStateSource
	log    *slog.Logger
	now    func() time.Time
	inbox  <-chan events.Event
	unsub  func()
	resync time.Duration

	mu         sync.RWMutex
	epochs     map[string]int64
	denials    []store.Denial // as last read
	live       *Denials       // built from denials; never mutated once published
	nextExpiry time.Time      // earliest expiry in live; zero when none expires
	deniedAt   int64          // denial version the denials were read at (or after)
	// Work left by a failed re-read, retried on the next read.
	pendingUsers   map[string]struct{}
	pendingDenials bool
	pendingAll     bool
}

var _ PermissionState = (*PermCache)(nil)

// NewPermCache subscribes to events.PermStateTopic, then loads the state
// (in that order, so no change between the two is missed). Call Close when
// done, and Run to keep the inbox drained.
func NewPermCache(ctx context.Context, src PermStateSource, sub Subscriber, log *slog.Logger) (*PermCache, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	inbox, unsub := sub.Subscribe(events.PermStateTopic)
	c := &PermCache{src: src, log: log, now: time.Now, inbox: inbox, unsub: unsub, resync: DefaultPermCacheResync,
		pendingUsers: map[string]struct{}{}, pendingAll: true}
	c.mu.Lock()
	err := c.applyLocked(ctx)
	c.mu.Unlock()
	if err != nil {
		unsub()
		return nil, fmt.Errorf("load permission state: %w", err)
	}
	return c, nil
}

// Close unsubscribes the cache. Reads after Close keep answering from the
// last state.
func (c *PermCache) Close() { c.unsub() }

// UserEpoch returns the user's claims epoch (0 if never bumped).
func (c *PermCache) UserEpoch(ctx context.Context, userID string) (int64, error) {
	var epoch int64
	err := c.read(ctx, func() { epoch = c.epochs[userID] })
	return epoch, err
}

// Denials returns the live denials.
func (c *PermCache) Denials(ctx context.Context) (*Denials, error) {
	var live *Denials
	var next time.Time
	if err := c.read(ctx, func() { live, next = c.live, c.nextExpiry }); err != nil {
		return nil, err
	}
	if next.IsZero() || c.now().Before(next) {
		return live, nil
	}
	// A denial expired since the set was built: rebuild it from the denials
	// held in memory.
	c.mu.Lock()
	c.recomputeLiveLocked()
	live = c.live
	c.mu.Unlock()
	return live, nil
}

// DenialsAsOf is Denials, re-reading the denials first when the cache holds
// them at an older version than the one given (read from the database with
// the session row): another replica changed them and its notification has
// not arrived yet.
func (c *PermCache) DenialsAsOf(ctx context.Context, version int64) (*Denials, error) {
	c.mu.RLock()
	stale := version > c.deniedAt
	c.mu.RUnlock()
	if stale {
		c.mu.Lock()
		if version > c.deniedAt {
			c.pendingDenials = true
		}
		c.mu.Unlock()
	}
	return c.Denials(ctx)
}

// read runs f under the read lock once the inbox is empty and nothing is
// pending.
func (c *PermCache) read(ctx context.Context, f func()) error {
	c.mu.RLock()
	if len(c.inbox) == 0 && !c.dirtyLocked() {
		f()
		c.mu.RUnlock()
		return nil
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.applyLocked(ctx); err != nil {
		return err
	}
	f()
	return nil
}

func (c *PermCache) dirtyLocked() bool {
	return c.pendingAll || c.pendingDenials || len(c.pendingUsers) > 0
}

// applyLocked drains the inbox into the pending work, then does it. Pending
// work survives a failure and is retried by the next read.
func (c *PermCache) applyLocked(ctx context.Context) error {
	if n := len(c.inbox); n > 0 && n >= cap(c.inbox) {
		c.pendingAll = true // the broker may have dropped events
	}
	for drained := false; !drained; {
		select {
		case e, ok := <-c.inbox:
			if !ok {
				drained = true
				break
			}
			switch e.Name {
			case events.EpochChanged:
				c.pendingUsers[e.Data] = struct{}{}
			case events.TombstonesChanged:
				c.pendingDenials = true
			default: // events.Resync and anything unknown
				c.pendingAll = true
			}
		default:
			drained = true
		}
	}
	switch {
	case c.pendingAll:
		epochs, err := c.src.AllUserEpochs(ctx)
		if err != nil {
			return err
		}
		if err := c.reloadDenialsLocked(ctx); err != nil {
			return err
		}
		c.epochs = epochs
		c.pendingAll, c.pendingDenials = false, false
		clear(c.pendingUsers)
		return nil
	case c.pendingDenials:
		if err := c.reloadDenialsLocked(ctx); err != nil {
			return err
		}
		c.pendingDenials = false
	}
	for id := range c.pendingUsers {
		epoch, err := c.src.UserEpoch(ctx, id)
		if err != nil {
			return err
		}
		c.epochs[id] = epoch
		delete(c.pendingUsers, id)
	}
	return nil
}

func (c *PermCache) reloadDenialsLocked(ctx context.Context) error {
	// The version first: a change committed between the two reads leaves
	// the cache at an older version than its denials (one more re-read
	// later), never the other way round.
	version, err := c.src.DenialVersion(ctx)
	if err != nil {
		return err
	}
	ds, err := c.src.LiveDenials(ctx, c.now())
	if err != nil {
		return err
	}
	c.deniedAt, c.denials = version, ds
	c.recomputeLiveLocked()
	return nil
}

// recomputeLiveLocked publishes a new Denials from the denials, dropping
// the ones that expired.
func (c *PermCache) recomputeLiveLocked() {
	now := c.now()
	kept := c.denials[:0]
	for _, d := range c.denials {
		if d.SettledAt.IsZero() || now.Before(d.ExpiresAt) {
			kept = append(kept, d)
		}
	}
	c.denials = kept
	c.live, c.nextExpiry = newDenials(kept, now)
}

// Run keeps the inbox drained and reloads everything every resync interval,
// until ctx ends. Failures are logged and retried.
func (c *PermCache) Run(ctx context.Context) {
	poll := time.NewTicker(permCachePoll)
	defer poll.Stop()
	full := time.NewTicker(c.resync)
	defer full.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-full.C:
			c.mu.Lock()
			c.pendingAll = true
			err := c.applyLocked(ctx)
			c.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				c.log.Warn("permission cache resync failed; will retry", "error", err)
			}
		case <-poll.C:
			c.mu.RLock()
			idle := len(c.inbox) == 0 && !c.dirtyLocked()
			c.mu.RUnlock()
			if idle {
				continue
			}
			c.mu.Lock()
			err := c.applyLocked(ctx)
			c.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				c.log.Warn("permission cache update failed; will retry", "error", err)
			}
		}
	}
}
