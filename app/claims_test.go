package app_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"permsync/app/apptest"
)

// removeFromRole removes a permission from a role at devkinde through the
// Management API, the kind of change Kinde does not invalidate its claim
// cache for.
func removeFromRole(t *testing.T, env *apptest.Env, roleKey, permKey string) {
	t.Helper()
	roleID, permID := env.SeedRoleID(t, roleKey), env.SeedPermissionID(t, permKey)
	if status := env.ManagementAPI(t, http.MethodDelete, "/api/v1/roles/"+roleID+"/permissions/"+permID, nil); status != http.StatusOK {
		t.Fatalf("DELETE role permission = %d", status)
	}
}

func TestRefreshButtonClearsKindeClaimCache(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{})
	alice := env.Login(t, "alice@acme.test")
	page := alice.Get(t, "/dashboard")
	removeFromRole(t, env, "analyst", "export:reports")

	frag := alice.HTMX(t, http.MethodPost, "/session/refresh", url.Values{"gen": {panelGen(t, page)}})
	if frag.StatusCode != http.StatusOK {
		t.Fatalf("refresh = %d", frag.StatusCode)
	}
	if frag.Doc(t).Find(`[data-testid="change-removed"][data-key="export:reports"]`).Length() != 1 {
		t.Fatalf("change summary does not report export:reports removed: %s", frag.TestID(t, "change-summary").Text())
	}
	if perms := frag.Permissions(t); slices.Contains(perms, "export:reports") || !slices.Contains(perms, "read:reports") {
		t.Fatalf("permissions after refresh = %v", perms)
	}
	if frag.Doc(t).Find(`#topbar[hx-swap-oob]`).Length() != 1 {
		t.Error("the nav is not swapped out of band")
	}
	if resp := alice.Get(t, "/reports/export"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /reports/export after the refresh = %d; want 403", resp.StatusCode)
	}
}

// Without M2M credentials the button can only run the refresh grant, and
// Kinde answers from its claim cache: the removal does not show. This is the
// behaviour permsync exists to work around.
func TestRefreshWithoutM2MGetsCachedClaims(t *testing.T) {
	t.Parallel()
	env := apptest.Start(t, apptest.Options{NoM2M: true})
	alice := env.Login(t, "alice@acme.test")
	page := alice.Get(t, "/dashboard")
	removeFromRole(t, env, "analyst", "export:reports")

	frag := alice.HTMX(t, http.MethodPost, "/session/refresh", url.Values{"gen": {panelGen(t, page)}})
	if !slices.Contains(frag.Permissions(t), "export:reports") {
		t.Fatal("devkinde returned fresh claims without refresh_claims; its claim cache is not faithful")
	}
	if frag.TestID(t, "token-unchanged").Length() != 1 {
		t.Errorf("expected the cached token to come back: %s", frag.TestID(t, "change-summary").Text())
	}
	if !strings.Contains(frag.TestID(t, "change-summary").Text(), "not cleared") {
		t.Errorf("summary should say the claim cache was not cleared: %s", frag.TestID(t, "change-summary").Text())
	}
}
