package handlers

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestOnlyEventsEscapesTheTimeout: the request timeout is lifted for GET
// /events alone, not for a request that merely asks for an event stream.
func TestOnlyEventsEscapesTheTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path, accept string
		stream       bool
	}{
		{"/events", "text/event-stream", true},
		{"/events", "", true},
		{"/dashboard", "text/event-stream", false},
		{"/admin/users", "text/html, text/event-stream", false},
		{"/events/x", "text/event-stream", false},
		{"/eventsx", "", false},
	} {
		r := httptest.NewRequest("GET", tt.path, nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		if got := isStream(r); got != tt.stream {
			t.Errorf("%s (Accept %q): stream = %v; want %v", tt.path, tt.accept, got, tt.stream)
		}
	}
}

// TestPreSessionCookieIsHostPrefixedOnHTTPS: the signed-out CSRF binding
// cannot be planted by a sibling subdomain on an https site.
func TestPreSessionCookieIsHostPrefixedOnHTTPS(t *testing.T) {
	t.Parallel()
	if got := newCSRFGuard(nil, "https://app.example.com", true, nil).cookieName(); got != "__Host-permsync_presession" {
		t.Fatalf("https: %q", got)
	}
	if got := newCSRFGuard(nil, "http://localhost:8080", false, nil).cookieName(); got != "permsync_presession" {
		t.Fatalf("http: %q", got)
	}
}

// TestClientIPCannotBeSpoofed: the client address is the socket's peer
// unless the peer is a trusted proxy; forwarding headers from anyone else
// are ignored.
func TestClientIPCannotBeSpoofed(t *testing.T) {
	t.Parallel()
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tt := range []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		realIP  string
		want    string
	}{
		{"no proxies, no header", nil, "203.0.113.7:5000", nil, "", "203.0.113.7"},
		{"no proxies, spoofed X-Forwarded-For", nil, "203.0.113.7:5000", []string{"127.0.0.1"}, "", "203.0.113.7"},
		{"no proxies, spoofed X-Real-IP", nil, "203.0.113.7:5000", nil, "127.0.0.1", "203.0.113.7"},
		{"trusted proxy names the client", proxies, "10.1.1.1:5000", []string{"198.51.100.9"}, "", "198.51.100.9"},
		{"client's own spoofed hop is skipped", proxies, "10.1.1.1:5000", []string{"127.0.0.1, 198.51.100.9"}, "", "198.51.100.9"},
		{"chain of trusted proxies", proxies, "10.1.1.1:5000", []string{"198.51.100.9, 10.2.2.2"}, "", "198.51.100.9"},
		{"untrusted peer's header ignored", proxies, "203.0.113.7:5000", []string{"127.0.0.1"}, "", "203.0.113.7"},
		{"loopback is not trusted unless listed", proxies, "127.0.0.1:5000", []string{"198.51.100.9"}, "", "127.0.0.1"},
		{"X-Real-IP ignored even from a proxy", proxies, "10.1.1.1:5000", nil, "127.0.0.1", "10.1.1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			if tt.xff != nil {
				r.Header["X-Forwarded-For"] = tt.xff
			}
			if tt.realIP != "" {
				r.Header.Set("X-Real-Ip", tt.realIP)
			}
			if got := clientIPExtractor(tt.trusted)(r); got != tt.want {
				t.Fatalf("client = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestMetricsOnlyForDirectLoopbackClients: /metrics on the main listener
// answers a loopback peer with no proxy header only; any proxy header, even
// empty, is refused.
func TestMetricsOnlyForDirectLoopbackClients(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.IPExtractor = clientIPExtractor(nil)
	for _, tt := range []struct {
		name   string
		peer   string
		header string
		value  string
		ok     bool
	}{
		{"loopback", "127.0.0.1:4000", "", "", true},
		{"loopback v6", "[::1]:4000", "", "", true},
		{"remote", "203.0.113.7:4000", "", "", false},
		{"remote naming loopback", "203.0.113.7:4000", "X-Forwarded-For", "127.0.0.1", false},
		{"empty X-Forwarded-For", "127.0.0.1:4000", "X-Forwarded-For", "", false},
		{"X-Client-IP", "127.0.0.1:4000", "X-Client-Ip", "203.0.113.7", false},
		{"CF-Connecting-IP", "127.0.0.1:4000", "Cf-Connecting-Ip", "203.0.113.7", false},
		{"True-Client-IP", "127.0.0.1:4000", "True-Client-Ip", "203.0.113.7", false},
		{"Forwarded", "127.0.0.1:4000", "Forwarded", "for=203.0.113.7", false},
		{"X-Real-IP", "127.0.0.1:4000", "X-Real-Ip", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/metrics", nil)
			r.RemoteAddr = tt.peer
			if tt.header != "" {
				r.Header[tt.header] = []string{tt.value}
			}
			if got := loopbackClient(e.NewContext(r, httptest.NewRecorder())); got != tt.ok {
				t.Fatalf("allowed = %v; want %v", got, tt.ok)
			}
		})
	}
}
