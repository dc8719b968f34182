package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"permsync/auth"
	"permsync/events"
	"permsync/store"
)

// DefaultHeartbeat is how often an idle event stream sends a comment line,
// so proxies keep it open and a dead session is noticed.
const DefaultHeartbeat = 15 * time.Second

// Default caps on concurrent event streams. A page holds one stream, so a
// session at its cap has that many tabs open; past it, a tab gets 429 and
// its SSE extension retries with backoff, connecting once another tab
// closes. The caps bound what one stolen cookie or one runaway script can
// hold open. They are counted per process: with several replicas each
// enforces them for the streams it serves.
const (
	DefaultMaxStreamsPerSession = 8
	DefaultMaxStreamsPerUser    = 32
)

// eventSubscriber is the broker (*events.Broker).
type eventSubscriber interface {
	Subscribe(topic string) (<-chan events.Event, func())
}

// sessionGetter reads a session row (*store.DB); ErrNotFound when it is gone.
type sessionGetter interface {
	GetSession(ctx context.Context, id string) (*store.Session, error)
}

// denialReader reads the live denials (auth.PermissionState).
type denialReader interface {
	Denials(ctx context.Context) (*auth.Denials, error)
}

// Events serves GET /events, the server-sent event stream of a signed-in
// page (DESIGN §4.5): the user's topic, and the admin topic for admins.
// The stream ends when the client goes away, when the session ends (an
// event says so, or the heartbeat finds the row gone), or when the server
// shuts down (done is closed). SSE cannot set cookies, so nothing here
// refreshes the session: pages react to claims-changed with an ordinary
// request that goes through the guard.
type Events struct {
	sub       eventSubscriber
	sessions  sessionGetter
	denials   denialReader
	adminPerm string
	heartbeat time.Duration
	done      <-chan struct{}
	limits    *streamLimits
	log       *slog.Logger
}

// streamLimits counts open event streams per session and per user and
// refuses those past the caps.
type streamLimits struct {
	perSession, perUser int

	mu        sync.Mutex
	bySession map[string]int
	byUser    map[string]int
}

func newStreamLimits(perSession, perUser int) *streamLimits {
	return &streamLimits{perSession: perSession, perUser: perUser,
		bySession: map[string]int{}, byUser: map[string]int{}}
}

// acquire takes a slot for one stream of the session, or reports which cap
// refused it ("session" or "user") and the count that cap saw. release
// gives the slot back; call it exactly once.
func (l *streamLimits) acquire(sessionID, userID string) (release func(), refused string, open int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.bySession[sessionID]; n >= l.perSession {
		return nil, "session", n
	}
	if n := l.byUser[userID]; n >= l.perUser {
		return nil, "user", n
	}
	l.bySession[sessionID]++
	l.byUser[userID]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			dec(l.bySession, sessionID)
			dec(l.byUser, userID)
		})
	}, "", 0
}

// open reports the streams open for a session and for a user (for tests).
func (l *streamLimits) open(sessionID, userID string) (session, user int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bySession[sessionID], l.byUser[userID]
}

func dec(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k) // no entry outlives its last stream
		return
	}
	m[k]--
}

// Stream is GET /events.
func (h *Events) Stream(c echo.Context) error {
	r := c.Request()
	ctx := r.Context()
	w := c.Response()
	hdr := w.Header()
	hdr.Set(echo.HeaderContentType, "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")

	s := auth.SessionFrom(ctx)
	if s == nil {
		// Signed out: tell the page to go to sign-in (an EventSource cannot
		// follow a redirect to a login page).
		w.WriteHeader(http.StatusOK)
		_ = writeEvent(w, events.EventSessionEnded, `{"reason":"You are signed out."}`)
		return nil
	}
	release, refused, open := h.limits.acquire(s.ID, s.UserID)
	if release == nil {
		limit := h.limits.perSession
		if refused == "user" {
			limit = h.limits.perUser
		}
		h.log.Warn("events: stream refused, too many open", "request_id", requestID(c),
			"user_id", s.UserID, "per", refused, "open", open, "max", limit)
		hdr.Set(echo.HeaderContentType, echo.MIMETextPlainCharsetUTF8)
		hdr.Set("Retry-After", "30")
		return c.String(http.StatusTooManyRequests, fmt.Sprintf(
			"Too many live pages open for this %s (%d at most). Close a tab; this page reconnects by itself.\n",
			refused, limit))
	}
	defer release()
	userCh, unsubUser := h.sub.Subscribe(events.UserTopic(s.UserID))
	defer unsubUser()
	// The admin topic follows the admin permission: decided at connect,
	// and again on claims-changed and at every heartbeat, so an admin who
	// loses the permission stops receiving admin events within a heartbeat
	// even while their page stays open.
	var adminCh <-chan events.Event
	unsubAdmin := func() {}
	defer func() { unsubAdmin() }()
	setAdmin := func(on bool) {
		switch {
		case on && adminCh == nil:
			adminCh, unsubAdmin = h.sub.Subscribe(events.AdminTopic)
		case !on && adminCh != nil:
			unsubAdmin()
			adminCh, unsubAdmin = nil, func() {}
		}
	}
	setAdmin(h.adminPerm != "" && s.Can(h.adminPerm))

	w.WriteHeader(http.StatusOK)
	// retry: how long the browser waits before reconnecting.
	if _, err := fmt.Fprint(w, "retry: 3000\n: connected\n\n"); err != nil {
		return nil
	}
	w.Flush()

	beat := time.NewTicker(h.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.done:
			return nil
		case e, ok := <-userCh:
			if !ok {
				return nil
			}
			if e.Name == events.EventSessionEnded {
				// The event is per user; this stream ends only if its own
				// session is gone (another of the user's sessions may have
				// ended).
				if h.check(ctx, s.ID).alive {
					continue
				}
				_ = writeEvent(w, e.Name, e.Data)
				return nil
			}
			if writeEvent(w, e.Name, e.Data) != nil {
				return nil
			}
			if e.Name == events.EventClaimsChanged {
				if st := h.check(ctx, s.ID); st.known {
					setAdmin(st.admin)
				}
			}
		case e, ok := <-adminCh:
			if !ok {
				return nil
			}
			if writeEvent(w, e.Name, e.Data) != nil {
				return nil
			}
		case <-beat.C:
			st := h.check(ctx, s.ID)
			if !st.alive {
				_ = writeEvent(w, events.EventSessionEnded, `{"reason":"Your session has ended."}`)
				return nil
			}
			if st.known {
				setAdmin(st.admin)
			}
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}

// streamState is what a stream learns from its session row.
type streamState struct {
	alive bool // the row exists (or could not be read)
	known bool // admin was worked out
	admin bool // the session's effective permissions include the admin one
}

// check reads the session row: whether it still exists and whether its
// effective permissions (token keys minus the denials that apply) still
// hold the admin permission. A database error counts as alive with admin unknown: the
// stream is not the place to sign anyone out.
func (h *Events) check(ctx context.Context, id string) streamState {
	row, err := h.sessions.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return streamState{}
	}
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("events: could not check session", "error", err)
		}
		return streamState{alive: true}
	}
	st := streamState{alive: true, known: true}
	if h.adminPerm == "" || !slices.Contains(row.Permissions, h.adminPerm) {
		return st
	}
	if h.denials != nil {
		d, err := h.denials.Denials(ctx)
		if err != nil {
			return streamState{alive: true}
		}
		if d.Denies(row.UserID, row.OrgCode, row.ClaimsAt, h.adminPerm) {
			return st
		}
	}
	st.admin = true
	return st
}

// writeEvent writes one SSE event and flushes it. Names never contain line
// breaks; data may span lines.
func writeEvent(w *echo.Response, name, data string) error {
	var b strings.Builder
	b.WriteString("event: ")
	b.WriteString(strings.NewReplacer("\r", "", "\n", "").Replace(name))
	b.WriteByte('\n')
	for line := range strings.SplitSeq(strings.ReplaceAll(data, "\r\n", "\n"), "\n") {
		b.WriteString("data: ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := w.Write([]byte(b.String())); err != nil {
		return err
	}
	w.Flush()
	return nil
}
