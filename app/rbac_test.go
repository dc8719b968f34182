package app_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// The RBAC panel over real HTTP against devkinde: a change is previewed,
// confirmed (refused at once to exactly the users who lose it), made at
// Kinde after the undo window, and reaches the users' open pages.

// confirmEdit previews an edit as the admin, checks the preview's tables
// with check, confirms it and returns the edit page's path.
func confirmEdit(t *testing.T, adm *apptest.Client, edit url.Values, confirm string,
	check func(preview *apptest.Response)) string {
	t.Helper()
	preview := adm.Get(t, "/admin/edits/preview?"+edit.Encode())
	if preview.StatusCode != http.StatusOK {
		t.Fatalf("preview = %d:\n%.2000s", preview.StatusCode, preview.Body)
	}
	if check != nil {
		check(preview)
	}
	form := url.Values{}
	for k, v := range edit {
		form[k] = v
	}
	if confirm != "" {
		form.Set("confirm", confirm)
	}
	resp := adm.NoRedirect().PostForm(t, "/admin/edits", form)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/edits/") {
		t.Fatalf("confirm = %d, Location %q:\n%.2000s", resp.StatusCode, loc, resp.Body)
	}
	return loc
}

// emails returns the data-email of the rows of a preview table.
func emails(t *testing.T, page *apptest.Response, table string) []string {
	t.Helper()
	var out []string
	page.TestID(t, table).Find(`[data-testid="effect"]`).Each(func(_ int, s *goquery.Selection) {
		out = append(out, s.AttrOr("data-email", ""))
	})
	return out
}

// editState reads the edit page's state as the panel shows it.
func editState(t *testing.T, adm *apptest.Client, path string) (state string, finished bool, page *apptest.Response) {
	t.Helper()
	page = adm.HTMX(t, http.MethodGet, path, nil)
	st := page.TestID(t, "edit-status")
	return st.AttrOr("data-state", ""), st.AttrOr("data-finished", "") == "true", page
}

func status(t *testing.T, c *apptest.Client, path string) int {
	t.Helper()
	return c.Get(t, path).StatusCode
}

// TestRemovePermissionFromRole is the example of the panel: removing
// export:reports from role analyst refuses it to alice on her next request,
// while carol (a direct grant) and admin (the admin role) keep it. The
// preview says so; Kinde is called after the window; the edit page shows
// Kinde's answer.
func TestRemovePermissionFromRole(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "1s"}})
	alice := env.Login(t, "alice@acme.test")
	carol := env.Login(t, "carol@acme.test")
	adm := env.Login(t, "admin@acme.test")
	for _, c := range []*apptest.Client{alice, carol, adm} {
		if s := status(t, c, "/reports/export"); s != http.StatusOK {
			t.Fatalf("before: GET /reports/export = %d", s)
		}
	}
	analyst := env.SeedRoleID(t, "analyst")
	editPath := confirmEdit(t, adm, url.Values{"kind": {"role.permission.remove"}, "role_id": {analyst},
		"permission_id": {env.SeedPermissionID(t, "export:reports")}}, "export:reports",
		func(p *apptest.Response) {
			if got := emails(t, p, "losers"); !slices.Equal(got, []string{"alice@acme.test"}) {
				t.Errorf("preview losers = %v; want alice alone", got)
			}
		})
	if s := status(t, alice, "/reports/export"); s != http.StatusForbidden {
		t.Fatalf("alice right after the confirm: %d; want 403", s)
	}
	if s := status(t, alice, "/reports"); s != http.StatusOK {
		t.Fatalf("alice keeps read:reports: %d", s)
	}
	for name, c := range map[string]*apptest.Client{"carol": carol, "admin": adm} {
		if s := status(t, c, "/reports/export"); s != http.StatusOK {
			t.Fatalf("%s after the confirm: %d; want 200 (another path grants it)", name, s)
		}
	}
	testsupport.Eventually(t, waitFor, "the edit to be applied and its fan-out to finish", func() bool {
		state, finished, _ := editState(t, adm, editPath)
		return state == store.RBACEditApplied && finished
	})
	page := adm.Get(t, editPath)
	if out := page.TestID(t, "kinde-outcome").Text(); !strings.Contains(out, "analyst") {
		t.Errorf("the edit page's outcome %q does not name the role", out)
	}
	perms, err := env.Kinde().AllRolePermissions(context.Background(), analyst)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(perms, func(p kinde.Permission) bool { return p.Key == "export:reports" }) {
		t.Fatal("Kinde's analyst role still grants export:reports")
	}
	if s := status(t, alice, "/reports/export"); s != http.StatusForbidden {
		t.Fatalf("alice after Kinde: %d; want 403", s)
	}
	for name, c := range map[string]*apptest.Client{"carol": carol, "admin": adm} {
		if s := status(t, c, "/reports/export"); s != http.StatusOK {
			t.Fatalf("%s after Kinde: %d; want 200", name, s)
		}
	}
}

// TestRoleRemovalInOneOrganization: taking analyst from alice in one
// organization refuses its keys to her sessions there and leaves her session
// in the other organization, where she holds the same role, untouched.
func TestRoleRemovalInOneOrganization(t *testing.T) {
	const beta = "org_b0b0b0b0b0b0"
	seed := devkinde.DefaultSeed()
	seed.Organizations = append(seed.Organizations, devkinde.SeedOrganization{Code: beta, Name: "Beta"})
	for i := range seed.Users {
		if seed.Users[i].Email == "alice@acme.test" {
			seed.Users[i].Organizations = append(seed.Users[i].Organizations,
				devkinde.SeedMembership{Code: beta, Roles: []string{"analyst"}})
		}
	}
	env := apptest.Start(t, apptest.Options{Seed: seed, Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "0"}})
	aliceAcme := env.Login(t, "alice@acme.test")
	aliceBeta := env.NewClient(t)
	if r := aliceBeta.SignIn(t, "/login?org_code="+beta, "alice@acme.test", devkinde.DemoPassword); r.StatusCode != http.StatusOK {
		t.Fatalf("sign-in to %s = %d", beta, r.StatusCode)
	}
	adm := env.Login(t, "admin@acme.test")
	aliceID := env.UserID(t, "alice@acme.test")
	editPath := confirmEdit(t, adm, url.Values{"kind": {"member.role.remove"}, "user_id": {aliceID},
		"org_code": {devkinde.DefaultOrgCode}, "role_id": {env.SeedRoleID(t, "analyst")}}, "analyst", nil)
	if s := status(t, aliceAcme, "/reports"); s != http.StatusForbidden {
		t.Fatalf("alice in org_acme: GET /reports = %d; want 403", s)
	}
	if s := status(t, aliceBeta, "/reports/export"); s != http.StatusOK {
		t.Fatalf("alice in %s: GET /reports/export = %d; want 200", beta, s)
	}
	testsupport.Eventually(t, waitFor, "the edit to be applied", func() bool {
		state, finished, _ := editState(t, adm, editPath)
		return state == store.RBACEditApplied && finished
	})
	kc := env.Kinde()
	acme, err := kc.OrganizationUserRoles(context.Background(), devkinde.DefaultOrgCode, aliceID)
	if err != nil {
		t.Fatal(err)
	}
	other, err := kc.OrganizationUserRoles(context.Background(), beta, aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(acme) != 0 || len(other) != 1 || other[0].Key != "analyst" {
		t.Fatalf("alice's roles at Kinde: org_acme %+v, %s %+v", acme, beta, other)
	}
	if s := status(t, aliceBeta, "/reports/export"); s != http.StatusOK {
		t.Fatalf("alice in %s after Kinde: %d; want 200", beta, s)
	}
	if s := status(t, aliceAcme, "/reports"); s != http.StatusForbidden {
		t.Fatalf("alice in org_acme after Kinde: %d; want 403", s)
	}
}

// TestGrantReachesTheOpenPage: a direct grant goes through the same path:
// after the Kinde call and refresh_claims, bob's open dashboard gets its
// event and its live update shows the new permission.
func TestGrantReachesTheOpenPage(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "0"}})
	bob := env.Login(t, "bob@acme.test")
	if s := status(t, bob, "/reports/export"); s != http.StatusForbidden {
		t.Fatalf("before: bob GET /reports/export = %d; want 403", s)
	}
	shown := strings.Join(bob.Get(t, "/dashboard").Permissions(t), " ")
	stream := openStream(t, bob)
	defer stream.close()
	adm := env.Login(t, "admin@acme.test")
	confirmEdit(t, adm, url.Values{"kind": {"member.permission.add"}, "user_id": {env.UserID(t, "bob@acme.test")},
		"org_code": {devkinde.DefaultOrgCode}, "permission_id": {env.SeedPermissionID(t, "export:reports")}}, "",
		func(p *apptest.Response) {
			if got := emails(t, p, "gainers"); !slices.Equal(got, []string{"bob@acme.test"}) {
				t.Errorf("preview gainers = %v; want bob", got)
			}
		})
	for {
		ev := stream.next(t, "claims-changed")
		if strings.Contains(ev.Data, `"stage":"refreshed"`) {
			break
		}
	}
	live := bob.LiveSync(t, "/dashboard", shown)
	if live.StatusCode != http.StatusOK || !slices.Contains(live.Permissions(t), "export:reports") {
		t.Fatalf("the live update (%d) shows %v; want export:reports", live.StatusCode, live.Permissions(t))
	}
	if s := status(t, bob, "/reports/export"); s != http.StatusOK {
		t.Fatalf("bob after the grant: GET /reports/export = %d; want 200", s)
	}
}

// TestUndoAnEdit: inside the window Undo gives the key back at once and
// Kinde never sees the change, even after the window has passed.
func TestUndoAnEdit(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "4s"}})
	bob := env.Login(t, "bob@acme.test")
	adm := env.Login(t, "admin@acme.test")
	bobID := env.UserID(t, "bob@acme.test")
	viewer := env.SeedRoleID(t, "viewer")
	editPath := confirmEdit(t, adm, url.Values{"kind": {"member.role.remove"}, "user_id": {bobID},
		"org_code": {devkinde.DefaultOrgCode}, "role_id": {viewer}}, "viewer", nil)
	if s := status(t, bob, "/reports"); s != http.StatusForbidden {
		t.Fatalf("in the window: bob GET /reports = %d; want 403", s)
	}
	page := adm.Get(t, editPath)
	if page.TestID(t, "undo").Length() != 1 || page.TestID(t, "undo-countdown").Length() != 1 {
		t.Fatal("the edit page offers no Undo or no countdown")
	}
	resp := adm.PostForm(t, editPath+"/undo", url.Values{})
	if resp.StatusCode != http.StatusOK || resp.TestID(t, "edit-status").AttrOr("data-state", "") != store.RBACEditUndone {
		t.Fatalf("after Undo: %d, state %q", resp.StatusCode, resp.TestID(t, "edit-status").AttrOr("data-state", ""))
	}
	if s := status(t, bob, "/reports"); s != http.StatusOK {
		t.Fatalf("after Undo: bob GET /reports = %d; want 200", s)
	}
	testsupport.Eventually(t, waitFor, "the Kinde-call job to run after the window", func() bool {
		return deleteJobState(t, env, "") == "completed"
	})
	for _, r := range env.DevKinde.Requests() {
		if r.Method == http.MethodDelete && strings.Contains(r.Path, "/roles/"+viewer) {
			t.Fatalf("Kinde saw %s %s for an undone edit", r.Method, r.Path)
		}
	}
	if s := status(t, bob, "/reports"); s != http.StatusOK {
		t.Fatalf("after the window: bob GET /reports = %d; want 200", s)
	}
}

// TestKindeRefusesAnEdit: Kinde answers 500: the job retries with backoff,
// the edit page says why, and alice stays refused; once Kinde accepts, the
// edit is applied.
func TestKindeRefusesAnEdit(t *testing.T) {
	env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "0"}})
	alice := env.Login(t, "alice@acme.test")
	adm := env.Login(t, "admin@acme.test")
	analyst := env.SeedRoleID(t, "analyst")
	env.RefuseKinde(http.MethodDelete, "/api/v1/roles/", http.StatusInternalServerError)
	editPath := confirmEdit(t, adm, url.Values{"kind": {"role.permission.remove"}, "role_id": {analyst},
		"permission_id": {env.SeedPermissionID(t, "export:reports")}}, "export:reports", nil)
	var why string
	testsupport.Eventually(t, waitFor, "the edit page to say Kinde refused", func() bool {
		state, _, page := editState(t, adm, editPath)
		why = page.TestID(t, "kinde-error").Text()
		return state == store.RBACEditApplying && why != ""
	})
	if !strings.Contains(why, "500") {
		t.Errorf("the page's reason %q does not name Kinde's 500", why)
	}
	if s := status(t, alice, "/reports/export"); s != http.StatusForbidden {
		t.Fatalf("while Kinde refuses: alice GET /reports/export = %d; want 403", s)
	}
	env.RefuseKinde("", "", 0)
	testsupport.Eventually(t, waitFor, "the retried call to be applied", func() bool {
		state, finished, _ := editState(t, adm, editPath)
		return state == store.RBACEditApplied && finished
	})
	if s := status(t, alice, "/reports/export"); s != http.StatusForbidden {
		t.Fatalf("after Kinde: alice GET /reports/export = %d; want 403", s)
	}
}

// TestPagesWordTheKindeCallUnderWay holds Kinde's answer to a fan-out's
// Kinde call and reads the pages meanwhile: the call's phase is stored as
// deleting whatever the change, but only a deletion's pages say deleting;
// an access change's fan-out page and its edit page say the change is being
// made. Released, each call completes.
func TestPagesWordTheKindeCallUnderWay(t *testing.T) {
	cases := []struct {
		name          string
		method, path  string // the Kinde call held
		start         func(t *testing.T, env *apptest.Env, adm *apptest.Client) (fanoutPath, editPath string)
		words, absent string
	}{
		{"deletion", http.MethodDelete, "/api/v1/permissions/",
			func(t *testing.T, env *apptest.Env, adm *apptest.Client) (string, string) {
				_, fanoutPath := deleteExport(t, env, adm)
				return fanoutPath, ""
			}, "Deleting at Kinde.", "change"},
		{"adding a permission to a role", http.MethodPatch, "/api/v1/roles/",
			func(t *testing.T, env *apptest.Env, adm *apptest.Client) (string, string) {
				editPath := confirmEdit(t, adm, url.Values{"kind": {"role.permission.add"},
					"role_id": {env.SeedRoleID(t, "viewer")}, "permission_id": {env.SeedPermissionID(t, "export:reports")}},
					"", nil)
				_, _, page := editState(t, adm, editPath)
				fanoutPath := page.TestID(t, "edit-status").Find(`a[href^="/admin/fanouts/"]`).AttrOr("href", "")
				if fanoutPath == "" {
					t.Fatalf("the edit page links no fan-out:\n%.2000s", page.Body)
				}
				return fanoutPath, editPath
			}, "Making the change at Kinde.", "elet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := apptest.Start(t, apptest.Options{Env: map[string]string{"PERMSYNC_UNDO_WINDOW": "0"}})
			adm := env.Login(t, "admin@acme.test")
			hold := env.HoldKinde(t, c.method, c.path)
			fanoutPath, editPath := c.start(t, env, adm)

			// The call is under way once Kinde holds it: the fan-out's phase
			// moves first and the edit's state just before the call, so a
			// page read as soon as the phase moved could find the edit still
			// pending.
			testsupport.Eventually(t, waitFor, "the Kinde call to reach Kinde", func() bool { return hold.Waiting() > 0 })
			ph, resp := phase(t, adm, fanoutPath)
			words := strings.Join(strings.Fields(resp.TestID(t, "phase-text").Text()), " ")
			if ph != store.FanoutPhaseDeleting || !strings.Contains(words, c.words) || strings.Contains(words, c.absent) {
				t.Errorf("during the call the fan-out page is %s and says %q; want %s, %q and no %q", ph, words,
					store.FanoutPhaseDeleting, c.words, c.absent)
			}
			if editPath != "" {
				state, _, page := editState(t, adm, editPath)
				words := strings.Join(strings.Fields(page.TestID(t, "edit-phase").Text()), " ")
				if state != store.RBACEditApplying || !strings.Contains(words, c.words) || strings.Contains(words, c.absent) {
					t.Errorf("during the call the edit page is %s and says %q; want %q and no %q", state, words, c.words,
						c.absent)
				}
			}

			hold.Release()
			testsupport.Eventually(t, waitFor, "the call to complete and the fan-out to finish", func() bool {
				ph, resp := phase(t, adm, fanoutPath)
				return ph == store.FanoutPhaseRefreshing && resp.TestID(t, "progress").AttrOr("data-finished", "") == "true"
			})
		})
	}
}
