package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/labstack/echo/v4"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/internal/testsupport"
	"permsync/kinde"
)

// The admin panel over real HTTP, against devkinde: every request goes
// through the same middleware, gate and admin.Service as in production.

// kindeHasPermission reports whether devkinde still lists the key.
func kindeHasPermission(t *testing.T, env *apptest.Env, key string) bool {
	t.Helper()
	perms, err := env.Kinde().AllPermissions(context.Background())
	if err != nil {
		t.Fatalf("list permissions at devkinde: %v", err)
	}
	return slices.ContainsFunc(perms, func(p kinde.Permission) bool { return p.Key == key })
}

// attrs collects an attribute of every element matching sel.
func attrs(doc *goquery.Document, sel, attr string) []string {
	var out []string
	doc.Find(sel).Each(func(_ int, s *goquery.Selection) {
		if v, ok := s.Attr(attr); ok {
			out = append(out, v)
		}
	})
	return out
}

func TestAdminListsPermissionsRolesAndUsers(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")

	resp := adm.Get(t, "/admin")
	if resp.StatusCode != http.StatusOK || resp.TestID(t, "stats").Length() != 1 {
		t.Fatalf("GET /admin = %d:\n%s", resp.StatusCode, resp.Body)
	}
	if got := strings.TrimSpace(resp.TestID(t, "stat-permissions").Find(".stat-value").Text()); got != "4" {
		t.Errorf("overview permission count = %q; want 4", got)
	}
	if resp.TestID(t, "empty").Length() == 0 || !strings.Contains(resp.Body, "Deleting a permission or changing access starts one") {
		t.Error("overview without fan-outs shows no empty state")
	}

	resp = adm.Get(t, "/admin/permissions")
	want := []string{"admin:permissions", "delete:reports", "export:reports", "read:reports"}
	if got := resp.Permissions(t); !equalSorted(got, want) {
		t.Errorf("permissions page keys = %v; want %v", got, want)
	}
	row := resp.Doc(t).Find(`tr[data-testid="permission"][data-key="export:reports"]`)
	if roles := row.Find(".tag-role").Text(); !strings.Contains(roles, "analyst") || !strings.Contains(roles, "admin") {
		t.Errorf("export:reports row names roles %q; want admin and analyst", roles)
	}
	if n := strings.TrimSpace(row.Find("td.num").Text()); n != "3" {
		t.Errorf("export:reports holders = %q; want 3 (admin, alice, carol)", n)
	}

	// The search box asks for the results alone, as htmx.
	frag := adm.HTMX(t, http.MethodGet, "/admin/permissions?q=export", nil)
	if frag.StatusCode != http.StatusOK || strings.Contains(frag.Body, "<html") {
		t.Fatalf("search fragment = %d, full page: %v", frag.StatusCode, strings.Contains(frag.Body, "<html"))
	}
	if got := frag.Permissions(t); !equalSorted(got, []string{"export:reports"}) {
		t.Errorf("search for export = %v", got)
	}
	if full := adm.Get(t, "/admin/permissions?q=zzz-nothing"); !strings.Contains(full.Body, "No permission matches") {
		t.Error("a search without matches shows no empty state")
	}

	resp = adm.Get(t, "/admin/roles")
	if got := attrs(resp.Doc(t), `[data-testid="role"]`, "data-key"); !equalSorted(got, []string{"admin", "analyst", "viewer"}) {
		t.Errorf("roles page = %v", got)
	}
	analyst := resp.Doc(t).Find(`[data-testid="role"][data-key="analyst"]`)
	if got := attrs(goquery.NewDocumentFromNode(analyst.Nodes[0]), `[data-testid="permission"]`, "data-key"); !equalSorted(got, []string{"export:reports", "read:reports"}) {
		t.Errorf("analyst grants %v", got)
	}

	resp = adm.Get(t, "/admin/users")
	emails := attrs(resp.Doc(t), `tr[data-testid="user"]`, "data-email")
	if !equalSorted(emails, []string{"admin@acme.test", "alice@acme.test", "bob@acme.test", "carol@acme.test"}) {
		t.Errorf("users page = %v", emails)
	}
	carol := resp.Doc(t).Find(`tr[data-testid="user"][data-email="carol@acme.test"]`)
	if !strings.Contains(carol.Text(), "export:reports") || !strings.Contains(carol.Text(), "viewer") {
		t.Errorf("carol's row lacks her role or direct permission: %q", carol.Text())
	}
	if carol.Find(`[data-testid="refresh-claims"]`).Length() != 1 || carol.Find(`[data-testid="revoke-sessions"]`).Length() != 1 {
		t.Error("carol's row lacks the refresh and revoke buttons")
	}

	resp = adm.Get(t, "/admin/users/"+env.UserID(t, "carol@acme.test"))
	if resp.StatusCode != http.StatusOK || resp.TestID(t, "user-detail").Length() != 1 {
		t.Fatalf("user page = %d", resp.StatusCode)
	}
	if got := resp.Permissions(t); !slices.Contains(got, "export:reports") {
		t.Errorf("carol's grants = %v", got)
	}
}

func TestAdminPermissionPreviewShowsAffectedUsersAndWhy(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")

	resp := adm.Get(t, "/admin/permissions/"+env.SeedPermissionID(t, "export:reports"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("permission page = %d:\n%s", resp.StatusCode, resp.Body)
	}
	reasons := map[string][]string{}
	resp.Doc(t).Find(`[data-testid="affected-user"]`).Each(func(_ int, s *goquery.Selection) {
		email := s.AttrOr("data-email", "")
		s.Find(`[data-testid="reason"]`).Each(func(_ int, r *goquery.Selection) {
			reasons[email] = append(reasons[email], strings.TrimSpace(r.Text()))
		})
	})
	if !slices.Contains(reasons["alice@acme.test"], "role analyst") {
		t.Errorf("alice's reasons = %v; want role analyst", reasons["alice@acme.test"])
	}
	if !slices.Contains(reasons["carol@acme.test"], "granted directly") {
		t.Errorf("carol's reasons = %v; want granted directly", reasons["carol@acme.test"])
	}
	if r := reasons["admin@acme.test"]; !slices.Contains(r, "role admin") || !slices.Contains(r, "live session carries it") {
		t.Errorf("admin's reasons = %v; want role admin and the live session", r)
	}
	if _, ok := reasons["bob@acme.test"]; ok {
		t.Error("bob is listed as affected; he never held export:reports")
	}
	if resp.TestID(t, "delete-form").Length() != 1 {
		t.Error("no delete form")
	}

	// The admin permission cannot be deleted from here.
	resp = adm.Get(t, "/admin/permissions/"+env.SeedPermissionID(t, "admin:permissions"))
	if resp.TestID(t, "delete-blocked").Length() != 1 || resp.TestID(t, "delete-form").Length() != 0 ||
		resp.TestID(t, "danger-zone").Length() != 0 {
		t.Error("the admin permission offers a delete form")
	}
	if resp := adm.Get(t, "/admin/permissions/perm_nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown permission = %d; want 404", resp.StatusCode)
	}
	if resp := adm.Get(t, "/admin/fanouts/fo_nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown fan-out = %d; want 404", resp.StatusCode)
	}
	// An admin's 404 keeps the admin navigation; a non-admin's does not
	// show it.
	nf := adm.Get(t, "/admin/no-such-page")
	if nf.StatusCode != http.StatusNotFound || nf.TestID(t, "admin").Length() != 1 || nf.TestID(t, "error-page").Length() != 1 {
		t.Errorf("admin 404 = %d, admin layout %d:\n%.1500s", nf.StatusCode, nf.TestID(t, "admin").Length(), nf.Body)
	}
	bob := env.Login(t, "bob@acme.test")
	if page := bob.Get(t, "/dashboard/nope"); page.TestID(t, "admin").Length() != 0 {
		t.Error("a non-admin's 404 shows the admin navigation")
	}
}

func TestAdminDeleteNeedsTheKeyTyped(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	path := "/admin/permissions/" + env.SeedPermissionID(t, "export:reports")
	adm.Get(t, path)

	for _, typed := range []string{"", "export:report", "read:reports"} {
		// Post, redirect, get: the error shows on the permission page,
		// whose address can be reopened.
		resp := adm.NoRedirect().PostForm(t, path+"/delete", url.Values{"confirm": {typed}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != path {
			t.Fatalf("delete confirmed with %q = %d, Location %q; want 303 to %s", typed, resp.StatusCode,
				resp.Header.Get("Location"), path)
		}
		page := adm.Get(t, path)
		if msg := page.TestID(t, "confirm-error").Text(); !strings.Contains(msg, "export:reports") {
			t.Errorf("confirmation error %q does not name the key", msg)
		}
		if page.TestID(t, "confirm-key").AttrOr("autofocus", "no") == "no" {
			t.Error("after a wrong key the field is not focused")
		}
		// Once shown, the error is gone from the next visit.
		if adm.Get(t, path).TestID(t, "confirm-error").Length() != 0 {
			t.Error("the confirmation error is shown again on the next visit")
		}
	}
	// As htmx the same mistake is an alert fragment.
	resp := adm.HTMX(t, http.MethodPost, path+"/delete", url.Values{"confirm": {"nope"}})
	if resp.StatusCode != http.StatusBadRequest || resp.TestID(t, "alert").Length() != 1 {
		t.Errorf("htmx delete with a wrong key = %d:\n%s", resp.StatusCode, resp.Body)
	}
	if !kindeHasPermission(t, env, "export:reports") {
		t.Fatal("a wrong confirmation deleted the permission at devkinde")
	}
	if resp := adm.Get(t, "/admin/fanouts"); resp.TestID(t, "fanout").Length() != 0 {
		t.Error("a wrong confirmation started a fan-out")
	}
	// The admin permission itself is refused even when typed correctly.
	adminPath := "/admin/permissions/" + env.SeedPermissionID(t, "admin:permissions") + "/delete"
	if resp := adm.PostForm(t, adminPath, url.Values{"confirm": {"admin:permissions"}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("deleting the admin permission = %d; want 409", resp.StatusCode)
	}
}

func TestAdminDeleteRedirectsToAFanoutThatFinishes(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	path := "/admin/permissions/" + env.SeedPermissionID(t, "export:reports")
	adm.Get(t, path)

	resp := adm.NoRedirect().PostForm(t, path+"/delete", url.Values{"confirm": {"export:reports"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/fanouts/fo_") {
		t.Fatalf("delete = %d, Location %q; want 303 to the fan-out", resp.StatusCode, loc)
	}
	// PERMSYNC_UNDO_WINDOW is 0 in tests: the delete job runs at once, but
	// after the click has answered.
	testsupport.Eventually(t, 0, "the delete at devkinde", func() bool { return !kindeHasPermission(t, env, "export:reports") })

	page := adm.Get(t, loc)
	if page.StatusCode != http.StatusOK || page.TestID(t, "progress").Length() != 1 {
		t.Fatalf("fan-out page = %d:\n%s", page.StatusCode, page.Body)
	}
	if !strings.Contains(page.TestID(t, "alert").Text(), "export:reports is refused to every session now") {
		t.Errorf("no success message after the delete: %q", page.TestID(t, "alert").Text())
	}
	var bar *goquery.Selection
	testsupport.Eventually(t, 0, "the fan-out to finish", func() bool {
		frag := adm.HTMX(t, http.MethodGet, loc, nil)
		bar = frag.TestID(t, "progress")
		return bar.AttrOr("data-finished", "") == "true"
	})
	done, total := bar.AttrOr("data-done", ""), bar.AttrOr("data-total", "")
	if done != total || total == "0" || bar.AttrOr("data-failed", "") != "0" {
		t.Fatalf("finished fan-out: done %s, failed %s, total %s; want done == total", done,
			bar.AttrOr("data-failed", ""), total)
	}
	page = adm.Get(t, loc)
	items := map[string]string{}
	page.Doc(t).Find(`[data-testid="fanout-item"]`).Each(func(_ int, s *goquery.Selection) {
		items[s.AttrOr("data-email", "")] = s.AttrOr("data-status", "")
	})
	for _, email := range []string{"admin@acme.test", "alice@acme.test", "carol@acme.test"} {
		if items[email] != "done" {
			t.Errorf("%s: status %q; want done", email, items[email])
		}
	}
	if _, ok := items["bob@acme.test"]; ok {
		t.Error("bob was refreshed; he never held export:reports")
	}
	// A finished panel no longer polls.
	if panel := page.TestID(t, "fanout-panel"); panel.AttrOr("hx-get", "") != "" || panel.AttrOr("hx-trigger", "") != "" {
		t.Error("a finished fan-out panel keeps polling")
	}

	// The lists show it, and the deleted key is marked.
	if resp := adm.Get(t, "/admin/fanouts"); resp.TestID(t, "fanout").Length() == 0 {
		t.Error("fan-out list is empty")
	}
	perms := adm.Get(t, "/admin/permissions")
	dead := perms.Doc(t).Find(`[data-testid="tombstones"] [data-key="export:reports"]`)
	if dead.Length() == 0 || dead.AttrOr("data-revoked", "") != "true" {
		t.Error("the deleted key is not shown as tombstoned")
	}

	// Retrying a fan-out with nothing failed changes nothing and says so.
	resp = adm.NoRedirect().PostForm(t, loc+"/retry", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loc {
		t.Fatalf("retry = %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if msg := adm.Get(t, loc).TestID(t, "alert").Text(); !strings.Contains(msg, "Nothing to retry") {
		t.Errorf("retry message = %q", msg)
	}
}

func TestAdminDeleteAsHTMXGetsHXRedirect(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	path := "/admin/permissions/" + env.SeedPermissionID(t, "delete:reports")
	adm.Get(t, path)
	resp := adm.HTMX(t, http.MethodPost, path+"/delete", url.Values{"confirm": {"delete:reports"}})
	if to := resp.Header.Get("HX-Redirect"); resp.StatusCode/100 != 2 || !strings.HasPrefix(to, "/admin/fanouts/fo_") {
		t.Fatalf("htmx delete = %d, HX-Redirect %q", resp.StatusCode, to)
	}
}

// TestAdminRetryQueuesFailedUsersAgain runs a fan-out whose every
// refresh_claims is refused (the M2M client lacks the scope), so its users
// fail at once; "Retry failed" queues them again.
func TestAdminRetryQueuesFailedUsersAgain(t *testing.T) {
	t.Parallel()
	seed := devkinde.DefaultSeed()
	for i, c := range seed.Clients {
		if c.ID == devkinde.M2MClientID {
			seed.Clients[i].Scopes = slices.DeleteFunc(devkinde.ManagementScopes(),
				func(s string) bool { return s == "update:user_refresh_claims" })
		}
	}
	env := apptest.Start(t, apptest.Options{Seed: seed})
	adm := env.Login(t, "admin@acme.test")
	loc := adm.DeletePermission(t, env.SeedPermissionID(t, "delete:reports"), "delete:reports")

	failed := func() *apptest.Response {
		var page *apptest.Response
		testsupport.Eventually(t, 0, "the fan-out to fail", func() bool {
			page = adm.Get(t, loc)
			bar := page.TestID(t, "progress")
			return bar.AttrOr("data-finished", "") == "true" && bar.AttrOr("data-failed", "0") != "0"
		})
		return page
	}
	page := failed()
	if page.TestID(t, "retry-failed").Length() != 1 {
		t.Fatal("no Retry failed button on a fan-out with failures")
	}
	if msg := page.TestID(t, "item-error").First().Text(); !strings.Contains(msg, "403") {
		t.Errorf("item error %q does not explain the refusal", msg)
	}

	resp := adm.NoRedirect().PostForm(t, loc+"/retry", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != loc {
		t.Fatalf("retry = %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	page = adm.Get(t, loc)
	if msg := page.TestID(t, "alert").Text(); !strings.Contains(msg, "Queued 1 failed user again") {
		t.Errorf("retry message = %q", msg)
	}
	failed() // the retried user was refused again, and the fan-out finished again
	audit := adm.Get(t, "/admin").TestID(t, "audit").Text()
	if !strings.Contains(audit, "fanout.retry") {
		t.Errorf("audit log lacks the retry: %q", audit)
	}
}

func TestAdminUserActions(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	bob := env.Login(t, "bob@acme.test")
	bobID := env.UserID(t, "bob@acme.test")
	adm.Get(t, "/admin/users")

	resp := adm.NoRedirect().PostForm(t, "/admin/users/"+bobID+"/refresh-claims", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/admin/fanouts/fo_") {
		t.Fatalf("refresh claims = %d, Location %q", resp.StatusCode, loc)
	}
	testsupport.Eventually(t, 0, "bob's claims refresh", func() bool {
		return adm.HTMX(t, http.MethodGet, loc, nil).TestID(t, "progress").AttrOr("data-done", "") == "1"
	})
	// The fan-out page names bob and speaks to the admin.
	fo := adm.Get(t, loc)
	if h1 := strings.Join(strings.Fields(fo.Doc(t).Find("h1").Text()), " "); h1 != "Claims refresh for bob@acme.test" {
		t.Errorf("fan-out heading = %q", h1)
	}
	if strings.Contains(fo.Body, "refreshed your claims") {
		t.Error("the admin's fan-out page speaks as if to bob")
	}

	// Without JavaScript, Revoke sessions asks on a page of its own first.
	confirm := adm.Get(t, "/admin/users/"+bobID+"/sessions/revoke?return_to=/admin/users/"+bobID)
	form := confirm.TestID(t, "revoke-confirm").Find(`form[method="post"]`)
	if confirm.StatusCode != http.StatusOK || form.AttrOr("action", "") != "/admin/users/"+bobID+"/sessions/revoke" ||
		form.Find(`input[name="return_to"]`).AttrOr("value", "") != "/admin/users/"+bobID {
		t.Fatalf("revoke confirmation = %d:\n%.2000s", confirm.StatusCode, confirm.Body)
	}
	if confirm.TestID(t, "session").Length() != 0 || bob.NoRedirect().Get(t, "/dashboard").StatusCode != http.StatusOK {
		t.Error("opening the confirmation revoked bob's sessions")
	}

	resp = adm.NoRedirect().PostForm(t, "/admin/users/"+bobID+"/sessions/revoke",
		url.Values{"return_to": {"/admin/users/" + bobID}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/users/"+bobID {
		t.Fatalf("revoke = %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	page := adm.Get(t, "/admin/users/"+bobID)
	if msg := page.TestID(t, "alert").Text(); !strings.Contains(msg, "Signed out everywhere") {
		t.Errorf("revoke message = %q", msg)
	}
	if page.TestID(t, "session").Length() != 0 {
		t.Error("bob still has live sessions")
	}
	// Bob is signed out: his next page sends him to sign in.
	if resp := bob.NoRedirect().Get(t, "/dashboard"); resp.StatusCode != http.StatusSeeOther ||
		!strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("bob after revoke = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// An off-admin return_to is ignored.
	resp = adm.NoRedirect().PostForm(t, "/admin/users/"+bobID+"/sessions/revoke",
		url.Values{"return_to": {"//evil.example/"}})
	if resp.Header.Get("Location") != "/admin/users" {
		t.Errorf("revoke with a foreign return_to went to %q", resp.Header.Get("Location"))
	}
}

// adminRoute is one route of the admin table test.
type adminRoute struct {
	method, path string
	// want is the admin's status (GETs); 0 skips the check.
	want int
}

// TestAdminRoutesAreGated covers every /admin route: a non-admin gets 403
// on each GET and POST, a signed-out client is sent to sign in, and a POST
// without a CSRF token is refused even for the admin. The table must list
// every admin route the server registers.
func TestAdminRoutesAreGated(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	bob := env.Login(t, "bob@acme.test")
	anon := env.NewClient(t)

	perm := "/admin/permissions/" + env.SeedPermissionID(t, "export:reports")
	user := "/admin/users/" + env.UserID(t, "alice@acme.test")
	adm.Get(t, "/admin/users")
	started := adm.NoRedirect().PostForm(t, user+"/refresh-claims", nil)
	fanout := started.Header.Get("Location")
	if !strings.HasPrefix(fanout, "/admin/fanouts/") {
		t.Fatalf("refresh claims = %d %q", started.StatusCode, fanout)
	}

	role := "/admin/roles/" + env.SeedRoleID(t, "viewer")
	preview := "/admin/edits/preview?kind=role.permission.add&role_id=" + env.SeedRoleID(t, "viewer") +
		"&permission_id=" + env.SeedPermissionID(t, "delete:reports")
	confirmed := adm.NoRedirect().PostForm(t, "/admin/edits", url.Values{"kind": {"member.permission.add"},
		"org_code": {"org_acme"}, "user_id": {env.UserID(t, "bob@acme.test")},
		"permission_id": {env.SeedPermissionID(t, "export:reports")}})
	edit := confirmed.Header.Get("Location")
	if !strings.HasPrefix(edit, "/admin/edits/") {
		t.Fatalf("confirm an edit = %d %q", confirmed.StatusCode, edit)
	}

	routes := []adminRoute{
		{http.MethodGet, "/admin", http.StatusOK},
		{http.MethodGet, "/admin/rbac", http.StatusOK},
		{http.MethodGet, role, http.StatusOK},
		{http.MethodGet, user + "/access", http.StatusOK},
		{http.MethodGet, preview, http.StatusOK},
		{http.MethodPost, "/admin/edits", 0},
		{http.MethodGet, edit, http.StatusOK},
		{http.MethodPost, edit + "/undo", 0},
		{http.MethodGet, "/admin/permissions", http.StatusOK},
		{http.MethodGet, perm, http.StatusOK},
		{http.MethodPost, perm + "/delete", 0},
		{http.MethodGet, "/admin/roles", http.StatusOK},
		{http.MethodGet, "/admin/users", http.StatusOK},
		{http.MethodGet, user, http.StatusOK},
		{http.MethodPost, user + "/refresh-claims", 0},
		{http.MethodGet, user + "/sessions/revoke", http.StatusOK},
		{http.MethodPost, user + "/sessions/revoke", 0},
		{http.MethodGet, "/admin/fanouts", http.StatusOK},
		{http.MethodGet, fanout, http.StatusOK},
		{http.MethodPost, fanout + "/retry", 0},
		{http.MethodPost, fanout + "/undo", 0},
		{http.MethodGet, "/admin/webhooks", http.StatusOK},
	}
	checkRouteTableIsComplete(t, env, routes)

	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			// Signed out: pages redirect to sign-in; a POST cannot be
			// replayed after signing in, so it is refused with 401 and a
			// sign-in link, or HX-Redirect to sign-in for htmx.
			if r.method == http.MethodGet {
				resp := anon.NoRedirect().Get(t, r.path)
				if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?return_to=") {
					t.Errorf("signed out: %d %q; want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
				}
			} else {
				resp := anon.NoRedirect().PostForm(t, r.path, nil)
				if resp.StatusCode != http.StatusUnauthorized || resp.Doc(t).Find(`a[href="/login"]`).Length() == 0 {
					t.Errorf("signed out POST: %d; want 401 with a sign-in link", resp.StatusCode)
				}
				resp = anon.HTMX(t, r.method, r.path, url.Values{})
				if !strings.HasPrefix(resp.Header.Get("HX-Redirect"), "/login") {
					t.Errorf("signed out htmx POST: %d, HX-Redirect %q", resp.StatusCode, resp.Header.Get("HX-Redirect"))
				}
			}

			// A non-admin: 403, with or without htmx, and nothing happens.
			var resp *apptest.Response
			if r.method == http.MethodGet {
				resp = bob.NoRedirect().Get(t, r.path)
			} else {
				resp = bob.NoRedirect().PostForm(t, r.path, url.Values{"confirm": {"export:reports"}})
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("bob: %d; want 403", resp.StatusCode)
			}
			if resp := bob.HTMX(t, r.method, r.path, url.Values{}); resp.StatusCode != http.StatusForbidden {
				t.Errorf("bob (htmx): %d; want 403", resp.StatusCode)
			}

			if r.method == http.MethodPost {
				// No CSRF token: refused before the handler, even for the admin.
				for _, body := range []url.Values{{}, {"_csrf": {"forged"}}} {
					resp := adm.NoRedirect().Do(t, http.MethodPost, r.path, strings.NewReader(body.Encode()),
						http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
					if resp.StatusCode != http.StatusForbidden {
						t.Errorf("admin POST with %v: %d; want 403", body, resp.StatusCode)
					}
				}
			} else if r.want != 0 {
				if resp := adm.Get(t, r.path); resp.StatusCode != r.want {
					t.Errorf("admin: %d; want %d", resp.StatusCode, r.want)
				}
			}
		})
	}
	if !kindeHasPermission(t, env, "export:reports") {
		t.Error("a refused request deleted export:reports")
	}
}

// checkRouteTableIsComplete fails if the server registers an /admin route
// the table does not cover.
func checkRouteTableIsComplete(t *testing.T, env *apptest.Env, routes []adminRoute) {
	t.Helper()
	e, ok := env.App.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("app handler is %T, not *echo.Echo", env.App.Handler())
	}
	covered := map[string]bool{}
	for _, r := range routes {
		covered[r.method+" "+routePattern(r.path)] = true
	}
	for _, r := range e.Routes() {
		if !strings.HasPrefix(r.Path, "/admin") || (r.Method != http.MethodGet && r.Method != http.MethodPost) {
			continue
		}
		if !covered[r.Method+" "+r.Path] {
			t.Errorf("route %s %s is not in the admin table test", r.Method, r.Path)
		}
	}
}

// routePattern turns a concrete admin path back into its route pattern.
func routePattern(p string) string {
	p, _, _ = strings.Cut(p, "?")
	parts := strings.Split(p, "/")
	// /admin/<area>/<id>[/...]: the third segment is an id (but the edit
	// preview's is its name).
	if len(parts) >= 4 && parts[3] != "preview" {
		parts[3] = ":id"
	}
	return strings.Join(parts, "/")
}

func equalSorted(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestAdminPagesHaveNoInlineScriptOrStyle: the CSP forbids inline scripts,
// styles and handlers, so no admin page may use them.
func TestAdminPagesHaveNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	fanout := adm.DeletePermission(t, env.SeedPermissionID(t, "delete:reports"), "delete:reports")
	for _, path := range []string{
		"/admin", "/admin/permissions", "/admin/permissions/" + env.SeedPermissionID(t, "export:reports"),
		"/admin/roles", "/admin/users", "/admin/users/" + env.UserID(t, "alice@acme.test"), "/admin/fanouts", fanout,
	} {
		resp := adm.Get(t, path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s = %d", path, resp.StatusCode)
			continue
		}
		doc := resp.Doc(t)
		doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			if src, ok := s.Attr("src"); !ok || src == "" || strings.TrimSpace(s.Text()) != "" {
				t.Errorf("%s: inline script %q", path, s.Text())
			}
		})
		doc.Find("*").Each(func(_ int, s *goquery.Selection) {
			for _, a := range s.Nodes[0].Attr {
				if a.Key == "style" || strings.HasPrefix(a.Key, "on") {
					t.Errorf("%s: inline %s attribute on <%s>", path, a.Key, goquery.NodeName(s))
				}
			}
		})
		if doc.Find("style").Length() > 0 {
			t.Errorf("%s: inline <style>", path)
		}
		if doc.Find(`[data-testid="admin"]`).Length() != 1 {
			t.Errorf("%s: not in the admin layout", path)
		}
	}
}

// TestAdminPagesSayWhenKindeIsDown: with Kinde unreachable the pages stay
// usable, from the directory, and say how fresh it is.
func TestAdminPagesSayWhenKindeIsDown(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	env.SetOutage(apptest.Outage503)
	defer env.SetOutage(apptest.NoOutage)

	for _, path := range []string{"/admin/permissions", "/admin", "/admin/users", "/admin/roles"} {
		resp := adm.Get(t, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s with Kinde down = %d; want 200 from the directory", path, resp.StatusCode)
		}
		if f := resp.TestID(t, "directory-freshness").Text(); !strings.Contains(f, "synced") {
			t.Errorf("%s does not say how fresh the directory is: %q", path, f)
		}
		if resp.Doc(t).Find(`.admin-nav a[href="/admin/fanouts"]`).Length() != 1 {
			t.Errorf("%s: the admin navigation is gone", path)
		}
	}
}

// TestAdminSeesAUsersOwnClaimsRefresh: bob's Refresh session clears Kinde's
// claim cache for him; his admin page says his claims were refreshed
// rather than "never".
func TestAdminSeesAUsersOwnClaimsRefresh(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	adm := env.Login(t, "admin@acme.test")
	bob := env.Login(t, "bob@acme.test")
	bobPage := "/admin/users/" + env.UserID(t, "bob@acme.test")
	if got := adm.Get(t, bobPage).TestID(t, "claims-epoch").Text(); !strings.Contains(got, "never refreshed") {
		t.Fatalf("before: %q; want never refreshed", strings.Join(strings.Fields(got), " "))
	}
	bob.Get(t, "/dashboard")
	if resp := bob.NoRedirect().PostForm(t, "/session/refresh", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's Refresh session = %d", resp.StatusCode)
	}
	got := strings.Join(strings.Fields(adm.Get(t, bobPage).TestID(t, "claims-epoch").Text()), " ")
	if strings.Contains(got, "never") || !strings.Contains(got, "Claims refreshed") {
		t.Errorf("after bob's Refresh session: %q; want Claims refreshed", got)
	}
}
