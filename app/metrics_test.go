package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"permsync/app/apptest"
	"permsync/kinde"
)

// scrape fetches url and returns its body, failing unless the answer is
// 200 in Prometheus' text format.
func scrape(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s = %d %s:\n%.500s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return string(b)
}

// sample returns the value of the first sample of family name whose labels
// include every label in want ("k=\"v\"" pairs), and whether there is one.
func sample(body, name string, want ...string) (float64, bool) {
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		labels, value := "", rest
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			labels, value = rest[1:end], rest[end+1:]
		}
		match := true
		for _, w := range want {
			if !strings.Contains(","+labels+",", ","+w+",") {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		return v, true
	}
	return 0, false
}

func TestMetricsAfterTraffic(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	alice.Get(t, "/dashboard")
	alice.Get(t, "/reports")
	alice.Get(t, "/no-such-page-for-metrics")
	if resp := alice.HTMX(t, http.MethodPost, "/session/refresh", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /session/refresh = %d", resp.StatusCode)
	}
	admin := env.Login(t, "admin@acme.test")
	bob := env.UserID(t, "bob@acme.test")
	if resp := admin.Get(t, "/admin/users/"+bob); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/users/{bob} = %d", resp.StatusCode)
	}

	// A one-user fan-out (a River job calling refresh_claims), and a change
	// at Kinde that devkinde announces with a signed webhook.
	if resp := admin.PostForm(t, "/admin/users/"+bob+"/refresh-claims", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /admin/users/{bob}/refresh-claims = %d", resp.StatusCode)
	}
	if _, err := env.Kinde().CreatePermission(context.Background(),
		kinde.PermissionInput{Key: "read:metrics", Name: "Read metrics"}); err != nil {
		t.Fatal(err)
	}
	var body string
	for deadline := time.Now().Add(15 * time.Second); ; {
		body = scrape(t, env.URL+"/metrics")
		done, _ := sample(body, "permsync_fanout_items_total", `result="done"`)
		accepted, _ := sample(body, "permsync_webhook_deliveries_total", `outcome="accepted"`)
		if done >= 1 && accepted >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s: fan-out items done = %v, webhooks accepted = %v", done, accepted)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, family := range []string{
		"permsync_http_requests_total", "permsync_http_request_duration_seconds_bucket",
		"permsync_sse_streams_in_flight", "permsync_session_refreshes_total",
		"permsync_session_refresh_duration_seconds_count", "permsync_kinde_requests_total",
		"permsync_kinde_request_duration_seconds_count", "permsync_webhook_deliveries_total",
		"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total",
		"go_sql_open_connections", "permsync_fanout_items_total", "permsync_fanout_job_retries_total",
	} {
		if _, ok := sample(body, family); !ok {
			t.Errorf("no %s in /metrics", family)
		}
	}
	for _, want := range [][]string{
		{"permsync_http_requests_total", `method="GET"`, `route="/dashboard"`, `status_class="2xx"`},
		{"permsync_http_requests_total", `method="GET"`, `route="/callback"`, `status_class="3xx"`},
		{"permsync_http_requests_total", `method="GET"`, `route="/admin/users/:id"`, `status_class="2xx"`},
		{"permsync_http_requests_total", `method="GET"`, `route="unmatched"`, `status_class="4xx"`},
		{"permsync_http_requests_total", `method="POST"`, `route="/session/refresh"`, `status_class="2xx"`},
		{"permsync_session_refreshes_total", `reason="button"`, `outcome="refreshed"`},
		{"permsync_kinde_requests_total", `method="POST"`, `endpoint="/users/{id}/refresh_claims"`, `status_class="2xx"`},
	} {
		if v, ok := sample(body, want[0], want[1:]...); !ok || v < 1 {
			t.Errorf("%s%v = %v (found %v), want ≥ 1", want[0], want[1:], v, ok)
		}
	}
	// Labels are patterns: no raw path or user id ever becomes a label.
	for _, raw := range []string{bob, "no-such-page-for-metrics", "kp_"} {
		if strings.Contains(body, raw) {
			t.Errorf("/metrics contains %q", raw)
		}
	}
}

func TestMetricsOnlyForLocalClients(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	h := env.App.Handler()
	get := func(remote string, hdr http.Header) int {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.RemoteAddr = remote
		for k, v := range hdr {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, tt := range []struct {
		name   string
		remote string
		hdr    http.Header
		want   int
	}{
		{"loopback v4", "127.0.0.1:40000", nil, http.StatusOK},
		{"loopback v6", "[::1]:40000", nil, http.StatusOK},
		{"remote", "192.0.2.7:40000", nil, http.StatusForbidden},
		{"private network", "10.0.0.8:40000", nil, http.StatusForbidden},
		{"through a proxy (X-Forwarded-For)", "127.0.0.1:40000", http.Header{"X-Forwarded-For": {"198.51.100.9"}}, http.StatusForbidden},
		{"through a proxy (Forwarded)", "127.0.0.1:40000", http.Header{"Forwarded": {"for=198.51.100.9"}}, http.StatusForbidden},
		{"through a proxy (X-Real-IP)", "127.0.0.1:40000", http.Header{"X-Real-Ip": {"198.51.100.9"}}, http.StatusForbidden},
	} {
		if got := get(tt.remote, tt.hdr); got != tt.want {
			t.Errorf("%s: GET /metrics = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestMetricsOnOwnListener(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_METRICS_ADDR": "127.0.0.1:0"}})
	env.Login(t, "bob@acme.test")

	// Not on the main listener, not even for local clients.
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the main listener = %d, want 404", resp.StatusCode)
	}

	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); {
		if addr = env.App.MetricsAddr(); addr == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if addr == "" {
		t.Fatal("the metrics listener never opened")
	}
	body := scrape(t, "http://"+addr+"/metrics")
	if v, ok := sample(body, "permsync_http_requests_total", `route="/callback"`); !ok || v < 1 {
		t.Errorf("metrics listener does not show the app's traffic (%v, %v)", v, ok)
	}
	// The metrics listener serves nothing else.
	resp, err = http.Get("http://" + addr + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /dashboard on the metrics listener = %d, want 404", resp.StatusCode)
	}
}

func TestMetricsOff(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_METRICS_ADDR": "off"}})
	env.Login(t, "bob@acme.test")
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics with metrics off = %d, want 404", resp.StatusCode)
	}
	if env.App.MetricsHandler() != nil || env.App.MetricsAddr() != "" {
		t.Fatal("metrics off, yet the app has a metrics handler or listener")
	}
}
