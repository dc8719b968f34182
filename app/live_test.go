package app_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"permsync/app/apptest"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// waitFor is the generous deadline for anything asynchronous (webhook
// delivery, River jobs). Tests never assert on timing.
const waitFor = 20 * time.Second

// sseEvent is one server-sent event.
type sseEvent struct{ Name, Data string }

// sseStream reads GET /events with a client's cookies.
type sseStream struct {
	events chan sseEvent
	status int
	cancel context.CancelFunc
	done   chan struct{}
}

// openStream connects to /events as c and waits until the server has
// subscribed (its ": connected" comment), so no event is missed.
func openStream(t testing.TB, c *apptest.Client) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	hc := &http.Client{Jar: c.HTTP.Jar, CheckRedirect: c.HTTP.CheckRedirect}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /events: %v", err)
	}
	s := &sseStream{events: make(chan sseEvent, 64), status: resp.StatusCode, cancel: cancel, done: make(chan struct{})}
	connected := make(chan struct{})
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ": connected"):
				once.Do(func() { close(connected) })
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if ev.Data != "" {
					ev.Data += "\n"
				}
				ev.Data += strings.TrimPrefix(line, "data: ")
			}
		}
		once.Do(func() { close(connected) })
	}()
	t.Cleanup(s.close)
	select {
	case <-connected:
	case <-time.After(waitFor):
		t.Fatal("event stream did not connect")
	}
	return s
}

func (s *sseStream) close() {
	s.cancel()
	<-s.done
}

// next waits for the next event named name, skipping others.
func (s *sseStream) next(t testing.TB, name string) sseEvent {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("event stream closed before %s", name)
			}
			if ev.Name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within %s", name, waitFor)
		}
	}
}

// TestWebhookRevokesPermissionEndToEnd is the life of a webhook (docs/ARCHITECTURE.md) with
// devkinde as the real sender: a permission deleted in "Kinde's dashboard"
// (its Management API) reaches permsync as a signed webhook; alice's next
// request is refused and her open page is told.
func TestWebhookRevokesPermissionEndToEnd(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	if r := alice.Get(t, "/reports/export"); r.StatusCode != http.StatusOK {
		t.Fatalf("before: GET /reports/export = %d", r.StatusCode)
	}
	stream := openStream(t, alice)

	kc := env.Kinde()
	id := apptest.PermissionID(t, kc, "export:reports")
	if err := kc.DeletePermission(context.Background(), id); err != nil {
		t.Fatal(err)
	}

	ev := stream.next(t, "claims-changed")
	if !strings.Contains(ev.Data, "export:reports") {
		t.Errorf("claims-changed data = %s; want it to name export:reports", ev.Data)
	}
	if r := alice.Get(t, "/reports/export"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("after the webhook: GET /reports/export = %d; want 403", r.StatusCode)
	}
	page := alice.Get(t, "/dashboard")
	for _, k := range page.Permissions(t) {
		if k == "export:reports" {
			t.Fatal("dashboard still shows export:reports as effective")
		}
	}
	if page.TestID(t, "link-export").Length() != 0 {
		t.Error("dashboard still links to the export")
	}

	// The delivery is recorded once, processed, with its fan-out.
	var rec *store.WebhookEvent
	testsupport.Eventually(t, waitFor, "the webhook to be processed", func() bool {
		evs, err := env.DB.WebhookEvents(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for i := range evs {
			if evs[i].Type == kinde.EventPermissionDeleted {
				rec = &evs[i]
			}
		}
		return rec != nil && rec.Status != store.WebhookReceived
	})
	if rec.Status != store.WebhookProcessed || rec.FanoutID == "" {
		t.Fatalf("webhook record: status %s, fan-out %q, outcome %q, error %q", rec.Status, rec.FanoutID, rec.Outcome, rec.Error)
	}
	// Kinde's claim cache is refreshed for alice, her epoch bumped, and the
	// next refresh of her session carries the current permissions.
	ev = stream.next(t, "claims-changed")
	if !strings.Contains(ev.Data, `"stage":"refreshed"`) {
		t.Errorf("second claims-changed = %s; want stage refreshed", ev.Data)
	}
	testsupport.Eventually(t, waitFor, "alice's session to drop export:reports from its token", func() bool {
		ss, err := env.DB.UserSessions(context.Background(), env.UserID(t, "alice@acme.test"))
		if err != nil || len(ss) == 0 {
			return false
		}
		for _, k := range ss[0].Permissions {
			if k == "export:reports" {
				return false
			}
		}
		return true
	})
}

// TestDashboardLiveFragment checks the live update a claims-changed event
// triggers on the dashboard: out-of-band swaps only (the session panel, the
// navigation, the shown keys), with a toast naming what changed.
func TestDashboardLiveFragment(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	alice.Get(t, "/dashboard")
	r := alice.LiveSync(t, "/dashboard", "read:reports export:reports delete:reports")
	if r.StatusCode != http.StatusOK || strings.Contains(r.Body, "<html") {
		t.Fatalf("fragment = %d:\n%.1500s", r.StatusCode, r.Body)
	}
	panel := r.TestID(t, "session-panel")
	if panel.Length() != 1 || panel.AttrOr("hx-swap-oob", "") != "true" {
		t.Fatalf("no out-of-band session panel in the fragment:\n%.1500s", r.Body)
	}
	if r.Doc(t).Find(`#topbar[hx-swap-oob="true"]`).Length() != 1 {
		t.Error("no out-of-band navigation in the fragment")
	}
	shown := strings.Fields(r.Doc(t).Find(`#shown-permissions[hx-swap-oob="true"]`).AttrOr("value", ""))
	slices.Sort(shown)
	if !slices.Equal(shown, []string{"export:reports", "read:reports"}) {
		t.Errorf("shown keys = %q", shown)
	}
	toast := strings.TrimSpace(r.TestID(t, "toast").Text())
	if toast != "Delete reports was removed from your access." {
		t.Errorf("toast = %q", toast)
	}
	r = alice.LiveSync(t, "/dashboard", "read:reports export:reports")
	if r.TestID(t, "toast").Length() != 0 {
		t.Errorf("toast shown although nothing changed: %q", r.TestID(t, "toast").Text())
	}
}

// TestEventsStreamEndsWithSession: a stream of a session that ends is told
// so, and a signed-out stream gets session-ended at once.
func TestEventsStreamEndsWithSession(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	anon := openStreamRaw(t, env.NewClient(t))
	if ev := anon.next(t, "session-ended"); ev.Name == "" {
		t.Fatal("no session-ended for a signed-out stream")
	}

	// Bob is deleted in Kinde: the user.deleted webhook ends his session
	// and his open page is told.
	bob := env.Login(t, "bob@acme.test")
	stream := openStream(t, bob)
	if status := env.ManagementAPI(t, http.MethodDelete, "/api/v1/user?id="+env.UserID(t, "bob@acme.test"), nil); status != http.StatusOK {
		t.Fatalf("DELETE /api/v1/user = %d", status)
	}
	stream.next(t, "session-ended")
	if r := bob.NoRedirect().Get(t, "/dashboard"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("after user.deleted GET /dashboard = %d; want a redirect to sign in", r.StatusCode)
	}
}

// openStreamRaw connects without waiting for ": connected" (a signed-out
// stream never sends it).
func openStreamRaw(t *testing.T, c *apptest.Client) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/events", nil)
	resp, err := (&http.Client{Jar: c.HTTP.Jar}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sseStream{events: make(chan sseEvent, 8), status: resp.StatusCode, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		defer close(s.events)
		b, _ := io.ReadAll(resp.Body)
		for block := range strings.SplitSeq(string(b), "\n\n") {
			var ev sseEvent
			for line := range strings.SplitSeq(block, "\n") {
				if v, ok := strings.CutPrefix(line, "event: "); ok {
					ev.Name = v
				} else if v, ok := strings.CutPrefix(line, "data: "); ok {
					ev.Data = v
				}
			}
			if ev.Name != "" {
				s.events <- ev
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

// TestEventsStreamsDoNotLeak opens and drops many streams and checks that
// none leaves a goroutine behind: while they are open, each has goroutines
// in the HTTP layer (the stream and its close watcher); once every client
// has gone, none is left there. (Counting all goroutines instead would
// also count River's, which start on their own schedule.)
func TestEventsStreamsDoNotLeak(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	// Three sessions, so 20 streams at once stay under the per-session cap.
	tabs := []*apptest.Client{
		env.Login(t, "alice@acme.test"), env.Login(t, "alice@acme.test"), env.Login(t, "alice@acme.test"),
	}
	for round := range 5 {
		var streams []*sseStream
		for i := range 20 {
			s := openStream(t, tabs[i%len(tabs)])
			if s.status != http.StatusOK {
				t.Fatalf("stream %d = %d", i+1, s.status)
			}
			streams = append(streams, s)
		}
		if round == 0 {
			if n := streamGoroutines(); n < 20 {
				t.Fatalf("%d goroutines in the HTTP layer with 20 streams open; the count cannot see them", n)
			}
		}
		for _, s := range streams {
			s.close()
		}
	}
	var left int
	testsupport.Eventually(t, waitFor, "stream goroutines to end", func() bool {
		left = streamGoroutines()
		return left == 0
	})
	t.Logf("goroutines: %d in the HTTP layer after 100 streams, %d in all", left, runtime.NumGoroutine())
}

// streamGoroutines counts the goroutines running code of the HTTP layer
// (permsync/handlers): event streams and requests in flight.
func streamGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "permsync/handlers.") {
			count++
		}
	}
	return count
}

// --- webhook negative cases ---

// capture is a second webhook endpoint registered at devkinde, to obtain
// genuinely signed deliveries for replay.
type capture struct {
	mu   sync.Mutex
	got  []capturedDelivery
	srv  *httptest.Server
	seen chan struct{}
}

type capturedDelivery struct {
	WebhookID string
	Body      []byte
}

func newCapture(t *testing.T) *capture {
	c := &capture{seen: make(chan struct{}, 16)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.got = append(c.got, capturedDelivery{WebhookID: r.Header.Get("webhook-id"), Body: b})
		c.mu.Unlock()
		select {
		case c.seen <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *capture) first(t *testing.T) capturedDelivery {
	t.Helper()
	select {
	case <-c.seen:
	case <-time.After(waitFor):
		t.Fatal("devkinde delivered nothing to the capture endpoint")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[0]
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func compact(header, payload any, sign func(signingInput string) []byte) []byte {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	in := b64(h) + "." + b64(p)
	return []byte(in + "." + b64(sign(in)))
}

func rs256(t *testing.T, key *rsa.PrivateKey, kid string, payload any) []byte {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := json.Marshal(payload)
	obj, err := signer.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// issuerKid returns the kid of devkinde's signing key.
func issuerKid(t *testing.T, env *apptest.Env) string {
	t.Helper()
	resp, err := http.Get(env.IssuerURL + "/.well-known/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	return set.Keys[0].Kid
}

func postWebhook(t *testing.T, env *apptest.Env, body []byte, webhookID string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/webhooks/kinde", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/jwt")
	if webhookID != "" {
		req.Header.Set("webhook-id", webhookID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestWebhookRejectsBadDeliveriesAndNeverProcessesTwice(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	ctx := context.Background()
	kc := env.Kinde()
	alice := env.Login(t, "alice@acme.test")

	// A genuine delivery, captured beside permsync's own endpoint.
	cap := newCapture(t)
	if _, err := kc.CreateWebhook(ctx, kinde.WebhookInput{Endpoint: cap.srv.URL, Name: "capture",
		EventTypes: []string{kinde.EventPermissionCreated}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CreatePermission(ctx, kinde.PermissionInput{Key: "audit:reports", Name: "Audit reports"}); err != nil {
		t.Fatal(err)
	}
	genuine := cap.first(t)
	var payload struct {
		EventID string `json:"event_id"`
	}
	parts := strings.Split(string(genuine.Body), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(raw, &payload)
	countRecords := func() int {
		evs, err := env.DB.WebhookEvents(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.EventID == payload.EventID {
				n++
			}
		}
		return n
	}
	testsupport.Eventually(t, waitFor, "permsync's own copy of the delivery", func() bool { return countRecords() == 1 })

	evil, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kid := issuerKid(t, env)
	event := map[string]any{"type": "user.deleted", "event_id": "event_forged0001", "source": "api",
		"timestamp": time.Now().UTC().Format(time.RFC3339), "data": map[string]any{"user": map[string]any{"id": env.UserID(t, "alice@acme.test")}}}
	none := compact(map[string]string{"alg": "none", "kid": kid, "typ": "JWT"}, event, func(string) []byte { return nil })
	hs := compact(map[string]string{"alg": "HS256", "kid": kid, "typ": "JWT"}, event, func(in string) []byte {
		m := hmac.New(sha256.New, []byte("guessed-secret"))
		m.Write([]byte(in))
		return m.Sum(nil)
	})
	unsigned := []byte(strings.Join(strings.Split(string(rs256(t, evil, kid, event)), ".")[:2], ".") + ".")
	tampered := func() []byte {
		p := strings.Split(string(genuine.Body), ".")
		forgedPayload, _ := json.Marshal(event)
		return []byte(p[0] + "." + b64(forgedPayload) + "." + p[2])
	}()

	cases := []struct {
		name      string
		body      []byte
		webhookID string
		status    int
		reply     string
	}{
		{"forged signature (attacker key, issuer kid)", rs256(t, evil, kid, event), "msg_forged1", http.StatusUnauthorized, "bad signature"},
		{"genuine signature, tampered payload", tampered, "msg_forged2", http.StatusUnauthorized, "bad signature"},
		{"unsigned", unsigned, "msg_forged3", http.StatusUnauthorized, "bad signature"},
		{"alg none", none, "msg_forged4", http.StatusUnauthorized, "signature algorithm not allowed (RS256 only)"},
		{"HS256", hs, "msg_forged5", http.StatusUnauthorized, "signature algorithm not allowed (RS256 only)"},
		{"unknown kid", rs256(t, evil, "kid-nobody-has", event), "msg_forged6", http.StatusUnauthorized, "signing key unknown"},
		{"oversized", []byte(strings.Repeat("a", (1<<20)+1)), "msg_forged7", http.StatusRequestEntityTooLarge, "body larger than 1 MiB"},
		{"malformed", []byte("this is not a token"), "msg_forged8", http.StatusBadRequest, "malformed: not a signed Kinde event"},
		{"JSON body", []byte(`{"type":"user.deleted","event_id":"event_x"}`), "msg_forged9", http.StatusBadRequest, "malformed: not a signed Kinde event"},
		{"empty", nil, "", http.StatusBadRequest, "malformed: not a signed Kinde event"},
		{"replay, same webhook-id", genuine.Body, genuine.WebhookID, http.StatusOK, "duplicate"},
		{"replay, new webhook-id", genuine.Body, "msg_replayed", http.StatusOK, "duplicate"},
		{"replay, no webhook-id", genuine.Body, "", http.StatusOK, "duplicate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, reply := postWebhook(t, env, tc.body, tc.webhookID)
			if status != tc.status || reply != tc.reply {
				t.Errorf("got %d %q; want %d %q", status, reply, tc.status, tc.reply)
			}
		})
	}

	if n := countRecords(); n != 1 {
		t.Errorf("genuine event recorded %d times; want 1", n)
	}
	evs, _ := env.DB.WebhookEvents(ctx, 1000)
	for _, e := range evs {
		if e.EventID == "event_forged0001" {
			t.Fatalf("a forged delivery was recorded: %+v", e)
		}
	}
	// Alice's session survived every forged user.deleted.
	if r := alice.Get(t, "/dashboard"); r.StatusCode != http.StatusOK || r.Request.URL.Path != "/dashboard" {
		t.Fatalf("alice's session did not survive the forged deliveries: %d at %s", r.StatusCode, r.Request.URL)
	}
	rej, err := env.DB.WebhookRejections(ctx, 100)
	if err != nil || len(rej) < 10 {
		t.Errorf("rejections recorded: %d (%v); want at least 10", len(rej), err)
	}
}
