package kinde

// Unit tests of the client's request policy against a tiny edge fake, for
// behaviour devkinde cannot be made to show on demand (a 401 on a fresh token,
// a repeated next_token, a lost DELETE response). The Management API itself
// is tested against devkinde in devkinde_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKinde serves /oauth2/token and hands /api/v1 requests to api.
type fakeKinde struct {
	srv       *httptest.Server
	tokenHits atomic.Int32
	expiresIn int
	api       func(w http.ResponseWriter, r *http.Request, n int) // n counts API requests from 1
	apiHits   atomic.Int32

	mu      sync.Mutex
	lastTok string
}

func newFakeKinde(t *testing.T, api func(w http.ResponseWriter, r *http.Request, n int)) *fakeKinde {
	t.Helper()
	f := &fakeKinde{api: api, expiresIn: 3600}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/oauth2/token":
			_ = r.ParseForm()
			if r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("client_secret") != "s3cret" ||
				r.Form.Get("audience") != f.srv.URL+"/api" {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			n := f.tokenHits.Add(1)
			tok := fmt.Sprintf("tok-%d", n)
			f.mu.Lock()
			f.lastTok = tok
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"bearer","expires_in":%d}`, tok, f.expiresIn)
		case strings.HasPrefix(r.URL.Path, "/api/v1/"):
			f.mu.Lock()
			want := "Bearer " + f.lastTok
			f.mu.Unlock()
			if r.Header.Get("Authorization") != want {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			f.api(w, r, int(f.apiHits.Add(1)))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeKinde) client(cfg Config) *Client {
	cfg.IssuerURL = f.srv.URL + "/"
	cfg.ClientID, cfg.ClientSecret = "m2m", "s3cret"
	if cfg.Rate == 0 {
		cfg.Rate = 1000
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = time.Millisecond
	}
	cfg.HTTPClient = f.srv.Client()
	return New(cfg)
}

func writeJSON(w http.ResponseWriter, status int, v string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, v)
}

func TestTokenCachedAndSingleFlight(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, `{"code":"OK","message":"Success"}`)
	})
	c := f.client(Config{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := c.RefreshUserClaims(context.Background(), "kp:1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.tokenHits.Load(); n != 1 {
		t.Fatalf("token fetched %d times, want 1", n)
	}
}

func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, `{}`)
	})
	f.expiresIn = 3600
	c := f.client(Config{})
	clock := time.Now()
	c.tokens.now = func() time.Time { return clock }
	ctx := context.Background()
	if err := c.RefreshUserClaims(ctx, "kp_1"); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(3600*time.Second - 2*tokenMargin)
	if err := c.RefreshUserClaims(ctx, "kp_1"); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenHits.Load(); n != 1 {
		t.Fatalf("token fetched %d times before the margin, want 1", n)
	}
	clock = clock.Add(tokenMargin + time.Second) // within the last minute
	if err := c.RefreshUserClaims(ctx, "kp_1"); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenHits.Load(); n != 2 {
		t.Fatalf("token fetched %d times, want 2", n)
	}
}

func TestUnauthorizedRefetchesTokenOnce(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, `{"code":"OK"}`)
	})
	c := f.client(Config{})
	ctx := context.Background()
	if err := c.RefreshUserClaims(ctx, "kp_1"); err != nil {
		t.Fatal(err)
	}
	// The issuer forgets the token (e.g. a key rotation): the next call gets
	// a 401, fetches a new token and succeeds.
	f.mu.Lock()
	f.lastTok = "revoked"
	f.mu.Unlock()
	// A fetch sets lastTok again, so the retry is accepted.
	if err := c.RefreshUserClaims(ctx, "kp_1"); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenHits.Load(); n != 2 {
		t.Fatalf("token fetched %d times, want 2", n)
	}
}

func TestUnauthorizedTwiceIsTyped(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 401, `{"errors":[{"code":"UNAUTHORIZED","message":"nope"}]}`)
	})
	c := f.client(Config{})
	err := c.RefreshUserClaims(context.Background(), "kp_1")
	if !IsUnauthorized(err) {
		t.Fatalf("err = %v, want a 401 APIError", err)
	}
	if n := f.apiHits.Load(); n != 2 {
		t.Fatalf("API called %d times, want 2", n)
	}
}

func TestBadCredentials(t *testing.T) {
	f := newFakeKinde(t, nil)
	c := New(Config{IssuerURL: f.srv.URL, ClientID: "m2m", ClientSecret: "wrong", HTTPClient: f.srv.Client()})
	err := c.DeletePermission(context.Background(), "p1")
	if err == nil || !strings.Contains(err.Error(), "fetch M2M token") {
		t.Fatalf("err = %v, want a token error", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestRateLimitedWaitsForReset(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("RateLimit-Reset", "0.05")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		writeJSON(w, 200, `{"code":"OK"}`)
	})
	c := f.client(Config{})
	// POST create is retried after a 429: the throttled request never ran.
	if _, err := c.CreatePermission(context.Background(), PermissionInput{Key: "k", Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if n := f.apiHits.Load(); n != 2 {
		t.Fatalf("API called %d times, want 2", n)
	}
}

func TestRateLimitedGivesUpAfterMaxRetries(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("RateLimit-Reset", "0")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	c := f.client(Config{MaxRetries: 2})
	err := c.RefreshUserClaims(context.Background(), "kp_1")
	if !IsRateLimited(err) {
		t.Fatalf("err = %v, want 429 APIError", err)
	}
	if n := f.apiHits.Load(); n != 3 {
		t.Fatalf("API called %d times, want 3 (1 + 2 retries)", n)
	}
}

func TestRateLimitWaitRespectsContext(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("RateLimit-Reset", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	c := f.client(Config{MaxRetryWait: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for f.apiHits.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	err := c.RefreshUserClaims(ctx, "kp_1")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestServerErrorsRetriedForIdempotentOnly(t *testing.T) {
	fail := func(upto int) func(w http.ResponseWriter, r *http.Request, n int) {
		return func(w http.ResponseWriter, r *http.Request, n int) {
			if n <= upto {
				writeJSON(w, 500, `{"errors":[{"code":"INTERNAL","message":"boom"}]}`)
				return
			}
			writeJSON(w, 200, `{"permissions":[{"id":"p1","key":"read:reports"}]}`)
		}
	}
	t.Run("GET retried", func(t *testing.T) {
		f := newFakeKinde(t, fail(2))
		ps, err := f.client(Config{}).AllPermissions(context.Background())
		if err != nil || len(ps) != 1 || ps[0].Key != "read:reports" {
			t.Fatalf("AllPermissions = %+v, %v", ps, err)
		}
	})
	t.Run("POST create not retried", func(t *testing.T) {
		f := newFakeKinde(t, fail(1))
		_, err := f.client(Config{}).CreatePermission(context.Background(), PermissionInput{Key: "k"})
		if !IsServerError(err) {
			t.Fatalf("err = %v, want 500 APIError", err)
		}
		if n := f.apiHits.Load(); n != 1 {
			t.Fatalf("API called %d times, want 1", n)
		}
	})
	t.Run("retries exhausted", func(t *testing.T) {
		f := newFakeKinde(t, fail(100))
		err := f.client(Config{MaxRetries: 3}).RefreshUserClaims(context.Background(), "kp_1")
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 500 || apiErr.Code != "INTERNAL" {
			t.Fatalf("err = %v, want typed 500", err)
		}
		if n := f.apiHits.Load(); n != 4 {
			t.Fatalf("API called %d times, want 4", n)
		}
	})
	t.Run("retries disabled", func(t *testing.T) {
		f := newFakeKinde(t, fail(100))
		_ = f.client(Config{MaxRetries: -1}).RefreshUserClaims(context.Background(), "kp_1")
		if n := f.apiHits.Load(); n != 1 {
			t.Fatalf("API called %d times, want 1", n)
		}
	})
}

func TestDeleteNotFoundAfterAmbiguousFailureIsSuccess(t *testing.T) {
	for _, status := range []int{404, 400} {
		f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				writeJSON(w, 502, ``) // the delete happened, the answer was lost
				return
			}
			writeJSON(w, status, `{"errors":[{"code":"WEBHOOK_NOT_FOUND","message":"No webhook"}]}`)
		})
		c := f.client(Config{})
		if err := c.DeleteWebhook(context.Background(), "w1"); err != nil {
			t.Fatalf("%d: err = %v, want nil", status, err)
		}
		// Without an earlier failure, the status is reported.
		f.apiHits.Store(5)
		if err := c.DeleteWebhook(context.Background(), "w1"); StatusCode(err) != status {
			t.Fatalf("err = %v, want %d", err, status)
		}
	}
}

func TestNetworkErrorRetried(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close() // drop the connection mid-request
			return
		}
		writeJSON(w, 200, `{"roles":[{"id":"r1","key":"admin"}]}`)
	})
	roles, err := f.client(Config{}).AllRoles(context.Background())
	if err != nil || len(roles) != 1 {
		t.Fatalf("AllRoles = %+v, %v", roles, err)
	}
}

func TestPaginationFollowsNextTokenAndDetectsLoops(t *testing.T) {
	t.Run("pages", func(t *testing.T) {
		f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if r.URL.Query().Get("page_size") != "2" {
				t.Errorf("page_size = %q", r.URL.Query().Get("page_size"))
			}
			switch r.URL.Query().Get("next_token") {
			case "":
				writeJSON(w, 200, `{"organization_users":[{"id":"kp:1"},{"id":"kp_2"}],"next_token":"b"}`)
			case "b":
				writeJSON(w, 200, `{"organization_users":[{"id":"kp_3"}],"next_token":null}`)
			}
		})
		c := f.client(Config{PageSize: 2})
		users, err := c.AllOrganizationUsers(context.Background(), "org_acme", OrgUserFilter{Permissions: []string{"a:b", "c:d"}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, u := range users {
			ids = append(ids, u.ID)
		}
		if got := strings.Join(ids, ","); got != "kp_1,kp_2,kp_3" {
			t.Fatalf("ids = %s", got)
		}
	})
	t.Run("early break stops fetching", func(t *testing.T) {
		f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, 200, fmt.Sprintf(`{"permissions":[{"id":"p%d"}],"next_token":"t%d"}`, n, n))
		})
		for _, err := range f.client(Config{}).Permissions(context.Background()) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if n := f.apiHits.Load(); n != 1 {
			t.Fatalf("API called %d times, want 1", n)
		}
	})
	t.Run("repeated token", func(t *testing.T) {
		f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, 200, `{"permissions":[{"id":"p"}],"next_token":"same"}`)
		})
		_, err := f.client(Config{}).AllPermissions(context.Background())
		if err == nil || !strings.Contains(err.Error(), "to avoid a loop") {
			t.Fatalf("err = %v, want loop detection", err)
		}
	})
	t.Run("empty page ends the walk", func(t *testing.T) {
		// Whether Kinde's last page omits next_token is not documented: a
		// server that keeps returning one ends with an empty page.
		f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
			switch r.URL.Query().Get("next_token") {
			case "":
				writeJSON(w, 200, `{"permissions":[{"id":"p1"}],"next_token":"a"}`)
			default:
				writeJSON(w, 200, fmt.Sprintf(`{"permissions":[],"next_token":"t%d"}`, n))
			}
		})
		perms, err := f.client(Config{}).AllPermissions(context.Background())
		if err != nil || len(perms) != 1 {
			t.Fatalf("perms = %+v, %v", perms, err)
		}
		if n := f.apiHits.Load(); n != 2 {
			t.Fatalf("API called %d times, want 2", n)
		}
	})
	t.Run("same page under new tokens", func(t *testing.T) {
		f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, 200, fmt.Sprintf(`{"permissions":[{"id":"p"}],"next_token":"t%d"}`, n))
		})
		_, err := f.client(Config{}).AllPermissions(context.Background())
		if err == nil || !strings.Contains(err.Error(), "repeated an earlier one") {
			t.Fatalf("err = %v, want loop detection", err)
		}
	})
	t.Run("next_token forever is bounded", func(t *testing.T) {
		f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, 200, fmt.Sprintf(`{"permissions":[{"id":"p%d"}],"next_token":"t%d"}`, n, n))
		})
		_, err := f.client(Config{MaxPages: 7}).AllPermissions(context.Background())
		if err == nil || !strings.Contains(err.Error(), "more than 7 pages") {
			t.Fatalf("err = %v, want the page bound", err)
		}
		if n := f.apiHits.Load(); n != 7 {
			t.Fatalf("API called %d times, want 7", n)
		}
	})
}

// Kinde's spec answers 403 "Invalid credentials" for a bad or expired M2M
// token: the cached token is dropped and the call retried once.
func TestForbiddenRefetchesTokenOnce(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeJSON(w, 403, `{"errors":[{"code":"TOKEN_INVALID","message":"Invalid credentials"}]}`)
			return
		}
		writeJSON(w, 200, `{"code":"OK"}`)
	})
	c := f.client(Config{})
	if err := c.RefreshUserClaims(context.Background(), "kp_1"); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenHits.Load(); n != 2 {
		t.Fatalf("token fetched %d times, want 2", n)
	}
	// A 403 that persists (a missing scope) is returned after one retry.
	f2 := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 403, `{"errors":[{"code":"INSUFFICIENT_SCOPE","message":"Missing scope"}]}`)
	})
	if err := f2.client(Config{}).RefreshUserClaims(context.Background(), "kp_1"); !IsForbidden(err) {
		t.Fatalf("err = %v, want 403", err)
	}
	if n := f2.apiHits.Load(); n != 2 {
		t.Fatalf("API called %d times, want 2", n)
	}
}

// After an unclear DELETE (5xx after the request may have reached Kinde),
// the client reads whether the permission is gone.
func TestUnclearDeleteIsCheckedByReading(t *testing.T) {
	for _, tc := range []struct {
		name    string
		listed  string // the permissions listing after the failures
		wantErr bool
	}{
		{"gone", `{"permissions":[{"id":"other"}]}`, false},
		{"still there", `{"permissions":[{"id":"p1"}]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
				switch r.Method {
				case http.MethodDelete:
					writeJSON(w, 503, ``)
				default:
					writeJSON(w, 200, tc.listed)
				}
			})
			err := f.client(Config{MaxRetries: 2}).DeletePermission(context.Background(), "p1")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
	// A 400 (Kinde's answer for an unknown id) after a lost response: read.
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case r.Method == http.MethodGet:
			writeJSON(w, 200, `{"permissions":[]}`)
		case n == 1:
			writeJSON(w, 502, ``)
		default:
			writeJSON(w, 400, `{"errors":[{"code":"PERMISSION_INVALID","message":"Invalid permission"}]}`)
		}
	})
	if err := f.client(Config{}).DeletePermission(context.Background(), "p1"); err != nil {
		t.Fatalf("err = %v, want nil", err)
	}
}

func TestRequestShapes(t *testing.T) {
	type seen struct{ method, path, query, body string }
	var mu sync.Mutex
	var got []seen
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b)})
		mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/user":
			writeJSON(w, 200, `{"id":"kp:9","preferred_email":"a@b.test"}`)
		case strings.HasSuffix(r.URL.Path, "/sessions") && r.Method == "GET":
			writeJSON(w, 200, `{"sessions":[{"user_id":"kp:9","session_id":"s1","started_on":"2026-01-02T03:04:05Z"}]}`)
		case r.URL.Path == "/api/v1/webhooks" && r.Method == "POST":
			writeJSON(w, 200, `{"webhook":{"id":"webhook_1","endpoint":"http://127.0.0.1/x"}}`)
		case strings.HasPrefix(r.URL.Path, "/api/v1/events/"):
			writeJSON(w, 200, `{"event":{"type":"user.updated","event_id":"event_1","timestamp":1700000000,"data":{"user":{"id":"kp_9"}}}}`)
		default:
			writeJSON(w, 200, `{"code":"OK","message":"Success"}`)
		}
	})
	c := f.client(Config{})
	ctx := context.Background()
	u, err := c.User(ctx, "kp:9")
	if err != nil || u.ID != "kp_9" || u.Email != "a@b.test" {
		t.Fatalf("User = %+v, %v", u, err)
	}
	ss, err := c.UserSessions(ctx, "kp_9")
	if err != nil || len(ss) != 1 || ss[0].UserID != "kp_9" || ss[0].StartedOn.Year() != 2026 {
		t.Fatalf("UserSessions = %+v, %v", ss, err)
	}
	wh, err := c.CreateWebhook(ctx, WebhookInput{Endpoint: "http://127.0.0.1/x", Name: "n", EventTypes: []string{"user.updated"}})
	if err != nil || wh.ID != "webhook_1" {
		t.Fatalf("CreateWebhook = %+v, %v", wh, err)
	}
	ev, err := c.Event(ctx, "event_1")
	if err != nil || ev.Type != "user.updated" {
		t.Fatalf("Event = %+v, %v", ev, err)
	}
	if err := c.UpdatePermission(ctx, "p/1", PermissionInput{Name: "New"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllUsers(ctx, UserFilter{UserIDs: []string{"kp:1", "kp_2"}, Emails: []string{"a@b.test"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteUserSessions(ctx, "kp:9"); err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{"GET", "/api/v1/user", "id=kp_9", ""},
		{"GET", "/api/v1/users/kp_9/sessions", "", ""},
		{"POST", "/api/v1/webhooks", "", `{"endpoint":"http://127.0.0.1/x","name":"n","event_types":["user.updated"]}`},
		{"GET", "/api/v1/events/event_1", "", ""},
		{"PATCH", "/api/v1/permissions/p%2F1", "", `{"name":"New"}`},
		{"GET", "/api/v1/users", "email=a%40b.test&page_size=100&user_id=kp_1%2Ckp_2", ""},
		{"DELETE", "/api/v1/users/kp_9/sessions", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	h := slogHandlerTo(&buf, &mu)
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeJSON(w, 500, ``)
			return
		}
		writeJSON(w, 200, `{}`)
	})
	c := f.client(Config{Logger: h})
	if err := c.RefreshUserClaims(context.Background(), "kp_1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "refresh_claims") || !strings.Contains(out, "status=500") {
		t.Fatalf("expected debug lines, got %q", out)
	}
	for _, secret := range []string{"tok-", "s3cret", "Bearer"} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q: %s", secret, out)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := New(Config{IssuerURL: "http://127.0.0.1:1/"})
	if c.base != "http://127.0.0.1:1" || c.maxRetries != DefaultMaxRetries || c.pageSize != DefaultPageSize ||
		float64(c.budget.lim.Limit()) != DefaultRate || c.budget.lim.Burst() != DefaultBurst {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if got := c.tokens.cfg.EndpointParams.Get("audience"); got != "http://127.0.0.1:1/api" {
		t.Fatalf("audience = %q", got)
	}
}

// lockedWriter serialises writes from concurrent log calls.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func slogHandlerTo(w io.Writer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{mu, w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestAddsRetriedAfterServerErrors(t *testing.T) {
	// Adding a role or a direct permission to a member is a set operation:
	// repeating it changes nothing, so a 5xx is retried (a create is not).
	ctx := context.Background()
	for name, call := range map[string]func(c *Client) error{
		"role":       func(c *Client) error { return c.AddOrganizationUserRole(ctx, "org_a", "kp_1", "r1") },
		"permission": func(c *Client) error { return c.AddOrganizationUserPermission(ctx, "org_a", "kp_1", "p1") },
		"role permission": func(c *Client) error {
			return c.AddRolePermission(ctx, "r1", "p1")
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 502, ``)
					return
				}
				writeJSON(w, 200, `{"code":"OK","message":"Success","permissions_added":[],"permissions_removed":[]}`)
			})
			if err := call(f.client(Config{})); err != nil {
				t.Fatal(err)
			}
			if n := f.apiHits.Load(); n != 2 {
				t.Fatalf("API called %d times, want 2", n)
			}
		})
	}
}

func TestCreateRoleNotRetriedAndInputChecked(t *testing.T) {
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 503, ``)
	})
	c := f.client(Config{})
	ctx := context.Background()
	if _, err := c.CreateRole(ctx, RoleInput{Key: "k", Name: "K"}); !IsServerError(err) {
		t.Fatalf("err = %v, want 503", err)
	}
	if n := f.apiHits.Load(); n != 1 {
		t.Fatalf("create sent %d times, want 1", n)
	}
	for _, in := range []RoleInput{{Key: "k"}, {Name: "n"}, {Key: " ", Name: "n"}} {
		if _, err := c.CreateRole(ctx, in); !errors.Is(err, ErrRoleInput) {
			t.Errorf("CreateRole(%+v) = %v, want ErrRoleInput", in, err)
		}
		if err := c.UpdateRole(ctx, "r1", in); !errors.Is(err, ErrRoleInput) {
			t.Errorf("UpdateRole(%+v) = %v, want ErrRoleInput", in, err)
		}
	}
	if n := f.apiHits.Load(); n != 1 {
		t.Fatalf("bad input reached the API: %d calls", n)
	}
}

func TestRBACEditRequestShapes(t *testing.T) {
	type seen struct{ method, path, body string }
	var mu sync.Mutex
	var got []seen
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.EscapedPath(), string(b)})
		mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/api/v1/roles":
			writeJSON(w, 201, `{"code":"OK","message":"Success","role":{"id":"r9"}}`)
		case r.Method == "PATCH" && strings.HasSuffix(r.URL.Path, "/permissions"):
			writeJSON(w, 200, `{"code":"OK","message":"Success","permissions_added":["p1"],"permissions_removed":[]}`)
		default:
			writeJSON(w, 200, `{"code":"OK","message":"Success"}`)
		}
	})
	c := f.client(Config{})
	ctx := context.Background()
	yes := true
	id, err := c.CreateRole(ctx, RoleInput{Key: "auditor", Name: "Auditor", IsDefaultRole: &yes})
	if err != nil || id != "r9" {
		t.Fatalf("CreateRole = %q, %v", id, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.UpdateRole(ctx, "r9", RoleInput{Key: "auditor", Name: "Auditors", Description: "Read-only"}))
	must(c.AddRolePermission(ctx, "r9", "p1"))
	must(c.RemoveRolePermission(ctx, "r9", "p2"))
	must(c.DeleteRole(ctx, "r9"))
	must(c.AddOrganizationUserRole(ctx, "org_a", "kp:1", "r1"))
	must(c.RemoveOrganizationUserRole(ctx, "org_a", "kp_1", "r1"))
	must(c.AddOrganizationUserPermission(ctx, "org_a", "kp_1", "p1"))
	must(c.RemoveOrganizationUserPermission(ctx, "org_a", "kp_1", "p1"))
	must(c.RemoveOrganizationUser(ctx, "org_a", "kp:1"))
	want := []seen{
		{"POST", "/api/v1/roles", `{"key":"auditor","name":"Auditor","is_default_role":true}`},
		{"PATCH", "/api/v1/roles/r9", `{"key":"auditor","name":"Auditors","description":"Read-only"}`},
		{"PATCH", "/api/v1/roles/r9/permissions", `{"permissions":[{"id":"p1"}]}`},
		{"DELETE", "/api/v1/roles/r9/permissions/p2", ""},
		{"DELETE", "/api/v1/roles/r9", ""},
		{"POST", "/api/v1/organizations/org_a/users/kp_1/roles", `{"role_id":"r1"}`},
		{"DELETE", "/api/v1/organizations/org_a/users/kp_1/roles/r1", ""},
		{"POST", "/api/v1/organizations/org_a/users/kp_1/permissions", `{"permission_id":"p1"}`},
		{"DELETE", "/api/v1/organizations/org_a/users/kp_1/permissions/p1", ""},
		{"DELETE", "/api/v1/organizations/org_a/users/kp_1", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestUpdateRolePermissionsBatches(t *testing.T) {
	var sizes []int
	var mu sync.Mutex
	f := newFakeKinde(t, func(w http.ResponseWriter, r *http.Request, n int) {
		var body struct {
			Permissions []struct{ ID, Operation string } `json:"permissions"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		sizes = append(sizes, len(body.Permissions))
		mu.Unlock()
		var added, removed []string
		for _, p := range body.Permissions {
			if p.Operation == "delete" {
				removed = append(removed, p.ID)
			} else {
				added = append(added, p.ID)
			}
		}
		b, _ := json.Marshal(map[string]any{"permissions_added": added, "permissions_removed": removed})
		writeJSON(w, 200, string(b))
	})
	var add, remove []string
	for i := range 150 {
		add = append(add, fmt.Sprintf("a%d", i))
	}
	for i := range 60 {
		remove = append(remove, fmt.Sprintf("r%d", i))
	}
	ch, err := f.client(Config{}).UpdateRolePermissions(context.Background(), "r1", add, remove)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Added) != 150 || len(ch.Removed) != 60 {
		t.Fatalf("change = %d added, %d removed", len(ch.Added), len(ch.Removed))
	}
	if len(sizes) != 3 || sizes[0] != 100 || sizes[1] != 100 || sizes[2] != 10 {
		t.Fatalf("batch sizes %v, want [100 100 10]", sizes)
	}
}
