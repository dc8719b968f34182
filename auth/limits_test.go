package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"permsync/internal/testsupport"
	"permsync/store"
)

// TestSessionLimits: a sign-in past the per-user cap ends the user's oldest
// sessions (and says so, so their pages leave), and a session unused for
// the idle timeout is gone on its next request.
func TestSessionLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: t.TempDir(), URL: testsupport.DatabaseURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, _ := NewKeyring([]string{strings.Repeat("s", 32)})
	st := NewSessionStore(db, keys, "http://localhost:8080", testsupport.Logger(t))
	var told atomic.Int32
	st.SetLimits(SessionLimits{Idle: time.Hour, MaxPerUser: 3,
		OnEnd: func(_ context.Context, userID, _ string) {
			if userID == "kp_cap" {
				told.Add(1)
			}
		}})
	clock := time.Now()
	st.now = func() time.Time { return clock }

	var cookies []*http.Cookie
	for range 5 {
		clock = clock.Add(time.Second) // each sign-in newer than the last
		g := &Grant{UserID: "kp_cap", Tokens: Tokens{Access: "a", Refresh: "r"},
			AccessExpiresAt: clock.Add(5 * time.Minute), RefreshExpiresAt: clock.Add(30 * 24 * time.Hour)}
		rec := httptest.NewRecorder()
		if _, err := st.Start(ctx, rec, httptest.NewRequest("GET", "/callback", nil), g, 0); err != nil {
			t.Fatal(err)
		}
		cookies = append(cookies, rec.Result().Cookies()[0])
	}
	rows, err := db.UserSessions(ctx, "kp_cap")
	if err != nil || len(rows) != 3 {
		t.Fatalf("sessions after 5 sign-ins with a cap of 3: %d, %v", len(rows), err)
	}
	if told.Load() != 2 {
		t.Errorf("told of %d ended sessions; want 2 (one per sign-in past the cap)", told.Load())
	}
	load := func(c *http.Cookie) *Session {
		r := httptest.NewRequest("GET", "/dashboard", nil)
		r.AddCookie(c)
		s, err := st.Load(r)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for i, c := range cookies {
		if alive := load(c) != nil; alive != (i >= 2) {
			t.Errorf("sign-in %d alive = %v; want only the newest 3", i+1, alive)
		}
	}

	// Used 59 minutes later: alive (and touched). Then an hour and a
	// minute of nothing: gone, row and all.
	clock = clock.Add(59 * time.Minute)
	if load(cookies[4]) == nil {
		t.Fatal("a session used within the idle timeout was ended")
	}
	clock = clock.Add(61 * time.Minute)
	if load(cookies[4]) != nil {
		t.Fatal("a session idle past the timeout still loads")
	}
	if rows, _ := db.UserSessions(ctx, "kp_cap"); len(rows) != 2 {
		t.Fatalf("sessions left = %d; want the idle one deleted (2 left)", len(rows))
	}
}
