package handlers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
// page (docs/ARCHITECTURE.md): the user's topic, and the admin topic for admins.
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
	metrics   *Metrics // counts open streams; nil counts nothing
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
//
// On HTTP/1.1 the connection is taken over from net/http (hijacked) once
// the stream is accepted: the handler answers the head itself and returns,
// and a small goroutine (serve) carries the stream on with the bare
// connection. That lets net/http drop its per-connection read and write
// buffers and the request's goroutine stack, which were most of the memory
// an idle page cost (about 58 KB a stream before, see docs/BENCHMARKS.md).
// A second, tiny goroutine blocks in a read to notice the client going away
// at once. Where the connection cannot be hijacked (HTTP/2) the stream runs
// inside the request as before.
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
		h.log.WarnContext(c.Request().Context(), "events: stream refused, too many open",
			"user_id", s.UserID, "per", refused, "open", open, "max", limit)
		hdr.Set(echo.HeaderContentType, echo.MIMETextPlainCharsetUTF8)
		hdr.Set("Retry-After", "30")
		return c.String(http.StatusTooManyRequests, fmt.Sprintf(
			"Too many live pages open for this %s (%d at most). Close a tab; this page reconnects by itself.\n",
			refused, limit))
	}
	ls := &liveStream{sessionID: s.ID, userID: s.UserID, release: release,
		closed: h.metrics.streamOpened(), unsubAdmin: func() {}}
	// Both topics are subscribed before the stream says it is connected, so
	// no event published after that is missed.
	ls.userCh, ls.unsubUser = h.sub.Subscribe(events.UserTopic(s.UserID))
	if h.adminPerm != "" && s.Can(h.adminPerm) {
		ls.adminCh, ls.unsubAdmin = h.sub.Subscribe(events.AdminTopic)
	}

	if r.ProtoMajor == 1 {
		if conn, rw, err := w.Hijack(); err == nil {
			if err := writeStreamHead(conn, rw, hdr); err != nil {
				conn.Close()
				ls.end()
				return nil
			}
			w.Committed, w.Status = true, http.StatusOK // for the request log and metrics
			out := &connSink{conn: conn}
			gone := make(chan struct{})
			go watchClose(conn, gone)
			go h.serve(ls, out, gone)
			return nil
		}
	}
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, streamHello); err != nil {
		ls.end()
		return nil
	}
	w.Flush()
	h.serve(ls, &responseSink{w: w}, ctx.Done())
	return nil
}

// streamHello opens every stream: how long the browser waits before
// reconnecting, and a comment that says the stream is up.
const streamHello = "retry: 3000\n: connected\n\n"

// liveStream is one open event stream.
type liveStream struct {
	sessionID, userID string
	userCh            <-chan events.Event
	unsubUser         func()
	adminCh           <-chan events.Event // nil while the stream may not have the admin topic
	unsubAdmin        func()
	release           func() // gives the stream's slot back
	closed            func() // tells the metrics
}

// end unsubscribes and gives the slot back.
func (ls *liveStream) end() {
	ls.unsubUser()
	ls.unsubAdmin()
	ls.release()
	ls.closed()
}

// sink is where a stream writes: the hijacked connection or the response.
type sink interface {
	send(b []byte) error
	close()
}

// connSink writes to a hijacked connection. A client that does not take a
// write within streamWriteTimeout loses its stream.
type connSink struct{ conn net.Conn }

const streamWriteTimeout = 10 * time.Second

func (s *connSink) send(b []byte) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	_, err := s.conn.Write(b)
	return err
}

func (s *connSink) close() { _ = s.conn.Close() }

// responseSink writes to the response (when the connection could not be
// hijacked); net/http closes it when the handler returns.
type responseSink struct{ w *echo.Response }

func (s *responseSink) send(b []byte) error {
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	s.w.Flush()
	return nil
}

func (s *responseSink) close() {}

// writeStreamHead answers the request on a hijacked connection: the status
// line, the headers the middleware and Stream set, and the opening lines.
// The body has no length and ends when the connection closes.
func writeStreamHead(conn net.Conn, rw *bufio.ReadWriter, hdr http.Header) error {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\n")
	hdr.Del("Content-Length")
	hdr.Del("Transfer-Encoding")
	hdr.Set("Connection", "close")
	_ = hdr.Write(&b)
	b.WriteString("\r\n")
	b.WriteString(streamHello)
	if err := conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	// Anything net/http had buffered for the connection goes first.
	if rw != nil && rw.Writer.Buffered() > 0 {
		if err := rw.Writer.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(conn, b.String())
	return err
}

// watchClose closes gone when the client closes the connection (or sends
// anything: an event stream's client has nothing more to say).
func watchClose(conn net.Conn, gone chan<- struct{}) {
	var b [1]byte
	_, _ = conn.Read(b[:])
	close(gone)
}

// serve carries a stream until the client goes away (gone), the session
// ends (an event says so, or the heartbeat finds the row gone), or the
// server shuts down.
func (h *Events) serve(ls *liveStream, out sink, gone <-chan struct{}) {
	defer out.close()
	defer ls.end()
	// Session checks run under a context of the stream's own: a hijacked
	// connection's request context ends with the handler.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The admin topic follows the admin permission: decided at connect,
	// again at every heartbeat and, for a stream that has it, on
	// claims-changed, so an admin who loses the permission stops receiving
	// admin events at once even while their page stays open.
	setAdmin := func(on bool) {
		switch {
		case on && ls.adminCh == nil:
			ls.adminCh, ls.unsubAdmin = h.sub.Subscribe(events.AdminTopic)
		case !on && ls.adminCh != nil:
			ls.unsubAdmin()
			ls.adminCh, ls.unsubAdmin = nil, func() {}
		}
	}

	beat := time.NewTicker(h.heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-gone:
			return
		case <-h.done:
			return
		case e, ok := <-ls.userCh:
			if !ok {
				return
			}
			if e.Name == events.EventSessionEnded {
				// The event is per user; this stream ends only if its own
				// session is gone (another of the user's sessions may have
				// ended).
				if h.check(ctx, ls.sessionID).alive {
					continue
				}
				_ = out.send(eventBytes(e.Name, e.Data))
				return
			}
			if out.send(eventBytes(e.Name, e.Data)) != nil {
				return
			}
			// An admin's stream re-checks at once whether it still may have
			// the admin topic. Other streams wait for the heartbeat to take
			// it up: their row changes only when the page's own request
			// refreshes the session, and skipping the read here keeps a
			// delete that reaches thousands of streams from queueing
			// thousands of session reads behind its events.
			if e.Name == events.EventClaimsChanged && ls.adminCh != nil {
				if st := h.check(ctx, ls.sessionID); st.known {
					setAdmin(st.admin)
				}
			}
		case e, ok := <-ls.adminCh:
			if !ok {
				return
			}
			if out.send(eventBytes(e.Name, e.Data)) != nil {
				return
			}
		case <-beat.C:
			st := h.check(ctx, ls.sessionID)
			if !st.alive {
				_ = out.send(eventBytes(events.EventSessionEnded, `{"reason":"Your session has ended."}`))
				return
			}
			if st.known {
				setAdmin(st.admin)
			}
			if out.send([]byte(": ping\n\n")) != nil {
				return
			}
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

// writeEvent writes one SSE event and flushes it.
func writeEvent(w *echo.Response, name, data string) error {
	if _, err := w.Write(eventBytes(name, data)); err != nil {
		return err
	}
	w.Flush()
	return nil
}

// eventBytes encodes one SSE event. Names never contain line breaks; data
// may span lines.
func eventBytes(name, data string) []byte {
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
	return []byte(b.String())
}
