package kinde

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults applied by [New] to zero Config fields.
const (
	DefaultRate         = 5.0                    // requests per second
	DefaultBurst        = 1                      // requests
	DefaultMaxRetries   = 5                      // retries after the first attempt
	DefaultPageSize     = 100                    // items per page (Kinde allows up to 500)
	DefaultMaxPages     = 10000                  // pages one listing may walk before it fails
	DefaultRetryBase    = 250 * time.Millisecond // first backoff step
	DefaultMaxRetryWait = 30 * time.Second       // cap on any single wait before a retry
)

// maxResponseBytes bounds how much of a Management API response is read.
const maxResponseBytes = 16 << 20

// apiPrefix is the base path of Kinde's Management API.
const apiPrefix = "/api/v1"

// Config configures a [Client].
type Config struct {
	// IssuerURL is the Kinde business domain, e.g. https://acme.kinde.com.
	IssuerURL string
	// ClientID and ClientSecret are the M2M application's credentials.
	ClientID, ClientSecret string
	// Audience of the M2M token; "" means IssuerURL + "/api".
	Audience string
	// Rate is the shared client-side limit in requests per second for every
	// Management API request, retries included. 0 means DefaultRate. Turns
	// go by priority: see WithPriority.
	Rate float64
	// Burst is the limiter's bucket size. 0 means DefaultBurst.
	Burst int
	// MaxRetries bounds the retries after the first attempt (429, 5xx and
	// network errors). 0 means DefaultMaxRetries; a negative value disables
	// retries.
	MaxRetries int
	// PageSize is the page_size sent to paginated endpoints. 0 means
	// DefaultPageSize.
	PageSize int
	// MaxPages bounds the pages one listing walks, a guard against a server
	// that returns next_token forever. 0 means DefaultMaxPages.
	MaxPages int
	// RetryBase is the first step of the exponential backoff used for 5xx and
	// network errors. 0 means DefaultRetryBase.
	RetryBase time.Duration
	// MaxRetryWait caps any single wait before a retry, including one asked
	// for by RateLimit-Reset. 0 means DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// HTTPClient is used for the token endpoint and the Management API.
	// nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives debug lines (method, path, status, duration). nil
	// discards them.
	Logger *slog.Logger
	// Observer, if set, is told about every attempt and retry (metrics).
	Observer Observer
}

// Client calls Kinde's Management API. It is safe for concurrent use; share
// one per issuer so that every caller shares its token and rate limit.
type Client struct {
	base       string // issuer URL without a trailing slash
	hc         *http.Client
	log        *slog.Logger
	obs        Observer
	budget     *budget // the shared rate limit, handed out by priority
	tokens     *tokenSource
	maxRetries int
	pageSize   int
	maxPages   int
	retryBase  time.Duration
	maxWait    time.Duration

	pauseMu    sync.Mutex
	pauseUntil time.Time // set from a 429's RateLimit-Reset; every request waits for it
}

// New returns a Client for cfg, applying the documented defaults.
func New(cfg Config) *Client {
	base := strings.TrimRight(strings.TrimSpace(cfg.IssuerURL), "/")
	hc := cfg.HTTPClient
	if hc == nil {
		// Keep connections for concurrent calls: the default transport keeps
		// two per host, so a fan-out with more calls in flight would open
		// and close a connection for most of them.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxRetries := cfg.MaxRetries
	switch {
	case maxRetries == 0:
		maxRetries = DefaultMaxRetries
	case maxRetries < 0:
		maxRetries = 0
	}
	audience := cfg.Audience
	if audience == "" {
		audience = base + "/api"
	}
	return &Client{
		base:       base,
		hc:         hc,
		log:        log,
		obs:        cfg.Observer,
		budget:     newBudget(rate.NewLimiter(rate.Limit(positiveOr(cfg.Rate, DefaultRate)), positiveOr(cfg.Burst, DefaultBurst))),
		tokens:     newTokenSource(base+"/oauth2/token", cfg.ClientID, cfg.ClientSecret, audience, hc),
		maxRetries: maxRetries,
		pageSize:   positiveOr(cfg.PageSize, DefaultPageSize),
		maxPages:   positiveOr(cfg.MaxPages, DefaultMaxPages),
		retryBase:  positiveOr(cfg.RetryBase, DefaultRetryBase),
		maxWait:    positiveOr(cfg.MaxRetryWait, DefaultMaxRetryWait),
	}
}

// positiveOr returns v, or def when v is zero or negative (an unset Config
// field).
func positiveOr[T int | float64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// request describes one Management API call.
type request struct {
	method string
	path   string // below /api/v1, path segments already escaped
	query  url.Values
	body   any // JSON-encoded when non-nil
	// idempotent marks requests that may be retried after a 5xx or a network
	// error, when an earlier attempt may already have taken effect.
	idempotent bool
	// gone, for a DELETE, reads whether the thing is gone. It settles an
	// unclear outcome: an attempt that may have reached Kinde (a timeout or a
	// 5xx after the request was sent) followed by a failure. nil means a
	// later 400 or 404 (an unknown id) is taken as "an earlier attempt
	// deleted it".
	gone func(ctx context.Context) (bool, error)
}

// get builds an idempotent GET request.
func get(path string, query url.Values) request {
	return request{method: http.MethodGet, path: path, query: query, idempotent: true}
}

// del builds a DELETE request, which is idempotent.
func del(path string) request {
	return request{method: http.MethodDelete, path: path, idempotent: true}
}

// seg escapes one path segment taken from caller input.
func seg(s string) string { return url.PathEscape(s) }

// do performs r and decodes a 2xx JSON body into out (when out is non-nil).
//
// Retry policy:
//   - 401 or 403: the cached token is dropped and the request is sent once
//     more with a fresh token (this does not count as a retry). Kinde's spec
//     answers 403 "Invalid credentials" for a bad or expired M2M token; a 403
//     for a missing scope comes back again and is returned.
//   - 429: the request was throttled, not executed, so it is retried whatever
//     its method, after RateLimit-Reset seconds (plus jitter, capped by
//     MaxRetryWait). The wait is shared: every request of this Client holds
//     back until it has passed.
//   - 5xx and network errors: retried with exponential backoff and jitter,
//     but only for idempotent requests (GET, DELETE, PATCH of fixed values,
//     refresh_claims). A POST that creates something is never retried after
//     it may have reached Kinde, as that could create duplicates.
//   - A DELETE whose outcome is unclear (an earlier attempt failed after it
//     may have reached Kinde, and the request then fails) is checked by
//     reading (request.gone); without a reader, a 400 or 404 (unknown id)
//     after such an attempt is taken as done: that attempt deleted it.
//
// Every attempt first waits for a turn of the shared rate limit, in the
// lane of ctx (see WithPriority).
func (c *Client) do(ctx context.Context, r request, out any) error {
	var body []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("kinde: %s %s: encode body: %w", r.method, r.path, err)
		}
		body = b
	}
	u := c.base + apiPrefix + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	logPath := apiPrefix + r.path
	endpoint := endpointPattern(r.path)
	fail := func(err error) error { return fmt.Errorf("kinde: %s %s: %w", r.method, logPath, err) }

	retries := 0
	reauthed := false
	ambiguous := false // an earlier attempt may have reached Kinde
	// settle turns a failure after an unclear DELETE into success when the
	// thing is gone.
	settle := func(err error) error {
		if !ambiguous || r.method != http.MethodDelete || ctx.Err() != nil {
			return err
		}
		if r.gone == nil {
			if IsUnknownID(err) {
				c.log.DebugContext(ctx, "kinde: retried delete found nothing; an earlier attempt succeeded", "path", logPath)
				return nil
			}
			return err
		}
		gone, gerr := r.gone(ctx)
		switch {
		case gerr != nil:
			return fmt.Errorf("%w (and reading whether it was deleted failed: %v)", err, gerr)
		case gone:
			c.log.DebugContext(ctx, "kinde: delete outcome was unclear; reading shows it is gone", "path", logPath)
			return nil
		}
		return err
	}
	for {
		if err := c.waitTurn(ctx); err != nil {
			return fail(err)
		}
		tok, err := c.tokens.token(ctx)
		if err != nil {
			return fail(err)
		}
		countCall(ctx)
		start := time.Now()
		status, hdr, respBody, err := c.send(ctx, r.method, u, logPath, body, tok)
		c.observeRequest(r.method, endpoint, status, time.Since(start))
		if err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			if !r.idempotent || retries >= c.maxRetries {
				ambiguous = ambiguous || r.idempotent
				return settle(fail(err))
			}
			ambiguous = true
			c.observeRetry(r.method, endpoint, RetryNetwork)
			if err := c.backoff(ctx, logPath, retries, "network"); err != nil {
				return fail(err)
			}
			retries++
			continue
		}

		switch {
		case status >= 200 && status < 300:
			if out == nil || len(bytes.TrimSpace(respBody)) == 0 {
				return nil
			}
			if err := json.Unmarshal(respBody, out); err != nil {
				return fail(fmt.Errorf("decode response: %w", err))
			}
			return nil

		case (status == http.StatusUnauthorized || status == http.StatusForbidden) && !reauthed:
			c.tokens.invalidate(tok)
			reauthed = true
			c.log.DebugContext(ctx, "kinde: token refused; fetching a new one", "path", logPath, "status", status)
			continue

		case status == http.StatusTooManyRequests:
			if retries >= c.maxRetries {
				return newAPIError(r.method, logPath, status, respBody)
			}
			c.observeRetry(r.method, endpoint, RetryRateLimited)
			wait := c.resetWait(hdr, retries)
			c.pause(wait)
			c.log.DebugContext(ctx, "kinde: rate limited, waiting", "path", logPath, "wait", wait, "retry", retries+1)
			retries++
			continue

		case status >= 500:
			if !r.idempotent || retries >= c.maxRetries {
				ambiguous = ambiguous || r.idempotent
				return settle(newAPIError(r.method, logPath, status, respBody))
			}
			ambiguous = true
			c.observeRetry(r.method, endpoint, RetryServerError)
			if err := c.backoff(ctx, logPath, retries, strconv.Itoa(status)); err != nil {
				return fail(err)
			}
			retries++
			continue

		default:
			return settle(newAPIError(r.method, logPath, status, respBody))
		}
	}
}

// send performs one HTTP exchange and returns the status, headers and body.
func (c *Client) send(ctx context.Context, method, u, logPath string, body []byte, tok string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.log.DebugContext(ctx, "kinde request", "method", method, "path", logPath, "status", 0, "duration", time.Since(start))
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	c.log.DebugContext(ctx, "kinde request", "method", method, "path", logPath, "status", resp.StatusCode, "duration", time.Since(start))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, resp.Header, respBody, nil
}

// waitTurn waits for any shared 429 pause, then for a turn of the rate
// limit in the lane of ctx (PriorityOf).
func (c *Client) waitTurn(ctx context.Context) error {
	c.pauseMu.Lock()
	until := c.pauseUntil
	c.pauseMu.Unlock()
	if d := time.Until(until); d > 0 {
		// Spread the requests released by the pause a little.
		if err := sleep(ctx, d+jitter(min(d/4, time.Second))); err != nil {
			return err
		}
	}
	if err := c.budget.wait(ctx, PriorityOf(ctx)); err != nil {
		return fmt.Errorf("rate limiter: %w", err)
	}
	return nil
}

// pause holds back every request of this Client for d.
func (c *Client) pause(d time.Duration) {
	until := time.Now().Add(d)
	c.pauseMu.Lock()
	if until.After(c.pauseUntil) {
		c.pauseUntil = until
	}
	c.pauseMu.Unlock()
}

// resetWait returns how long to wait after a 429: RateLimit-Reset seconds
// (Retry-After as a fallback), else the backoff for this retry, capped.
func (c *Client) resetWait(h http.Header, retry int) time.Duration {
	for _, name := range []string{"RateLimit-Reset", "Retry-After"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 || math.IsNaN(secs) || math.IsInf(secs, 0) {
			continue
		}
		return min(time.Duration(secs*float64(time.Second)), c.maxWait)
	}
	return c.backoffDelay(retry)
}

// backoffDelay is the exponential backoff for the given retry, with jitter
// (between half and all of the step), capped by MaxRetryWait.
func (c *Client) backoffDelay(retry int) time.Duration {
	d := c.retryBase << min(retry, 20)
	if d <= 0 || d > c.maxWait {
		d = c.maxWait
	}
	return d/2 + jitter(d/2)
}

// backoff sleeps for the backoff of the given retry.
func (c *Client) backoff(ctx context.Context, logPath string, retry int, reason string) error {
	d := c.backoffDelay(retry)
	c.log.DebugContext(ctx, "kinde: retrying", "path", logPath, "reason", reason, "wait", d, "retry", retry+1)
	return sleep(ctx, d)
}

// jitter returns a random duration in [0, limit).
func jitter(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
