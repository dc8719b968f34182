package handlers

import (
	"net/http/httptest"
	"testing"
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
