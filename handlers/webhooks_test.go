package handlers

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"permsync/kinde"
	"permsync/kindesync"
)

// countingReceiver records what reaches the receiver.
type countingReceiver struct {
	received atomic.Int32
	rejected atomic.Int32
}

func (r *countingReceiver) ReceiveWebhook(context.Context, kindesync.WebhookDelivery) (kindesync.ReceiveResult, error) {
	r.received.Add(1)
	return kindesync.ReceiveResult{}, nil
}

func (r *countingReceiver) RejectWebhook(context.Context, int, string, string) { r.rejected.Add(1) }

// newWebhookTarget serves POST /webhooks/kinde with the real verifier
// against a key set holding one fresh key, and returns a signer for it.
func newWebhookTarget(t testing.TB) (*echo.Echo, *countingReceiver, func(payload []byte) []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	}))
	t.Cleanup(jwks.Close)
	rcv := &countingReceiver{}
	h := &Webhooks{dec: kinde.NewWebhookVerifier(jwks.URL, jwks.Client()), rcv: rcv, log: slog.New(slog.DiscardHandler)}
	e := echo.New()
	e.POST("/webhooks/kinde", h.Receive)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(payload []byte) []byte {
		obj, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := obj.CompactSerialize()
		return []byte(s)
	}
	return e, rcv, sign
}

func post(e *echo.Echo, body []byte, id string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/kinde", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/jwt")
	if id != "" {
		req.Header.Set("webhook-id", id)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestWebhookReceiveAcceptsSignedEvents(t *testing.T) {
	t.Parallel()
	e, rcv, sign := newWebhookTarget(t)
	body := sign([]byte(`{"type":"permission.deleted","event_id":"event_1","source":"api","timestamp":"` + nowStamp() + `","data":{"permission":{"id":"p1"}}}`))
	if rec := post(e, body, "msg_1"); rec.Code != http.StatusOK || rcv.received.Load() != 1 {
		t.Fatalf("signed event: %d %q, received %d", rec.Code, rec.Body, rcv.received.Load())
	}
	if rec := post(e, []byte(strings.Repeat("x", MaxWebhookBytes+1)), "msg_2"); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d", rec.Code)
	}
	if rcv.received.Load() != 1 || rcv.rejected.Load() != 1 {
		t.Fatalf("received %d, rejected %d", rcv.received.Load(), rcv.rejected.Load())
	}
}

func nowStamp() string { return time.Now().UTC().Format(time.RFC3339) }

// TestWebhookNeedsJWTAndATimelyTimestamp: a validly signed delivery is
// refused unless it is application/jwt and its timestamp is there and not
// far in the future; an old one is let through (kindesync ignores it as
// stale, recorded).
func TestWebhookNeedsJWTAndATimelyTimestamp(t *testing.T) {
	t.Parallel()
	e, rcv, sign := newWebhookTarget(t)
	eventAt := func(field, stamp string) []byte {
		ts := ""
		if stamp != "" {
			ts = `"` + field + `":"` + stamp + `",`
		}
		return sign([]byte(`{"type":"user.deleted","event_id":"event_t",` + ts + `"data":{"user":{"id":"kp_1"}}}`))
	}
	event := func(stamp string) []byte { return eventAt("timestamp", stamp) }
	now := time.Now().UTC()
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		status            int
	}{
		{"now", "application/jwt", event(now.Format(time.RFC3339)), http.StatusOK},
		{"with a charset", "application/jwt; charset=utf-8", event(now.Format(time.RFC3339)), http.StatusOK},
		{"a minute ahead (clock skew)", "application/jwt", event(now.Add(time.Minute).Format(time.RFC3339)), http.StatusOK},
		{"a day old", "application/jwt", event(now.Add(-24 * time.Hour).Format(time.RFC3339)), http.StatusOK},
		{"in 2030", "application/jwt", event("2030-01-01T00:00:00Z"), http.StatusBadRequest},
		{"an hour ahead", "application/jwt", event(now.Add(time.Hour).Format(time.RFC3339)), http.StatusBadRequest},
		{"no timestamp", "application/jwt", event(""), http.StatusBadRequest},
		{"event_timestamp now", "application/jwt", eventAt("event_timestamp", now.Format(time.RFC3339)), http.StatusOK},
		{"event_timestamp an hour ahead", "application/jwt", eventAt("event_timestamp", now.Add(time.Hour).Format(time.RFC3339)), http.StatusBadRequest},
		{"event_timestamp malformed", "application/jwt", eventAt("event_timestamp", "yesterday"), http.StatusBadRequest},
		{"as JSON", "application/json", event(now.Format(time.RFC3339)), http.StatusUnsupportedMediaType},
		{"as text", "text/plain", event(now.Format(time.RFC3339)), http.StatusUnsupportedMediaType},
		{"no Content-Type", "", event(now.Format(time.RFC3339)), http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rcv.received.Load()
			req := httptest.NewRequest(http.MethodPost, "/webhooks/kinde", strings.NewReader(string(tc.body)))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("got %d %q; want %d", rec.Code, rec.Body, tc.status)
			}
			if accepted := rcv.received.Load() > before; accepted != (tc.status == http.StatusOK) {
				t.Fatalf("reached the receiver: %v", accepted)
			}
		})
	}
}

// TestWebhookRefusalLogIsRateLimited: a flood of refusals logs a few lines,
// then one a second, saying how many it held back.
func TestWebhookRefusalLogIsRateLimited(t *testing.T) {
	t.Parallel()
	var l refusalLog
	logged := 0
	for range 1000 {
		if ok, _ := l.allow(); ok {
			logged++
		}
	}
	if logged < 1 || logged > 10 {
		t.Fatalf("%d of 1000 refusals logged; want a handful", logged)
	}
	if l.skipped.Load() != int64(1000-logged) {
		t.Fatalf("held back %d; want %d", l.skipped.Load(), 1000-logged)
	}
}

func TestCleanWebhookID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"msg_2a9f": "msg_2a9f", "": "", "a b": "", "x\ny": "", strings.Repeat("a", 129): "", "evt.1:2-3": "evt.1:2-3",
	} {
		if got := cleanWebhookID(in); got != want {
			t.Errorf("cleanWebhookID(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestClassifyWebhookError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err    error
		status int
	}{
		{kinde.ErrTooLarge, 413}, {kinde.ErrKeySetUnavailable, 503}, {kinde.ErrUnsupportedAlgorithm, 401},
		{kinde.ErrUnknownKey, 401}, {kinde.ErrBadSignature, 401}, {kinde.ErrMultipleSignatures, 400},
		{kinde.ErrMalformed, 400}, {errors.New("other"), 400},
	} {
		if got, _ := classifyWebhookError(fmt.Errorf("wrapped: %w", tc.err)); got != tc.status {
			t.Errorf("%v → %d; want %d", tc.err, got, tc.status)
		}
	}
}

// FuzzWebhookReceive feeds arbitrary bodies through the whole receiver path
// (size limit, verifier, classification): it must never panic, and nothing
// that is not signed by the issuer's key reaches the receiver.
func FuzzWebhookReceive(f *testing.F) {
	e, rcv, sign := newWebhookTarget(f)
	good := sign([]byte(`{"type":"user.deleted","event_id":"event_1","timestamp":"` + nowStamp() + `","data":{"user":{"id":"kp_1"}}}`))
	f.Add([]byte(good), "msg_1")
	f.Add([]byte("eyJhbGciOiJub25lIn0.e30."), "")
	f.Add([]byte(`{"payload":"x","signatures":[]}`), "msg_2")
	f.Add([]byte(""), "\x00")
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		before := rcv.received.Load()
		rec := post(e, body, id)
		accepted := rcv.received.Load() > before
		if accepted != (rec.Code == http.StatusOK) {
			t.Fatalf("status %d but accepted=%v", rec.Code, accepted)
		}
		if accepted && string(body) != string(good) && !strings.Contains(string(body), string(good)) {
			// Only a body carrying the genuine signed token can verify.
			t.Fatalf("accepted a body that is not the signed seed: %q", body)
		}
	})
}
