package kinde

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Test keys are generated once: RSA generation is slow.
var (
	keysOnce                   sync.Once
	keyA, keyB, keyEvil, key1k *rsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		gen := func(bits int) *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			return k
		}
		keyA, keyB, keyEvil, key1k = gen(2048), gen(2048), gen(2048), gen(1024)
	})
}

// jwksServer is an edge fake of the issuer's /.well-known/jwks.
type jwksServer struct {
	srv  *httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	keys []jose.JSONWebKey
	fail bool
}

func newJWKSServer(t testing.TB, keys ...jose.JSONWebKey) *jwksServer {
	t.Helper()
	j := &jwksServer{keys: keys}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks" {
			http.NotFound(w, r)
			return
		}
		j.hits.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: j.keys})
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) setKeys(keys ...jose.JSONWebKey) {
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
}

func (j *jwksServer) setFail(fail bool) {
	j.mu.Lock()
	j.fail = fail
	j.mu.Unlock()
}

// pubJWK is the public JWK of k with the given kid.
func pubJWK(k *rsa.PrivateKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// signRS signs payload with k under kid using alg (an RSA algorithm).
func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, payload string, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid)
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

const validPayload = `{"data":{"permission":{"id":"perm_1"}},"event_id":"event_abc","source":"api","timestamp":"2026-02-03T12:00:00.000000+00:00","type":"permission.deleted"}`

// fakeClock is a settable clock for the verifier's refetch limit.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestVerifier(t testing.TB, j *jwksServer, opts ...VerifierOption) (*WebhookVerifier, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 2, 3, 12, 0, 0, 0, time.UTC)}
	v := NewWebhookVerifier(j.srv.URL, j.srv.Client(), opts...)
	v.now = clock.Now
	return v, clock
}

func TestDecodeValid(t *testing.T) {
	testKeys(t)
	j := newJWKSServer(t, pubJWK(keyB, "kid-b"), pubJWK(keyA, "kid-a"))
	v, _ := newTestVerifier(t, j)
	tok := signWith(t, jose.RS256, keyA, "kid-a", validPayload, nil)

	for range 3 { // trailing newline tolerated; key set cached
		ev, err := v.Decode(context.Background(), []byte(tok+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := ev.Permission()
		if err != nil || p.ID != "perm_1" || ev.EventID != "event_abc" || ev.Type != EventPermissionDeleted {
			t.Fatalf("unexpected event %+v / %+v, %v", ev, p, err)
		}
	}
	if n := j.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
}

func TestDecodeRejects(t *testing.T) {
	testKeys(t)
	good := signWith(t, jose.RS256, keyA, "kid-a", validPayload, nil)
	parts := strings.Split(good, ".")
	hmacKey := []byte("0123456789abcdef0123456789abcdef")

	// A token whose header embeds the attacker's own key under the real kid.
	evilJWK := pubJWK(keyEvil, "kid-a")
	embedded := signWith(t, jose.RS256, keyEvil, "kid-a", validPayload, map[jose.HeaderKey]any{"jwk": evilJWK})

	// JWS JSON serialization with two signatures.
	multi := `{"payload":"` + b64(validPayload) + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"},{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`

	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"whitespace", " \n", ErrMalformed},
		{"json, not a jws", validPayload, ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", good + ".x", ErrMalformed},
		{"bad base64", "!!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"header not json", b64("nope") + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"alg none", b64(`{"alg":"none","kid":"kid-a"}`) + "." + b64(validPayload) + ".", ErrUnsupportedAlgorithm},
		{"alg none, uppercase", b64(`{"alg":"NONE","kid":"kid-a"}`) + "." + b64(validPayload) + ".", ErrUnsupportedAlgorithm},
		{"HS256", signWith(t, jose.HS256, hmacKey, "kid-a", validPayload, nil), ErrUnsupportedAlgorithm},
		{"RS512", signWith(t, jose.RS512, keyA, "kid-a", validPayload, nil), ErrUnsupportedAlgorithm},
		{"PS256", signWith(t, jose.PS256, keyA, "kid-a", validPayload, nil), ErrUnsupportedAlgorithm},
		{"json serialization, two signatures", multi, ErrMultipleSignatures},
		{"json serialization, one signature", `{"payload":"` + b64(validPayload) + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrMalformed},
		{"tampered payload", parts[0] + "." + b64(strings.Replace(validPayload, "perm_1", "perm_2", 1)) + "." + parts[2], ErrBadSignature},
		{"stripped signature", parts[0] + "." + parts[1] + ".", ErrBadSignature},
		{"signed by another key under a known kid", signWith(t, jose.RS256, keyEvil, "kid-a", validPayload, nil), ErrBadSignature},
		{"embedded jwk header", embedded, ErrBadSignature},
		{"unknown kid", signWith(t, jose.RS256, keyEvil, "kid-evil", validPayload, nil), ErrUnknownKey},
		{"missing type", signWith(t, jose.RS256, keyA, "kid-a", `{"event_id":"e"}`, nil), ErrMissingField},
		{"missing event_id", signWith(t, jose.RS256, keyA, "kid-a", `{"type":"user.updated"}`, nil), ErrMissingField},
		{"payload not json", signWith(t, jose.RS256, keyA, "kid-a", `hello`, nil), ErrMalformed},
		{"oversized", good + strings.Repeat(" ", DefaultMaxWebhookBytes), ErrTooLarge},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			j := newJWKSServer(t, pubJWK(keyA, "kid-a"))
			v, _ := newTestVerifier(t, j)
			ev, err := v.Decode(context.Background(), []byte(test.body))
			if !errors.Is(err, test.want) {
				t.Fatalf("Decode = %+v, %v; want %v", ev, err, test.want)
			}
			if ev != nil {
				t.Fatalf("Decode returned an event with an error")
			}
		})
	}
}

func TestDecodeUnknownKidRefetchesOnceAndIsRateLimited(t *testing.T) {
	testKeys(t)
	j := newJWKSServer(t, pubJWK(keyA, "kid-a"))
	v, clock := newTestVerifier(t, j)
	ctx := context.Background()

	if _, err := v.Decode(ctx, []byte(signWith(t, jose.RS256, keyA, "kid-a", validPayload, nil))); err != nil {
		t.Fatal(err)
	}
	// Keys rotate at the issuer: kid-b appears.
	j.setKeys(pubJWK(keyA, "kid-a"), pubJWK(keyB, "kid-b"))
	clock.Advance(DefaultRefetchInterval + time.Second)
	if _, err := v.Decode(ctx, []byte(signWith(t, jose.RS256, keyB, "kid-b", validPayload, nil))); err != nil {
		t.Fatalf("rotated key not picked up: %v", err)
	}
	if n := j.hits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}

	// A flood of forged kids right after: at most one refetch per interval.
	clock.Advance(DefaultRefetchInterval + time.Second)
	for i := range 50 {
		tok := signWith(t, jose.RS256, keyEvil, "forged-"+string(rune('a'+i%26)), validPayload, nil)
		if _, err := v.Decode(ctx, []byte(tok)); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("forged kid: err = %v, want ErrUnknownKey", err)
		}
	}
	if n := j.hits.Load(); n != 3 {
		t.Fatalf("JWKS fetched %d times after forged kids, want 3", n)
	}
	// Known keys keep working without fetching.
	if _, err := v.Decode(ctx, []byte(signWith(t, jose.RS256, keyB, "kid-b", validPayload, nil))); err != nil {
		t.Fatal(err)
	}
	if n := j.hits.Load(); n != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", n)
	}
}

func TestDecodeConcurrentUnknownKidsShareOneFetch(t *testing.T) {
	testKeys(t)
	j := newJWKSServer(t, pubJWK(keyA, "kid-a"))
	v, _ := newTestVerifier(t, j)
	tok := []byte(signWith(t, jose.RS256, keyA, "kid-a", validPayload, nil))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := v.Decode(context.Background(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := j.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
}

func TestDecodeKeySetUnavailable(t *testing.T) {
	testKeys(t)
	j := newJWKSServer(t, pubJWK(keyA, "kid-a"))
	j.setFail(true)
	v, clock := newTestVerifier(t, j)
	tok := []byte(signWith(t, jose.RS256, keyA, "kid-a", validPayload, nil))
	if _, err := v.Decode(context.Background(), tok); !errors.Is(err, ErrKeySetUnavailable) {
		t.Fatalf("err = %v, want ErrKeySetUnavailable", err)
	}
	// Not refetched within the interval, still transient.
	if _, err := v.Decode(context.Background(), tok); !errors.Is(err, ErrKeySetUnavailable) {
		t.Fatalf("err = %v, want ErrKeySetUnavailable", err)
	}
	if n := j.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
	j.setFail(false)
	clock.Advance(DefaultRefetchInterval + time.Second)
	if _, err := v.Decode(context.Background(), tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestDecodeIgnoresUnusableKeys(t *testing.T) {
	testKeys(t)
	weak := pubJWK(key1k, "kid-weak")
	enc := pubJWK(keyA, "kid-enc")
	enc.Use = "enc"
	otherAlg := pubJWK(keyB, "kid-ps")
	otherAlg.Algorithm = string(jose.PS256)
	j := newJWKSServer(t, weak, enc, otherAlg)
	v, _ := newTestVerifier(t, j)
	for _, tc := range []struct {
		key *rsa.PrivateKey
		kid string
	}{{key1k, "kid-weak"}, {keyA, "kid-enc"}, {keyB, "kid-ps"}} {
		_, err := v.Decode(context.Background(), []byte(signWith(t, jose.RS256, tc.key, tc.kid, validPayload, nil)))
		if !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%s: err = %v, want ErrUnknownKey", tc.kid, err)
		}
	}
}

func TestDecodeWithoutKidTriesEveryKey(t *testing.T) {
	testKeys(t)
	j := newJWKSServer(t, pubJWK(keyB, "kid-b"), pubJWK(keyA, "kid-a"))
	v, _ := newTestVerifier(t, j)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: keyA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(validPayload))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := obj.CompactSerialize()
	if _, err := v.Decode(context.Background(), []byte(tok)); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeMaxBodyOption(t *testing.T) {
	testKeys(t)
	j := newJWKSServer(t, pubJWK(keyA, "kid-a"))
	v, _ := newTestVerifier(t, j, WithMaxBodyBytes(100))
	tok := signWith(t, jose.RS256, keyA, "kid-a", validPayload, nil)
	if _, err := v.Decode(context.Background(), []byte(tok)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if j.hits.Load() != 0 {
		t.Fatal("fetched keys for an oversized body")
	}
}

// FuzzDecode checks that Decode never panics and never accepts what it
// should not: any accepted body must carry a valid signature from keyA.
func FuzzDecode(f *testing.F) {
	testKeys(f)
	j := newJWKSServer(f, pubJWK(keyA, "kid-a"))
	v, _ := newTestVerifier(f, j)
	good := signWith(f, jose.RS256, keyA, "kid-a", validPayload, nil)
	parts := strings.Split(good, ".")
	f.Add([]byte(good))
	f.Add([]byte(b64(`{"alg":"none"}`) + "." + parts[1] + "."))
	f.Add([]byte(signWith(f, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "kid-a", validPayload, nil)))
	f.Add([]byte(signWith(f, jose.RS256, keyA, "kid-a", `{"type":"a.b","event_id":"e","data":{"user":{"id":"kp:1"}}}`, nil)))
	f.Add([]byte(`{"payload":"e30","signatures":[{},{}]}`))
	f.Add([]byte(".."))
	f.Add([]byte(parts[0] + ".." + parts[2]))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := v.Decode(context.Background(), raw)
		if err != nil {
			if ev != nil {
				t.Fatal("event returned with an error")
			}
			return
		}
		if ev.Type == "" || ev.EventID == "" {
			t.Fatalf("accepted an event without type or event_id: %+v", ev)
		}
		// Independently confirm the signature.
		obj, perr := jose.ParseSignedCompact(strings.TrimSpace(string(raw)), allowedAlgs)
		if perr != nil {
			t.Fatalf("accepted a body go-jose cannot parse: %v", perr)
		}
		if _, verr := obj.Verify(&keyA.PublicKey); verr != nil {
			t.Fatalf("accepted a body not signed by the issuer key: %v", verr)
		}
		_, _ = ev.Permission()
		_, _ = ev.User()
		_, _ = ev.Role()
		_, _ = ev.Organization()
	})
}
