package auth

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"permsync/events"
	"permsync/store"
)

// DefaultBackgroundWorkers bounds how many sessions BackgroundRefresher
// refreshes at once.
const DefaultBackgroundWorkers = 4

// sessionRefresher is the one refresh code path (*Refresher).
type sessionRefresher interface {
	Refresh(ctx context.Context, req RefreshRequest) (*RefreshResult, error)
}

// userSessions lists a user's live sessions. *store.DB satisfies it.
type userSessions interface {
	UserSessions(ctx context.Context, userID string) ([]store.Session, error)
}

// epochReader reads a user's claims epoch. Give it the database (*store.DB):
// it is woken by the event that also invalidates PermCache, so the cache may
// not have seen that event yet.
type epochReader interface {
	UserEpoch(ctx context.Context, userID string) (int64, error)
}

// BackgroundRefresher refreshes a user's live sessions soon after their
// claims epoch moved (events.EpochChanged), through the same Refresher as
// the button and the guard, so that users who are not clicking get fresh
// tokens before their next request. A bounded pool of workers does the
// refreshes; repeated events for a user waiting in the queue collapse into
// one. Sessions already at the user's epoch are skipped, and the refresher's
// generation check makes a refresh that raced with the guard a no-op.
type BackgroundRefresher struct {
	rf       sessionRefresher
	sessions userSessions
	epochs   epochReader
	sub      Subscriber
	workers  int
	log      *slog.Logger

	mu     sync.Mutex
	queue  []string
	queued map[string]bool
	wake   chan struct{}
}

// NewBackgroundRefresher builds the refresher; workers ≤ 0 means
// DefaultBackgroundWorkers.
func NewBackgroundRefresher(rf sessionRefresher, sessions userSessions, epochs epochReader, sub Subscriber,
	workers int, log *slog.Logger) *BackgroundRefresher {
	if workers <= 0 {
		workers = DefaultBackgroundWorkers
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &BackgroundRefresher{rf: rf, sessions: sessions, epochs: epochs, sub: sub, workers: workers, log: log,
		queued: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Run subscribes to events.PermStateTopic and refreshes until ctx ends; it
// returns once every worker stopped.
func (b *BackgroundRefresher) Run(ctx context.Context) {
	inbox, unsub := b.sub.Subscribe(events.PermStateTopic)
	defer unsub()
	var wg sync.WaitGroup
	for range b.workers {
		wg.Go(func() { b.work(ctx) })
	}
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-inbox:
			if !ok {
				return
			}
			if e.Name == events.EpochChanged && e.Data != "" {
				b.enqueue(e.Data)
			}
		}
	}
}

// Enqueue asks for userID's stale sessions to be refreshed.
func (b *BackgroundRefresher) enqueue(userID string) {
	b.mu.Lock()
	if !b.queued[userID] {
		b.queued[userID] = true
		b.queue = append(b.queue, userID)
	}
	b.mu.Unlock()
	b.signal()
}

func (b *BackgroundRefresher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// next pops the next user, waiting for one; false when ctx ended.
func (b *BackgroundRefresher) next(ctx context.Context) (string, bool) {
	for {
		b.mu.Lock()
		if len(b.queue) > 0 {
			id := b.queue[0]
			b.queue = b.queue[1:]
			delete(b.queued, id)
			more := len(b.queue) > 0
			b.mu.Unlock()
			if more {
				b.signal() // let another worker take the next one
			}
			return id, true
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false
		case <-b.wake:
		}
	}
}

func (b *BackgroundRefresher) work(ctx context.Context) {
	for {
		userID, ok := b.next(ctx)
		if !ok {
			return
		}
		b.refreshUser(ctx, userID)
	}
}

// refreshUser refreshes the user's sessions built before their epoch.
func (b *BackgroundRefresher) refreshUser(ctx context.Context, userID string) {
	epoch, err := b.epochs.UserEpoch(ctx, userID)
	if err != nil {
		b.log.Warn("background refresh: read epoch", "user_id", userID, "error", err)
		return
	}
	sessions, err := b.sessions.UserSessions(ctx, userID)
	if err != nil {
		b.log.Warn("background refresh: list sessions", "user_id", userID, "error", err)
		return
	}
	for _, s := range sessions {
		if s.ClaimsEpoch >= epoch || ctx.Err() != nil {
			continue
		}
		_, err := b.rf.Refresh(ctx, RefreshRequest{SessionID: s.ID, SeenGeneration: s.Generation, Reason: ReasonBackground})
		switch {
		case err == nil:
		case errors.Is(err, ErrSessionEnded):
			b.log.Info("background refresh: session ended at Kinde", "user_id", userID)
		default:
			// The guard refreshes on the next request anyway.
			b.log.Warn("background refresh failed", "user_id", userID, "error", err)
		}
	}
}
