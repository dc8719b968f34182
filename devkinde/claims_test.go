package devkinde

import (
	"slices"
	"testing"
	"time"
)

// These tests pin down Kinde's claim cache (devkinde/README.md, "The claim cache"), the
// behaviour permsync exists to work around.

func TestRefreshReturnsSameUnexpiredAccessToken(t *testing.T) {
	e := newEnv(t, freshTokens)
	tok, _ := e.login("alice@acme.test")
	t2 := e.mustRefresh(tok.RefreshToken)
	if t2.AccessToken != tok.AccessToken {
		t.Error("refresh minted a new access token although the old one is unexpired and the cache is valid")
	}
	if t2.RefreshToken == tok.RefreshToken {
		t.Error("refresh token did not rotate")
	}
	if id, _ := t2.Extra("id_token").(string); id == "" {
		t.Error("refresh returned no ID token")
	}
	// Once the access token has expired, a new one comes back (same claims).
	short := newEnv(t, func(c *Config) { c.AccessTokenTTL = time.Second })
	tok, _ = short.login("alice@acme.test")
	time.Sleep(1100 * time.Millisecond)
	t3 := short.mustRefresh(tok.RefreshToken)
	if t3.AccessToken == tok.AccessToken {
		t.Error("expired access token was returned again")
	}
	if exp := claimsOf(t, t3.AccessToken); exp["exp"].(float64)-exp["iat"].(float64) != 1 {
		t.Errorf("AccessTokenTTL override not applied: %v", exp)
	}
}

// TestStaleClaimsAfterPermissionDelete is the bug: deleting a permission does
// not invalidate the claim cache, so a refresh still carries it; after
// refresh_claims the next refresh drops it, with a new access token.
func TestStaleClaimsAfterPermissionDelete(t *testing.T) {
	e := newEnv(t, freshTokens)
	tok, _ := e.login("alice@acme.test")
	if !slices.Contains(permissionsOf(t, tok.AccessToken), "export:reports") {
		t.Fatal("alice should start with export:reports")
	}
	expectStatus(t, e.call("DELETE", "/api/v1/permissions/"+seedPermExportReport, nil, nil), 200)

	// The permission is gone from Kinde's data…
	var rp permissionsResponse
	e.call("GET", "/api/v1/roles/"+seedRoleAnalyst+"/permissions", nil, &rp)
	for _, p := range rp.Permissions {
		if p.Key == "export:reports" {
			t.Fatal("deleted permission still on the role")
		}
	}
	// …but not from the cached claims.
	stale := e.mustRefresh(tok.RefreshToken)
	if !slices.Contains(permissionsOf(t, stale.AccessToken), "export:reports") {
		t.Fatal("expected the stale permission after a plain refresh (Kinde's claim cache)")
	}
	if stale.AccessToken != tok.AccessToken {
		t.Error("a plain refresh should return the same unexpired access token")
	}

	expectStatus(t, e.call("POST", "/api/v1/users/"+seedUserAlice+"/refresh_claims", nil, nil), 200)
	fresh := e.mustRefresh(stale.RefreshToken)
	if slices.Contains(permissionsOf(t, fresh.AccessToken), "export:reports") {
		t.Error("permission still present after refresh_claims + refresh")
	}
	if fresh.AccessToken == tok.AccessToken {
		t.Error("refresh after refresh_claims must issue a new access token")
	}
	if !slices.Equal(permissionsOf(t, fresh.AccessToken), []string{"read:reports"}) {
		t.Errorf("alice permissions %v", permissionsOf(t, fresh.AccessToken))
	}
}

func TestRolePermissionEditDoesNotInvalidateCache(t *testing.T) {
	e := newEnv(t, freshTokens)
	tok, _ := e.login("bob@acme.test")
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+seedRoleViewer+"/permissions", map[string]any{
		"permissions": []map[string]string{{"id": seedPermDeleteReport}}}, nil), 200)
	t2 := e.mustRefresh(tok.RefreshToken)
	if slices.Contains(permissionsOf(t, t2.AccessToken), "delete:reports") {
		t.Error("a permission added to a role must not reach refreshed tokens before refresh_claims")
	}
	expectStatus(t, e.call("DELETE", "/api/v1/roles/"+seedRoleViewer+"/permissions/"+seedPermReadReports, nil, nil), 200)
	t3 := e.mustRefresh(t2.RefreshToken)
	if !slices.Contains(permissionsOf(t, t3.AccessToken), "read:reports") {
		t.Error("a permission removed from a role must stay in refreshed tokens before refresh_claims")
	}
	expectStatus(t, e.call("POST", "/api/v1/users/"+seedUserBob+"/refresh_claims", nil, nil), 200)
	t4 := e.mustRefresh(t3.RefreshToken)
	if got := permissionsOf(t, t4.AccessToken); !slices.Equal(got, []string{"delete:reports"}) {
		t.Errorf("after refresh_claims: %v", got)
	}
	// A new sign-in always carries current claims.
	fresh, _ := e.login("bob@acme.test")
	if got := permissionsOf(t, fresh.AccessToken); !slices.Equal(got, []string{"delete:reports"}) {
		t.Errorf("new sign-in: %v", got)
	}
}

func TestDirectChangesInvalidateCache(t *testing.T) {
	e := newEnv(t, freshTokens)
	org := "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserBob
	tok, _ := e.login("bob@acme.test")
	if _, on := claimsOf(t, tok.AccessToken)["roles"]; on {
		t.Error("the roles claim is on by default; Kinde has it off")
	}
	e.srv.SetRolesClaim(WebClientID, true)

	// Assigning a role to the user invalidates the cache.
	expectStatus(t, e.call("POST", org+"/roles", map[string]string{"role_id": seedRoleAnalyst}, nil), 200)
	t2 := e.mustRefresh(tok.RefreshToken)
	if !slices.Contains(permissionsOf(t, t2.AccessToken), "export:reports") || t2.AccessToken == tok.AccessToken {
		t.Errorf("after role assignment: %v", permissionsOf(t, t2.AccessToken))
	}
	roles := claimsOf(t, t2.AccessToken)["roles"].([]any)
	if len(roles) != 2 {
		t.Errorf("roles claim %v", roles)
	}
	// So does a direct permission grant…
	expectStatus(t, e.call("POST", org+"/permissions", map[string]string{"permission_id": seedPermDeleteReport}, nil), 200)
	t3 := e.mustRefresh(t2.RefreshToken)
	if !slices.Contains(permissionsOf(t, t3.AccessToken), "delete:reports") {
		t.Errorf("after direct grant: %v", permissionsOf(t, t3.AccessToken))
	}
	// …its removal, and a role removal.
	expectStatus(t, e.call("DELETE", org+"/permissions/"+seedPermDeleteReport, nil, nil), 200)
	expectStatus(t, e.call("DELETE", org+"/roles/"+seedRoleAnalyst, nil, nil), 200)
	t4 := e.mustRefresh(t3.RefreshToken)
	if got := permissionsOf(t, t4.AccessToken); !slices.Equal(got, []string{"read:reports"}) {
		t.Errorf("after removals: %v", got)
	}
	// A profile change invalidates it too (new access token).
	expectStatus(t, e.call("PATCH", "/api/v1/user?id="+seedUserBob, map[string]any{"family_name": "Builder"}, nil), 200)
	t5 := e.mustRefresh(t4.RefreshToken)
	if t5.AccessToken == t4.AccessToken {
		t.Error("profile change did not invalidate the cache")
	}
	if idc := claimsOf(t, t5.Extra("id_token").(string)); idc["family_name"] != "Builder" {
		t.Errorf("ID token after profile change: %v", idc["family_name"])
	}
	// Suspension invalidates it and blocks refreshes.
	expectStatus(t, e.call("PATCH", "/api/v1/user?id="+seedUserBob, map[string]any{"is_suspended": true}, nil), 200)
	if _, err := e.refresh(t5.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh while suspended: %v", err)
	}
}

func TestDeleteSessionsForcesReLogin(t *testing.T) {
	e := newEnv(t, freshTokens)
	tok, _ := e.login("carol@acme.test")
	var sessions sessionsResponse
	expectStatus(t, e.call("GET", "/api/v1/users/"+seedUserCarol+"/sessions", nil, &sessions), 200)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].ClientID != WebClientID ||
		*sessions.Sessions[0].OrgCode != DefaultOrgCode {
		t.Fatalf("sessions %+v", sessions)
	}
	expectStatus(t, e.call("DELETE", "/api/v1/users/"+seedUserCarol+"/sessions", nil, nil), 200)
	if _, err := e.refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("refresh after session deletion: %v", err)
	}
	expectStatus(t, e.call("GET", "/api/v1/users/"+seedUserCarol+"/sessions", nil, &sessions), 200)
	if len(sessions.Sessions) != 0 {
		t.Errorf("sessions left: %+v", sessions.Sessions)
	}
}

// TestRBACEditsAndTheClaimCache pins down which RBAC edits clear a user's
// cached claims: changes made to the user (a role or a direct permission in
// an org, removal from the org) do; changes to a role or a permission (its
// permissions, its key, deleting the role) do not.
func TestRBACEditsAndTheClaimCache(t *testing.T) {
	e := newEnv(t, freshTokens)
	tok, _ := e.login("alice@acme.test")
	member := "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserAlice

	// Not cleared: a permission key renamed, the role deleted.
	expectStatus(t, e.call("PATCH", "/api/v1/permissions/"+seedPermExportReport, map[string]string{"key": "export:all"}, nil), 200)
	expectStatus(t, e.call("DELETE", "/api/v1/roles/"+seedRoleAnalyst, nil, nil), 200)
	t2 := e.mustRefresh(tok.RefreshToken)
	if t2.AccessToken != tok.AccessToken || !slices.Contains(permissionsOf(t, t2.AccessToken), "export:reports") {
		t.Fatalf("a key rename or a role deletion cleared the cache: %v", permissionsOf(t, t2.AccessToken))
	}

	// Cleared: a direct grant to alice.
	expectStatus(t, e.call("POST", member+"/permissions", map[string]string{"permission_id": seedPermDeleteReport}, nil), 200)
	t3 := e.mustRefresh(t2.RefreshToken)
	if got := permissionsOf(t, t3.AccessToken); !slices.Equal(got, []string{"delete:reports"}) {
		t.Fatalf("after a direct grant alice holds %v, want [delete:reports]", got)
	}

	// Cleared: removal from the organization.
	expectStatus(t, e.call("DELETE", member, nil, nil), 200)
	t4 := e.mustRefresh(t3.RefreshToken)
	if got := permissionsOf(t, t4.AccessToken); len(got) != 0 {
		t.Fatalf("after removal from the org alice holds %v", got)
	}
	if _, ok := claimsOf(t, t4.AccessToken)["roles"]; ok {
		if roles := claimsOf(t, t4.AccessToken)["roles"].([]any); len(roles) != 0 {
			t.Errorf("roles after removal from the org: %v", roles)
		}
	}
}
