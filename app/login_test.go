package app_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"permsync/app/apptest"
	"permsync/events"
	"permsync/store"
)

func TestAliceSeesHerPermissionsAndExports(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")

	dash := alice.Get(t, "/dashboard")
	if dash.StatusCode != http.StatusOK {
		t.Fatalf("GET /dashboard = %d", dash.StatusCode)
	}
	perms := dash.Permissions(t)
	for _, want := range []string{"read:reports", "export:reports"} {
		if !slices.Contains(perms, want) {
			t.Errorf("dashboard permissions %v lack %s", perms, want)
		}
	}
	if got := dash.TestID(t, "user-email").Text(); got != "alice@acme.test" {
		t.Errorf("email shown = %q", got)
	}
	if got := dash.TestID(t, "user-org").Text(); !strings.Contains(got, "org_acme") {
		t.Errorf("org shown = %q", got)
	}
	if dash.TestID(t, "link-export").Length() != 1 || dash.TestID(t, "link-reports").Length() != 1 {
		t.Error("alice should see links to Reports and Export")
	}

	reports := alice.Get(t, "/reports")
	if reports.StatusCode != http.StatusOK || reports.TestID(t, "report").Length() == 0 {
		t.Fatalf("GET /reports = %d", reports.StatusCode)
	}
	export := alice.Get(t, "/reports/export")
	if export.StatusCode != http.StatusOK {
		t.Fatalf("GET /reports/export = %d", export.StatusCode)
	}
	if ct := export.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("export Content-Type = %q", ct)
	}
	if !strings.HasPrefix(export.Body, "report,owner,period,revenue,status\n") {
		t.Errorf("export body starts %q", export.Body[:min(len(export.Body), 60)])
	}
}

func TestBobIsForbiddenFromExport(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	bob := env.Login(t, "bob@acme.test")

	dash := bob.Get(t, "/dashboard")
	perms := dash.Permissions(t)
	if !slices.Contains(perms, "read:reports") || slices.Contains(perms, "export:reports") {
		t.Fatalf("bob's permissions = %v; want read:reports only", perms)
	}
	if dash.TestID(t, "link-export").Length() != 0 || dash.TestID(t, "locked-export").Length() != 1 {
		t.Error("bob should see Export locked, not linked")
	}

	resp := bob.Get(t, "/reports/export")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /reports/export as bob = %d; want 403", resp.StatusCode)
	}
	if key := resp.TestID(t, "missing-permission").AttrOr("data-key", ""); key != "export:reports" {
		t.Errorf("403 page names %q; want export:reports", key)
	}
	if resp := bob.Get(t, "/reports"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /reports as bob = %d; want 200", resp.StatusCode)
	}
}

func TestDenialRevokesAtOnce(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
		t.Fatalf("before: GET /reports/export = %d", resp.StatusCode)
	}
	// An admin deleted export:reports: the token still carries it, but the
	// server stops honouring it on the very next request.
	now := time.Now()
	_, err := env.DB.AddDenial(t.Context(), store.Denial{
		PermissionKey: "export:reports", SettledAt: now, ExpiresAt: now.Add(time.Hour), Reason: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	events.NotifyTombstonesChanged(env.App.Events()) // as every writer of denials does
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after: GET /reports/export = %d; want 403", resp.StatusCode)
	}
	dash := alice.Get(t, "/dashboard")
	if perms := dash.Permissions(t); slices.Contains(perms, "export:reports") {
		t.Errorf("dashboard still lists export:reports as held: %v", perms)
	}
	if dash.Doc(t).Find(`[data-testid="permission"][data-key="export:reports"][data-revoked="true"]`).Length() != 1 {
		t.Error("export:reports should be shown as revoked")
	}
	if dash.TestID(t, "link-export").Length() != 0 {
		t.Error("the Export link is still shown")
	}

	// The denial is dated: a sign-in after it (the key is granted again, as
	// devkinde never deleted it) carries claims newer than the change, and
	// the key works for that session only.
	fresh := env.Login(t, "alice@acme.test")
	if resp := fresh.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a sign-in after the denial: GET /reports/export = %d; want 200", resp.StatusCode)
	}
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the older session after a new sign-in: GET /reports/export = %d; want 403", resp.StatusCode)
	}
}
