package handlers

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"permsync/auth"
	"permsync/events"
	"permsync/store"
)

func TestStreamLimits(t *testing.T) {
	t.Parallel()
	l := newStreamLimits(2, 3)
	r1, _, _ := l.acquire("s1", "u")
	r2, _, _ := l.acquire("s1", "u")
	if r1 == nil || r2 == nil {
		t.Fatal("streams under the caps refused")
	}
	if r, per, open := l.acquire("s1", "u"); r != nil || per != "session" || open != 2 {
		t.Fatalf("third stream of s1: release %v, per %q, open %d", r != nil, per, open)
	}
	r3, _, _ := l.acquire("s2", "u")
	if r3 == nil {
		t.Fatal("another session refused under the user cap")
	}
	if r, per, open := l.acquire("s3", "u"); r != nil || per != "user" || open != 3 {
		t.Fatalf("fourth stream of u: release %v, per %q, open %d", r != nil, per, open)
	}
	if r, _, _ := l.acquire("s9", "other"); r == nil {
		t.Fatal("another user refused")
	} else {
		r()
	}
	r1()
	r1() // a second release changes nothing
	if s, u := l.open("s1", "u"); s != 1 || u != 2 {
		t.Fatalf("after one release: session %d, user %d", s, u)
	}
	if r, _, _ := l.acquire("s1", "u"); r == nil {
		t.Fatal("freed slot not given out")
	} else {
		r()
	}
	r2()
	r3()
	if len(l.bySession) != 0 || len(l.byUser) != 0 {
		t.Fatalf("counts left behind: %v %v", l.bySession, l.byUser)
	}
}

// streamRig serves Events with fakes: sessions come from the X-Session
// header, session rows and tombstones from maps the test changes.
type streamRig struct {
	t      *testing.T
	h      *Events
	broker *events.Broker
	srv    *httptest.Server
	done   chan struct{}
	logs   *lockedBuffer

	mu       sync.Mutex
	sessions map[string]*auth.Session
	rows     map[string]*store.Session
	dead     map[string]struct{}
}

func newStreamRig(t *testing.T, heartbeat time.Duration, perSession, perUser int) *streamRig {
	rig := &streamRig{t: t, broker: events.NewBroker(), done: make(chan struct{}), logs: &lockedBuffer{},
		sessions: map[string]*auth.Session{}, rows: map[string]*store.Session{}, dead: map[string]struct{}{}}
	rig.h = &Events{sub: rig.broker, sessions: rig, denials: rig, adminPerm: "admin:permissions",
		heartbeat: heartbeat, done: rig.done, limits: newStreamLimits(perSession, perUser),
		log: slog.New(slog.NewTextHandler(rig.logs, nil))}
	e := echo.New()
	e.GET("/events", rig.h.Stream, func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rig.mu.Lock()
			s := rig.sessions[c.Request().Header.Get("X-Session")]
			rig.mu.Unlock()
			if s != nil {
				c.SetRequest(c.Request().WithContext(auth.WithSession(c.Request().Context(), s)))
			}
			return next(c)
		}
	})
	rig.srv = httptest.NewServer(e)
	t.Cleanup(func() {
		rig.shutdown()
		rig.srv.Close()
	})
	return rig
}

func (rig *streamRig) shutdown() {
	select {
	case <-rig.done:
	default:
		close(rig.done)
	}
}

func (rig *streamRig) addSession(id, user string, perms ...string) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	rig.sessions[id] = &auth.Session{Session: store.Session{ID: id, UserID: user, Permissions: perms}}
	rig.rows[id] = &store.Session{ID: id, UserID: user, Permissions: perms}
}

func (rig *streamRig) GetSession(_ context.Context, id string) (*store.Session, error) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if r, ok := rig.rows[id]; ok {
		return r, nil
	}
	return nil, store.ErrNotFound
}

func (rig *streamRig) Denials(context.Context) (*auth.Denials, error) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	now := time.Now()
	var ds []store.Denial
	for k := range rig.dead {
		ds = append(ds, store.Denial{PermissionKey: k, CreatedAt: now, SettledAt: now, ExpiresAt: now.Add(time.Hour)})
	}
	return auth.NewDenials(ds, now), nil
}

func (rig *streamRig) setDead(key string, dead bool) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	if dead {
		rig.dead[key] = struct{}{}
	} else {
		delete(rig.dead, key)
	}
}

// testStream is one open GET /events.
type testStream struct {
	status int
	body   string // for refused streams
	lines  chan string
	cancel context.CancelFunc
}

func (rig *streamRig) open(session string) *testStream {
	rig.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rig.srv.URL+"/events", nil)
	req.Header.Set("X-Session", session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		rig.t.Fatal(err)
	}
	s := &testStream{status: resp.StatusCode, lines: make(chan string, 256), cancel: cancel}
	rig.t.Cleanup(cancel)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s.body = string(b)
		close(s.lines)
		return s
	}
	go func() {
		defer resp.Body.Close()
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	s.expect(rig.t, ": connected")
	return s
}

// expect waits for a line starting with prefix.
func (s *testStream) expect(t *testing.T, prefix string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				t.Fatalf("stream ended before %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within 5s", prefix)
		}
	}
}

// ends waits for the stream to end.
func (s *testStream) ends(t *testing.T) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-s.lines:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream still open after 5s")
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStreamCapHeartbeatAndShutdown: past the cap a stream gets 429 and a
// log line; the streams that are open keep their heartbeat; shutdown ends
// them all and gives their slots back.
func TestStreamCapHeartbeatAndShutdown(t *testing.T) {
	t.Parallel()
	rig := newStreamRig(t, 20*time.Millisecond, 2, 3)
	rig.addSession("s1", "alice", "read:reports")
	rig.addSession("s2", "alice", "read:reports")
	a := rig.open("s1")
	b := rig.open("s1")
	refused := rig.open("s1")
	if refused.status != http.StatusTooManyRequests || !strings.Contains(refused.body, "this session (2 at most)") {
		t.Fatalf("third stream of s1 = %d %q", refused.status, refused.body)
	}
	logs := rig.logs.String()
	if !strings.Contains(logs, "stream refused") || !strings.Contains(logs, "per=session") ||
		!strings.Contains(logs, "user_id=alice") {
		t.Errorf("log = %q", logs)
	}
	c := rig.open("s2")
	if refused := rig.open("s2"); refused.status != http.StatusTooManyRequests ||
		!strings.Contains(refused.body, "this user (3 at most)") {
		t.Fatalf("fourth stream of alice = %d %q", refused.status, refused.body)
	}

	// Heartbeats go on on the open streams.
	for _, s := range []*testStream{a, b, c} {
		s.expect(t, ": ping")
		s.expect(t, ": ping")
	}
	// A closed tab frees its slot.
	b.cancel()
	waitUntil(t, "the slot to free", func() bool { n, _ := rig.h.limits.open("s1", "alice"); return n == 1 })
	d := rig.open("s1")
	if d.status != http.StatusOK {
		t.Fatalf("stream after a slot freed = %d", d.status)
	}

	// Shutdown ends every stream and leaves no count behind.
	rig.shutdown()
	for _, s := range []*testStream{a, c, d} {
		s.ends(t)
	}
	waitUntil(t, "every slot to free", func() bool {
		s1, u := rig.h.limits.open("s1", "alice")
		s2, _ := rig.h.limits.open("s2", "alice")
		return s1 == 0 && s2 == 0 && u == 0
	})
}

// TestAdminStreamFollowsPermission: an admin's stream drops the admin topic
// once the admin permission is gone (checked on claims-changed and at every
// heartbeat), and takes it up again when the permission is back.
func TestAdminStreamFollowsPermission(t *testing.T) {
	t.Parallel()
	adminTopic := func(rig *streamRig) func() int {
		return func() int { return rig.broker.Subscribers(events.AdminTopic) }
	}
	t.Run("claims-changed", func(t *testing.T) {
		rig := newStreamRig(t, time.Hour, 8, 32)
		rig.addSession("s1", "root", "admin:permissions")
		s := rig.open("s1")
		subs := adminTopic(rig)
		if subs() != 1 {
			t.Fatalf("admin topic subscribers = %d", subs())
		}
		rig.broker.Publish(events.AdminTopic, events.Event{Name: events.EventFanoutProgress, Data: "{}"})
		s.expect(t, "event: "+events.EventFanoutProgress)

		rig.setDead("admin:permissions", true)
		rig.broker.Publish(events.UserTopic("root"), events.Event{Name: events.EventClaimsChanged, Data: "{}"})
		s.expect(t, "event: "+events.EventClaimsChanged)
		waitUntil(t, "the admin topic to be dropped", func() bool { return subs() == 0 })
	})
	t.Run("heartbeat", func(t *testing.T) {
		rig := newStreamRig(t, 10*time.Millisecond, 8, 32)
		rig.addSession("s1", "root", "admin:permissions")
		rig.addSession("s2", "bob", "read:reports")
		rig.open("s1")
		rig.open("s2")
		subs := adminTopic(rig)
		if subs() != 1 {
			t.Fatalf("admin topic subscribers = %d; want the admin's stream only", subs())
		}
		rig.setDead("admin:permissions", true)
		waitUntil(t, "the admin topic to be dropped", func() bool { return subs() == 0 })
		rig.setDead("admin:permissions", false)
		waitUntil(t, "the admin topic to be taken up again", func() bool { return subs() == 1 })
	})
}
