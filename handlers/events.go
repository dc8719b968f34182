package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/auth"
	"permsync/events"
	"permsync/store"
)

// DefaultHeartbeat is how often an idle event stream sends a comment line,
// so proxies keep it open and a dead session is noticed.
const DefaultHeartbeat = 15 * time.Second

// eventSubscriber is the broker (*events.Broker).
type eventSubscriber interface {
	Subscribe(topic string) (<-chan events.Event, func())
}

// sessionGetter reads a session row (*store.DB); ErrNotFound when it is gone.
type sessionGetter interface {
	GetSession(ctx context.Context, id string) (*store.Session, error)
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
	adminPerm string
	heartbeat time.Duration
	done      <-chan struct{}
	log       *slog.Logger
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
		_ = writeEvent(w, admin.EventSessionEnded, `{"reason":"You are signed out."}`)
		return nil
	}
	userCh, unsubUser := h.sub.Subscribe(events.UserTopic(s.UserID))
	defer unsubUser()
	var adminCh <-chan events.Event
	if h.adminPerm != "" && s.Can(h.adminPerm) {
		ch, unsub := h.sub.Subscribe(events.AdminTopic)
		defer unsub()
		adminCh = ch
	}

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
			if e.Name == admin.EventSessionEnded {
				// The event is per user; this stream ends only if its own
				// session is gone (another of the user's sessions may have
				// ended).
				if h.alive(ctx, s.ID) {
					continue
				}
				_ = writeEvent(w, e.Name, e.Data)
				return nil
			}
			if writeEvent(w, e.Name, e.Data) != nil {
				return nil
			}
		case e, ok := <-adminCh:
			if !ok {
				return nil
			}
			if writeEvent(w, e.Name, e.Data) != nil {
				return nil
			}
		case <-beat.C:
			if !h.alive(ctx, s.ID) {
				_ = writeEvent(w, admin.EventSessionEnded, `{"reason":"Your session has ended."}`)
				return nil
			}
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}

// alive reports whether the session row still exists. A database error
// counts as alive: the stream is not the place to sign anyone out.
func (h *Events) alive(ctx context.Context, id string) bool {
	_, err := h.sessions.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil && ctx.Err() == nil {
		h.log.Warn("events: could not check session", "error", err)
	}
	return true
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
