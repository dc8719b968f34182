package app_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"permsync/app/apptest"
	"permsync/internal/testsupport"
	"permsync/store"
)

// TestAdminDeleteIsEnforcedAtOnceThenRefreshed follows a deletion made in
// permsync's admin panel from the affected user's side: her very next request
// is refused (the tombstone), and once the fan-out has cleared her claim cache
// at Kinde, her session is refreshed and its token no longer carries the key,
// without her signing in again.
func TestAdminDeleteIsEnforcedAtOnceThenRefreshed(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	ctx := context.Background()
	alice := env.Login(t, "alice@acme.test")
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the delete: GET /reports/export = %d; want 200", resp.StatusCode)
	}
	aliceID := env.UserID(t, "alice@acme.test")
	before := aliceSession(t, env, aliceID)
	if !slices.Contains(before.Permissions, "export:reports") {
		t.Fatalf("alice's token lacks export:reports before the delete: %v", before.Permissions)
	}

	adm := env.Login(t, "admin@acme.test")
	fanout := adm.DeletePermission(t, env.SeedPermissionID(t, "export:reports"), "export:reports")

	// Her very next request is refused, whatever her token still says.
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("right after the delete: GET /reports/export = %d; want 403", resp.StatusCode)
	}

	testsupport.Eventually(t, waitFor, "the fan-out to finish", func() bool {
		bar := adm.HTMX(t, http.MethodGet, fanout, nil).TestID(t, "progress")
		return bar.AttrOr("data-finished", "") == "true"
	})
	epoch, err := env.DB.UserEpoch(ctx, aliceID)
	if err != nil || epoch < 1 {
		t.Fatalf("alice's claims epoch = %d, %v; want bumped", epoch, err)
	}

	// Her session is refreshed (in the background, or by the guard on this
	// request) and keeps working: no sign-in, and what she still holds works.
	if resp := alice.Get(t, "/reports"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the fan-out: GET /reports = %d; want 200 (still signed in, still read:reports)", resp.StatusCode)
	}
	testsupport.Eventually(t, waitFor, "alice's session to be rebuilt from a fresh token", func() bool {
		s := aliceSession(t, env, aliceID)
		return s.ClaimsEpoch >= epoch && !slices.Contains(s.Permissions, "export:reports")
	})
	after := aliceSession(t, env, aliceID)
	if after.ID != before.ID {
		t.Error("alice got a new session; the refresh should keep her existing one")
	}
	if !slices.Contains(after.Permissions, "read:reports") {
		t.Errorf("alice's refreshed token lost read:reports: %v", after.Permissions)
	}
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after the refresh: GET /reports/export = %d; want 403", resp.StatusCode)
	}
}

// aliceSession returns the one live session row of the user.
func aliceSession(t *testing.T, env *apptest.Env, userID string) store.Session {
	t.Helper()
	rows, err := env.DB.UserSessions(context.Background(), userID)
	if err != nil || len(rows) != 1 {
		t.Fatalf("sessions of %s: %d rows, %v; want 1", userID, len(rows), err)
	}
	return rows[0]
}
