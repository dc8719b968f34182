package app_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/internal/testsupport"
)

// refreshClaimsCalls counts the successful refresh_claims devkinde served,
// per user.
func refreshClaimsCalls(env *apptest.Env) map[string]int {
	n := map[string]int{}
	for _, r := range env.DevKinde.Requests() {
		rest, ok := strings.CutPrefix(r.Path, "/api/v1/users/")
		if !ok || r.Method != http.MethodPost || r.Status != http.StatusOK {
			continue
		}
		if id, ok := strings.CutSuffix(rest, "/refresh_claims"); ok {
			n[id]++
		}
	}
	return n
}

// managementCalls counts the Management API requests devkinde served.
func managementCalls(env *apptest.Env) int {
	n := 0
	for _, r := range env.DevKinde.Requests() {
		if strings.HasPrefix(r.Path, "/api/v1/") {
			n++
		}
	}
	return n
}

// TestKindeSideDeleteReachesHoldersWithoutSession deletes a permission in
// "Kinde's dashboard" while nobody who holds it is signed in to permsync:
// the holders come from the directory, and every one of them gets
// refresh_claims.
func TestKindeSideDeleteReachesHoldersWithoutSession(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	ctx := context.Background()
	holders := []string{env.UserID(t, "admin@acme.test"), env.UserID(t, "alice@acme.test"), env.UserID(t, "carol@acme.test")}
	if n, _ := env.DB.UserSessions(ctx, holders[1]); len(n) != 0 {
		t.Fatal("alice has a session before the test signed her in")
	}
	kc := env.Kinde()
	if err := kc.DeletePermission(ctx, apptest.PermissionID(t, kc, "export:reports")); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, waitFor, "refresh_claims for every holder", func() bool {
		calls := refreshClaimsCalls(env)
		for _, id := range holders {
			if calls[id] == 0 {
				return false
			}
		}
		return true
	})
	if calls := refreshClaimsCalls(env); calls[env.UserID(t, "bob@acme.test")] != 0 {
		t.Errorf("bob, who never held export:reports, was refreshed: %v", calls)
	}
	// The directory no longer has the permission.
	var left int
	err := env.DB.QueryRow(ctx, `SELECT COUNT(*) FROM dir_permissions WHERE perm_key = ?`, "export:reports").Scan(&left)
	if err != nil || left != 0 {
		t.Errorf("export:reports still in the directory (%d, %v)", left, err)
	}
}

// TestReconciliationCatchesRoleEditWithoutWebhook takes export:reports off
// the analyst role at Kinde, which sends no webhook for it; the next
// reconciliation finds the difference and alice, the analyst, gets the same
// claim-refresh fan-out a webhook would have started. Nobody else lost it.
func TestReconciliationCatchesRoleEditWithoutWebhook(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	ctx := context.Background()
	alice := env.UserID(t, "alice@acme.test")
	aliceTab := env.Login(t, "alice@acme.test")
	if r := aliceTab.Get(t, "/reports/export"); r.StatusCode != http.StatusOK {
		t.Fatalf("before: GET /reports/export = %d", r.StatusCode)
	}
	env.DevKinde.ResetRequests()
	removeFromRole(t, env, "analyst", "export:reports")
	for _, d := range env.DevKinde.Deliveries() {
		if strings.HasPrefix(d.EventType, "role.") {
			t.Fatalf("devkinde sent %s for a role edit; this test needs no webhook", d.EventType)
		}
	}

	env.SyncDirectory(t)
	testsupport.Eventually(t, waitFor, "refresh_claims for alice", func() bool { return refreshClaimsCalls(env)[alice] > 0 })
	calls := refreshClaimsCalls(env)
	if len(calls) != 1 {
		t.Errorf("refresh_claims went to %v; only alice lost export:reports", calls)
	}
	fs, err := env.DB.Fanouts(ctx, 10)
	if err != nil || len(fs) == 0 || !strings.Contains(fs[0].Reason, "export:reports") {
		t.Fatalf("fan-outs = %+v, %v", fs, err)
	}
	testsupport.Eventually(t, waitFor, "alice's export to be refused", func() bool {
		return aliceTab.Get(t, "/reports/export").StatusCode == http.StatusForbidden
	})

	// Reconciling again finds nothing new.
	env.DevKinde.ResetRequests()
	env.SyncDirectory(t)
	if calls := refreshClaimsCalls(env); len(calls) != 0 {
		t.Errorf("a second reconciliation refreshed %v", calls)
	}
}

// adminGETs are every admin page a GET reaches, for a seed user and
// permission.
func adminGETs(t *testing.T, env *apptest.Env, permKey, userEmail string) []string {
	t.Helper()
	id := apptest.PermissionID(t, env.Kinde(), permKey)
	user := env.UserID(t, userEmail)
	return []string{"/admin", "/admin/permissions", "/admin/permissions?q=export", "/admin/permissions/" + id,
		"/admin/permissions/" + id + "?q=acme&offset=0", "/admin/roles", "/admin/users", "/admin/users?q=alice",
		"/admin/users/" + user, "/admin/users/" + user + "/sessions/revoke", "/admin/fanouts", "/admin/webhooks",
		"/admin/permissions/does-not-exist"}
}

// TestAdminPagesCallNoKinde walks every admin GET and counts the
// Management API requests devkinde serves meanwhile: none. Each page says
// how fresh the directory is. With Kinde unreachable the pages still
// answer, from the copy, and say how old it is.
func TestAdminPagesCallNoKinde(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	admin := env.Login(t, "admin@acme.test")
	paths := adminGETs(t, env, "export:reports", "carol@acme.test")

	env.DevKinde.ResetRequests()
	for _, p := range paths {
		r := admin.Get(t, p)
		want := http.StatusOK
		if strings.HasSuffix(p, "does-not-exist") {
			want = http.StatusNotFound
		}
		if r.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", p, r.StatusCode, want)
			continue
		}
		if want == http.StatusOK && !strings.Contains(r.TestID(t, "directory-freshness").Text(), "synced") {
			t.Errorf("GET %s does not say how fresh the directory is", p)
		}
	}
	if n := managementCalls(env); n != 0 {
		t.Errorf("the admin pages made %d Management API requests: %+v", n, env.DevKinde.Requests())
	}

	// Kinde goes away: a sync fails, the copy stays, the pages say so.
	env.SetOutage(apptest.Outage503)
	if err := env.App.SyncDirectory(context.Background()); err == nil {
		t.Fatal("a sync with Kinde unreachable succeeded")
	}
	for _, p := range paths[:4] {
		r := admin.Get(t, p)
		if r.StatusCode != http.StatusOK {
			t.Errorf("with Kinde unreachable, GET %s = %d", p, r.StatusCode)
			continue
		}
		if f := r.TestID(t, "directory-freshness").Text(); !strings.Contains(f, "ago") || !strings.Contains(f, "failed") {
			t.Errorf("with Kinde unreachable, GET %s says %q; want the age and the failure", p, f)
		}
	}
}

// TestAdminAtScale syncs a generated tenant (100 organizations, 500 users)
// and reads the pages a big tenant needs: a permission held by hundreds
// shows counts, a first page and a search; the users page pages too.
func TestAdminAtScale(t *testing.T) {
	sd := devkinde.GenerateSeed(devkinde.GenerateOptions{Seed: 2, Organizations: 100, Users: 500})
	env := apptest.Start(t, apptest.Options{Seed: sd})
	ctx := context.Background()
	st, err := env.DB.DirSyncState(ctx)
	if err != nil || st.OrgsTotal != 101 || st.LastCalls == 0 {
		t.Fatalf("directory sync state = %+v, %v", st, err)
	}
	// Holders of export:reports, from the seed.
	rolePerms := map[string][]string{}
	for _, r := range sd.Roles {
		rolePerms[r.Key] = r.Permissions
	}
	want := map[string]bool{}
	for _, u := range sd.Users {
		for _, m := range u.Organizations {
			if slices.Contains(m.Permissions, "export:reports") {
				want[u.ID] = true
			}
			for _, rk := range m.Roles {
				if slices.Contains(rolePerms[rk], "export:reports") {
					want[u.ID] = true
				}
			}
		}
	}

	admin := env.Login(t, "admin@acme.test")
	id := apptest.PermissionID(t, env.Kinde(), "export:reports")
	env.DevKinde.ResetRequests()
	page := admin.Get(t, "/admin/permissions/"+id)
	if page.StatusCode != http.StatusOK {
		t.Fatalf("permission page = %d", page.StatusCode)
	}
	total, _ := strconv.Atoi(strings.TrimSpace(page.TestID(t, "affected-total").Text()))
	if total != len(want) {
		t.Errorf("the page counts %d holders of export:reports, want %d", total, len(want))
	}
	if rows := page.TestID(t, "affected-user").Length(); rows != 50 {
		t.Errorf("the first page lists %d holders, want 50", rows)
	}
	next := page.Doc(t).Find(`[data-testid="holder-pager"] a[rel="next"]`).AttrOr("href", "")
	if next == "" {
		t.Fatal("no next page of holders")
	}
	if second := admin.Get(t, next); second.TestID(t, "affected-user").First().AttrOr("data-email", "") ==
		page.TestID(t, "affected-user").First().AttrOr("data-email", "") {
		t.Error("the second page starts where the first did")
	}
	found := admin.Get(t, "/admin/permissions/"+id+"?q=user0042%40")
	if emails := found.TestID(t, "affected-user"); emails.Length() != 1 || emails.AttrOr("data-email", "") != "user0042@customer0042.test" {
		t.Errorf("search user0042@ found %d rows (%s)", emails.Length(), emails.AttrOr("data-email", ""))
	}
	users := admin.Get(t, "/admin/users")
	if rows := users.TestID(t, "user").Length(); rows != 50 || users.TestID(t, "user-pager").Length() != 1 {
		t.Errorf("users page: %d rows, pager %d", rows, users.TestID(t, "user-pager").Length())
	}
	if n := managementCalls(env); n != 0 {
		t.Errorf("the pages made %d Management API requests", n)
	}

	// The directory agrees with the seed.
	p, err := env.DB.DirPermissionByKey(ctx, "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	holders, err := env.DB.DirHolderIDs(ctx, p.ID)
	if err != nil || len(holders) != len(want) {
		t.Errorf("directory holders %d (%v), want %d", len(holders), err, len(want))
	}
	for _, id := range holders {
		if !want[id] {
			t.Errorf("the directory says %s holds export:reports; the seed does not", id)
		}
	}
}
