package app_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"permsync/app/apptest"
)

// startBenchEnv starts devkinde and the app for a benchmark with their logs
// at error level, so a benchmark measures the app and not the test log.
func startBenchEnv(b *testing.B, opts apptest.Options) *apptest.Env {
	b.Helper()
	quiet := slog.LevelError
	opts.LogLevel = &quiet
	return apptest.Start(b, opts)
}

// benchClient is a lean HTTP client for benchmark loops: a fixed Cookie
// header copied from a signed-in apptest.Client (no cookie jar lookups), no
// redirects followed (a signed-out request shows up as a 3xx, not as the
// sign-in page), no HTML parsing, and a connection pool large enough for
// b.RunParallel, so connections are reused rather than redialled. Only the
// app's loopback URL is ever requested.
type benchClient struct {
	hc     *http.Client
	base   string
	cookie string
}

func newBenchClient(b *testing.B, env *apptest.Env, from *apptest.Client) *benchClient {
	b.Helper()
	tr := &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}
	b.Cleanup(tr.CloseIdleConnections)
	c := &benchClient{
		hc: &http.Client{Transport: tr, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		base: env.URL,
	}
	if from != nil {
		u, err := url.Parse(env.URL)
		if err != nil {
			b.Fatal(err)
		}
		var parts []string
		for _, ck := range from.HTTP.Jar.Cookies(u) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		c.cookie = strings.Join(parts, "; ")
	}
	return c
}

// do sends one request and returns the status and the body; with keep
// false the body is discarded (and nil is returned).
func (c *benchClient) do(method, path string, body io.Reader, h http.Header, keep bool) (int, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return 0, nil, err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if !keep {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// get fetches path and discards the body.
func (c *benchClient) get(path string) (int, error) {
	status, _, err := c.do(http.MethodGet, path, nil, nil, false)
	return status, err
}

// perSecond is n events over d, as a rate.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
