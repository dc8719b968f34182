package kinde

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Webhook decoding errors. Decode wraps exactly one of the first group (and
// possibly ErrMissingField with ErrMalformed), so the receiver can log a clear
// reason. ErrKeySetUnavailable is the only transient one: answer 5xx so that
// Kinde delivers again; the others are permanent rejections.
var (
	ErrTooLarge             = errors.New("kinde webhook: body too large")
	ErrMalformed            = errors.New("kinde webhook: malformed")
	ErrUnsupportedAlgorithm = errors.New("kinde webhook: signature algorithm not allowed (RS256 only)")
	ErrMultipleSignatures   = errors.New("kinde webhook: more than one signature")
	ErrUnknownKey           = errors.New("kinde webhook: signing key not in the issuer's key set")
	ErrBadSignature         = errors.New("kinde webhook: bad signature")
	ErrKeySetUnavailable    = errors.New("kinde webhook: issuer key set unavailable")

	// ErrMissingField accompanies ErrMalformed when a required field is absent.
	ErrMissingField = errors.New("missing field")
)

// Verifier defaults.
const (
	DefaultMaxWebhookBytes = 1 << 20          // user.updated lists every org's roles and permissions: past 64 KiB
	DefaultRefetchInterval = 10 * time.Second // minimum time between JWKS fetches
	maxJWKSBytes           = 1 << 20
	minRSABits             = 2048
)

// WebhookVerifier verifies and decodes Kinde webhook bodies. It is safe for
// concurrent use; keep one per issuer so the key set is cached.
//
// A body is accepted only if it is a compact JWS with a single RS256
// signature from a key in the issuer's JWKS (<issuer>/.well-known/jwks). An
// unknown kid causes one refetch of the key set, and the key set is fetched
// at most once per refetch interval whatever the traffic, so forged kids
// cannot make the verifier hammer the issuer. No iss, aud or exp claims are
// required: Kinde's webhook tokens carry none.
type WebhookVerifier struct {
	jwksURL  string
	hc       *http.Client
	maxBytes int
	interval time.Duration
	now      func() time.Time

	sem chan struct{} // held while fetching the key set

	mu        sync.Mutex
	keys      []jose.JSONWebKey // usable public keys
	loaded    bool              // keys came from a successful fetch
	lastFetch time.Time         // last fetch attempt, successful or not
}

// VerifierOption configures a WebhookVerifier.
type VerifierOption func(*WebhookVerifier)

// WithMaxBodyBytes sets the largest body Decode accepts
// (default DefaultMaxWebhookBytes).
func WithMaxBodyBytes(n int) VerifierOption {
	return func(v *WebhookVerifier) {
		if n > 0 {
			v.maxBytes = n
		}
	}
}

// WithRefetchInterval sets the minimum time between key set fetches
// (default DefaultRefetchInterval).
func WithRefetchInterval(d time.Duration) VerifierOption {
	return func(v *WebhookVerifier) {
		if d >= 0 {
			v.interval = d
		}
	}
}

// WithJWKSURL overrides the key set URL (default <issuer>/.well-known/jwks).
func WithJWKSURL(u string) VerifierOption {
	return func(v *WebhookVerifier) {
		if u != "" {
			v.jwksURL = u
		}
	}
}

// NewWebhookVerifier returns a verifier for webhooks signed by issuerURL's
// keys. hc nil means a client with a 10 s timeout. The key set is fetched on
// first use.
func NewWebhookVerifier(issuerURL string, hc *http.Client, opts ...VerifierOption) *WebhookVerifier {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	v := &WebhookVerifier{
		jwksURL:  strings.TrimRight(strings.TrimSpace(issuerURL), "/") + "/.well-known/jwks",
		hc:       hc,
		maxBytes: DefaultMaxWebhookBytes,
		interval: DefaultRefetchInterval,
		now:      time.Now,
		sem:      make(chan struct{}, 1),
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

// allowedAlgs is the only signature algorithm Kinde uses and we accept.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256}

// Decode verifies raw (the webhook request body) and returns its event.
// Callers should still limit the body size they read; Decode rejects bodies
// larger than its own limit with ErrTooLarge.
func (v *WebhookVerifier) Decode(ctx context.Context, raw []byte) (*Event, error) {
	if len(raw) > v.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), v.maxBytes)
	}
	tok := string(bytes.TrimSpace(raw))
	if tok == "" {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if tok[0] == '{' {
		return nil, jsonSerializationError(tok)
	}
	if strings.Count(tok, ".") != 2 {
		return nil, fmt.Errorf("%w: not a compact JWS (want three dot-separated parts)", ErrMalformed)
	}
	jws, err := jose.ParseSignedCompact(tok, allowedAlgs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, fmt.Errorf("%w: %w", ErrUnsupportedAlgorithm, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrMultipleSignatures, len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	if h.Algorithm != string(jose.RS256) {
		return nil, fmt.Errorf("%w: %.20q", ErrUnsupportedAlgorithm, h.Algorithm)
	}
	keys, err := v.keysFor(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	var payload []byte
	for _, k := range keys {
		if p, err := jws.Verify(k); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, fmt.Errorf("%w (kid %.80q)", ErrBadSignature, h.KeyID)
	}
	return ParseEvent(payload)
}

// jsonSerializationError classifies a body in JWS JSON serialization, which
// Kinde does not send.
func jsonSerializationError(tok string) error {
	var js struct {
		Signatures []json.RawMessage `json:"signatures"`
	}
	if json.Unmarshal([]byte(tok), &js) == nil && len(js.Signatures) > 1 {
		return fmt.Errorf("%w: %d signatures", ErrMultipleSignatures, len(js.Signatures))
	}
	return fmt.Errorf("%w: JWS JSON serialization; want a compact JWS", ErrMalformed)
}

// keysFor returns the candidate keys for kid (every key when kid is empty),
// fetching the key set on first use and refetching it once for an unknown kid,
// at most once per refetch interval.
func (v *WebhookVerifier) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	keys, loaded, last := v.snapshot()
	if loaded {
		if m := matchKeys(keys, kid); len(m) > 0 {
			return m, nil
		}
	}
	if !last.IsZero() && v.now().Sub(last) < v.interval {
		return nil, v.noKey(loaded, kid, "key set fetched recently; not refetching")
	}

	select {
	case v.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrKeySetUnavailable, ctx.Err())
	}
	defer func() { <-v.sem }()

	// Another caller may have fetched while we waited; use its result.
	if keys, loaded, last2 := v.snapshot(); !last2.Equal(last) {
		if m := matchKeys(keys, kid); loaded && len(m) > 0 {
			return m, nil
		}
		return nil, v.noKey(loaded, kid, "after a concurrent refetch")
	}

	fetched, err := v.fetch(ctx)
	v.mu.Lock()
	v.lastFetch = v.now()
	if err == nil {
		v.keys, v.loaded = fetched, true
	}
	v.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySetUnavailable, err)
	}
	if m := matchKeys(fetched, kid); len(m) > 0 {
		return m, nil
	}
	return nil, v.noKey(true, kid, "after refetching")
}

// noKey is the error for a kid that cannot be resolved.
func (v *WebhookVerifier) noKey(loaded bool, kid, why string) error {
	if !loaded {
		return fmt.Errorf("%w: %s", ErrKeySetUnavailable, why)
	}
	return fmt.Errorf("%w: kid %.80q (%s)", ErrUnknownKey, kid, why)
}

func (v *WebhookVerifier) snapshot() ([]jose.JSONWebKey, bool, time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys, v.loaded, v.lastFetch
}

// matchKeys returns the keys with the given kid, or all keys for an empty kid.
func matchKeys(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	if kid == "" {
		return keys
	}
	var out []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == kid {
			out = append(out, k)
		}
	}
	return out
}

// fetch downloads the key set and keeps the keys usable for RS256
// verification. Keys it cannot parse are skipped rather than failing the set.
func (v *WebhookVerifier) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("build JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) != nil {
			continue
		}
		if pub, ok := usableKey(k); ok {
			keys = append(keys, pub)
		}
	}
	return keys, nil
}

// usableKey reports whether k can verify RS256 signatures and returns its
// public part.
func usableKey(k jose.JSONWebKey) (jose.JSONWebKey, bool) {
	if k.Use != "" && k.Use != "sig" {
		return jose.JSONWebKey{}, false
	}
	if k.Algorithm != "" && k.Algorithm != string(jose.RS256) {
		return jose.JSONWebKey{}, false
	}
	pub := k.Public()
	rk, ok := pub.Key.(*rsa.PublicKey)
	if !ok || rk.N == nil || rk.N.BitLen() < minRSABits {
		return jose.JSONWebKey{}, false
	}
	return pub, true
}
