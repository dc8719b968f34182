package kinde

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestEndpointPattern(t *testing.T) {
	for path, want := range map[string]string{
		"/permissions":                                   "/permissions",
		"/permissions/perm_1":                            "/permissions/{id}",
		"/user":                                          "/user",
		"/users/kp_0123/refresh_claims":                  "/users/{id}/refresh_claims",
		"/users/kp_0123/sessions":                        "/users/{id}/sessions",
		"/roles/r1/permissions":                          "/roles/{id}/permissions",
		"/organizations/org_acme/users":                  "/organizations/{id}/users",
		"/organizations/org_acme/users/kp_1/permissions": "/organizations/{id}/users/{id}/permissions",
		"/events/evt%2F1":                                "/events/{id}",
	} {
		if got := endpointPattern(path); got != want {
			t.Errorf("endpointPattern(%q) = %q, want %q", path, got, want)
		}
	}
}

// recordingObserver keeps what a Client reports.
type recordingObserver struct {
	mu       sync.Mutex
	requests []string // "METHOD endpoint status"
	retries  []string // "METHOD endpoint reason"
}

func (o *recordingObserver) ObserveRequest(method, endpoint string, status int, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, fmt.Sprintf("%s %s %d", method, endpoint, status))
}

func (o *recordingObserver) ObserveRetry(method, endpoint string, reason RetryReason) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retries = append(o.retries, fmt.Sprintf("%s %s %s", method, endpoint, reason))
}

func TestObserverSeesAttemptsAndRetries(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			w.Header().Set("RateLimit-Reset", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			writeJSON(w, 503, ``)
		default:
			writeJSON(w, 200, `{"code":"OK"}`)
		}
	})
	obs := &recordingObserver{}
	c := f.client(Config{Observer: obs})
	if err := c.RefreshUserClaims(context.Background(), "kp:0123"); err != nil {
		t.Fatal(err)
	}
	wantReq := []string{
		"POST /users/{id}/refresh_claims 429",
		"POST /users/{id}/refresh_claims 503",
		"POST /users/{id}/refresh_claims 200",
	}
	wantRetry := []string{
		"POST /users/{id}/refresh_claims rate_limited",
		"POST /users/{id}/refresh_claims server_error",
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if !slices.Equal(obs.requests, wantReq) {
		t.Errorf("requests = %q, want %q", obs.requests, wantReq)
	}
	if !slices.Equal(obs.retries, wantRetry) {
		t.Errorf("retries = %q, want %q", obs.retries, wantRetry)
	}
}
