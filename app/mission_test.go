package app_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/internal/testsupport"
	"permsync/kinde"
)

// The mission, run against devkinde in every quirk mode: Kinde behaviours no
// source settles (a refresh that keeps returning the same access token, 403
// and 400 answers, a next_token on the last page, no role.updated, roles as
// strings, the roles claim off, a custom sign-in domain) must not change
// what a user may do. Each mode gets its own devkinde and app; the modes run
// in parallel.
func TestMissionUnderEveryQuirk(t *testing.T) {
	type mode struct {
		name       string
		quirks     devkinde.Quirks
		rolesClaim bool
		custom     bool
	}
	only := func(name string) mode {
		q, err := devkinde.ParseQuirks(name)
		if err != nil {
			t.Fatal(err)
		}
		return mode{name: name, quirks: q, rolesClaim: true, custom: q.CustomDomain}
	}
	modes := []mode{{name: "none", rolesClaim: true}}
	for _, n := range devkinde.QuirkNames() {
		modes = append(modes, only(n))
	}
	modes = append(modes,
		mode{name: "roles-claim-off"},
		mode{name: "cautious", quirks: devkinde.CautiousQuirks()},
		mode{name: "all", quirks: devkinde.AllQuirks(), custom: true},
	)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			env := apptest.Start(t, apptest.Options{
				CustomDomain: m.custom,
				DevKinde:     func(c *devkinde.Config) { q := m.quirks; c.Quirks = &q },
			})
			if m.rolesClaim {
				env.DevKinde.SetRolesClaim(devkinde.WebClientID, true)
			}
			runMission(t, env)
		})
	}
}

// runMission: sign in; delete a permission through the admin panel; delete
// one and edit a role in Kinde; "Refresh session"; the admin's "Refresh
// claims". After each step the affected users are refused on their next
// request and their sessions end up carrying Kinde's current permissions.
func runMission(t *testing.T, env *apptest.Env) {
	ctx := context.Background()
	kc := env.Kinde()
	alice := env.Login(t, "alice@acme.test") // analyst: read + export
	bob := env.Login(t, "bob@acme.test")     // viewer: read
	carol := env.Login(t, "carol@acme.test") // viewer + direct export
	adm := env.Login(t, "admin@acme.test")   // admin: everything
	for _, c := range []*apptest.Client{alice, carol} {
		if r := c.Get(t, "/reports/export"); r.StatusCode != http.StatusOK {
			t.Fatalf("before: GET /reports/export = %d", r.StatusCode)
		}
	}
	// Every M2M token permsync holds goes bad (as after a key rotation):
	// Kinde answers "Invalid credentials" (403, or 401) and permsync must
	// fetch a new one.
	env.DevKinde.InvalidateM2MTokens()

	// 1. Delete export:reports through the panel: refused at once, then the
	// fan-out refreshes the holders' sessions without it.
	exportID := apptest.PermissionID(t, kc, "export:reports")
	adm.DeletePermission(t, exportID, "export:reports")
	for _, c := range []*apptest.Client{alice, carol} {
		if r := c.Get(t, "/reports/export"); r.StatusCode != http.StatusForbidden {
			t.Fatalf("after the panel delete: GET /reports/export = %d; want 403", r.StatusCode)
		}
	}
	for _, email := range []string{"alice@acme.test", "carol@acme.test"} {
		waitSessionWithout(t, env, email, "export:reports")
	}

	// 2. Delete delete:reports in Kinde: the webhook tombstones it and the
	// admin's session is refreshed without it.
	env.DevKinde.InvalidateM2MTokens()
	if err := kc.DeletePermission(ctx, apptest.PermissionID(t, kc, "delete:reports")); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, waitFor, "delete:reports to stop counting on the dashboard", func() bool {
		return !slices.Contains(adm.Get(t, "/dashboard").Permissions(t), "delete:reports")
	})
	waitSessionWithout(t, env, "admin@acme.test", "delete:reports")

	// 3. A role edit in Kinde (read:reports off viewer), which Kinde may not
	// announce: bob's "Refresh session" picks it up.
	env.DevKinde.InvalidateM2MTokens()
	removeFromRole(t, env, "viewer", "read:reports")
	page := bob.Get(t, "/dashboard")
	frag := bob.HTMX(t, http.MethodPost, "/session/refresh", url.Values{"gen": {panelGen(t, page)}})
	if frag.StatusCode != http.StatusOK || slices.Contains(frag.Permissions(t), "read:reports") {
		t.Fatalf("Refresh session = %d, permissions %v; want read:reports gone", frag.StatusCode, frag.Permissions(t))
	}
	if r := bob.Get(t, "/reports"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("after Refresh session: GET /reports = %d; want 403", r.StatusCode)
	}

	// 4. Another role edit in Kinde (read:reports off analyst): the admin's
	// "Refresh claims" on alice brings her session up to date.
	env.DevKinde.InvalidateM2MTokens()
	removeFromRole(t, env, "analyst", "read:reports")
	aliceID := env.UserID(t, "alice@acme.test")
	adm.Get(t, "/admin/users/"+aliceID)
	if r := adm.NoRedirect().PostForm(t, "/admin/users/"+aliceID+"/refresh-claims", nil); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("admin refresh-claims = %d", r.StatusCode)
	}
	waitSessionWithout(t, env, "alice@acme.test", "read:reports")
	if r := alice.Get(t, "/reports"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("after the admin's refresh: GET /reports = %d; want 403", r.StatusCode)
	}
	// What nobody took away still works.
	if r := carol.Get(t, "/dashboard"); r.StatusCode != http.StatusOK {
		t.Fatalf("carol's dashboard = %d", r.StatusCode)
	}
	if r := adm.Get(t, "/reports"); r.StatusCode != http.StatusOK {
		t.Fatalf("admin's reports = %d", r.StatusCode)
	}
}

// waitSessionWithout waits until every session of the user carries a token
// without key (refreshed from Kinde, not only filtered by a tombstone).
func waitSessionWithout(t *testing.T, env *apptest.Env, email, key string) {
	t.Helper()
	id := kinde.NormalizeUserID(env.UserID(t, email))
	testsupport.Eventually(t, waitFor, email+"'s session to drop "+key, func() bool {
		ss, err := env.DB.UserSessions(context.Background(), id)
		if err != nil || len(ss) == 0 {
			return false
		}
		for _, s := range ss {
			if slices.Contains(s.Permissions, key) {
				return false
			}
		}
		return true
	})
}
