package devkinde

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func listPermissions(e *testEnv) []permissionItem {
	e.t.Helper()
	var out []permissionItem
	next := ""
	for {
		var page permissionsResponse
		path := "/api/v1/permissions?page_size=500"
		if next != "" {
			path += "&next_token=" + next
		}
		expectStatus(e.t, e.call("GET", path, nil, &page), 200)
		out = append(out, page.Permissions...)
		if page.NextToken == "" || len(page.Permissions) == 0 {
			return out // the empty page ends the walk under Quirks.LastPageToken
		}
		next = page.NextToken
	}
}

func permByKeyIn(t *testing.T, ps []permissionItem, key string) permissionItem {
	t.Helper()
	for _, p := range ps {
		if p.Key == key {
			return p
		}
	}
	t.Fatalf("no permission %q in %v", key, ps)
	return permissionItem{}
}

func TestManagementAuth(t *testing.T) {
	e := newEnv(t)
	var er errorResponse
	resp := e.callWith("", "GET", "/api/v1/permissions", nil, &er)
	expectStatus(t, resp, http.StatusForbidden) // Kinde's spec: 403 "Invalid credentials"
	if len(er.Errors) != 1 || er.Errors[0].Code == "" {
		t.Errorf("error body %v", er)
	}
	// A user access token is not a Management API token.
	tok, _ := e.login("admin@acme.test")
	expectStatus(t, e.callWith(tok.AccessToken, "GET", "/api/v1/permissions", nil, nil), http.StatusForbidden)

	// A token lacking the route's scope gets 403 naming the scope.
	readOnly := e.m2mToken("read:permissions")
	expectStatus(t, e.callWith(readOnly, "GET", "/api/v1/permissions", nil, nil), 200)
	er = errorResponse{}
	resp = e.callWith(readOnly, "DELETE", "/api/v1/permissions/"+seedPermReadReports, nil, &er)
	expectStatus(t, resp, http.StatusForbidden)
	if len(er.Errors) != 1 || !strings.Contains(er.Errors[0].Message, "delete:permissions") {
		t.Errorf("403 body %v does not name the missing scope", er)
	}
	for _, c := range []struct{ method, path, scope string }{
		{"POST", "/api/v1/users/" + seedUserBob + "/refresh_claims", "update:user_refresh_claims"},
		{"GET", "/api/v1/roles/" + seedRoleAdmin + "/users", "read:organization_user_roles"},
		{"GET", "/api/v1/organizations/" + DefaultOrgCode + "/users", "read:organization_users"},
		{"GET", "/api/v1/webhooks", "read:webhooks"},
	} {
		er = errorResponse{}
		expectStatus(t, e.callWith(readOnly, c.method, c.path, nil, &er), http.StatusForbidden)
		if !strings.Contains(er.Errors[0].Message, c.scope) {
			t.Errorf("%s %s: %v lacks %s", c.method, c.path, er, c.scope)
		}
	}
}

func TestPermissionsCRUDAndPagination(t *testing.T) {
	q := CautiousQuirks()
	q.LastPageToken = false
	e := newEnv(t, withQuirks(q))
	var created successResponse
	resp := e.call("POST", "/api/v1/permissions", map[string]string{"key": "view:audit", "name": "View audit", "description": "d"}, &created)
	expectStatus(t, resp, http.StatusCreated)
	if created.Code != "OK" {
		t.Errorf("create body %+v", created)
	}
	var raw map[string]any
	e.call("POST", "/api/v1/permissions", map[string]string{"key": "view:logs"}, &raw)
	if _, hasID := raw["id"]; hasID {
		t.Error("create permission must not return the id (Kinde's spec)")
	}
	expectStatus(t, e.call("POST", "/api/v1/permissions", map[string]string{"key": "view:audit"}, nil), 400)

	// Pagination: page_size with next_token until the end.
	var pages [][]string
	next := ""
	for i := 0; i < 10; i++ {
		var pg permissionsResponse
		path := "/api/v1/permissions?page_size=2"
		if next != "" {
			path += "&next_token=" + next
		}
		expectStatus(t, e.call("GET", path, nil, &pg), 200)
		var keys []string
		for _, p := range pg.Permissions {
			keys = append(keys, p.Key)
		}
		pages = append(pages, keys)
		if next = pg.NextToken; next == "" {
			break
		}
	}
	if len(pages) != 3 || !slices.Equal(pages[0], []string{"read:reports", "export:reports"}) ||
		!slices.Equal(pages[2], []string{"view:audit", "view:logs"}) {
		t.Errorf("pages %v", pages)
	}
	var big permissionsResponse
	e.call("GET", "/api/v1/permissions?page_size=10000", nil, &big)
	if len(big.Permissions) != 6 || big.NextToken != "" {
		t.Errorf("page_size above the cap: %d items", len(big.Permissions))
	}
	var sortedDesc permissionsResponse
	e.call("GET", "/api/v1/permissions?sort=name_desc", nil, &sortedDesc)
	if sortedDesc.Permissions[0].Key != "view:logs" { // name defaults to the key; "view:logs" sorts last
		t.Errorf("name_desc first %v", sortedDesc.Permissions[0])
	}

	audit := permByKeyIn(t, listPermissions(e), "view:audit")
	expectStatus(t, e.call("PATCH", "/api/v1/permissions/"+audit.ID, map[string]string{"name": "Audit"}, nil), 200)
	if got := permByKeyIn(t, listPermissions(e), "view:audit"); got.Name != "Audit" || got.Description != "d" {
		t.Errorf("after patch %+v", got)
	}
	// Deleting removes it from roles and direct grants.
	expectStatus(t, e.call("DELETE", "/api/v1/permissions/"+seedPermExportReport, nil, nil), 200)
	var rp permissionsResponse
	e.call("GET", "/api/v1/roles/"+seedRoleAdmin+"/permissions", nil, &rp)
	if len(rp.Permissions) != 3 {
		t.Errorf("admin role still has %d permissions", len(rp.Permissions))
	}
	var up orgUserPermissionsResponse
	e.call("GET", "/api/v1/organizations/"+DefaultOrgCode+"/users/"+seedUserCarol+"/permissions", nil, &up)
	if len(up.Permissions) != 1 || up.Permissions[0].Key != "read:reports" {
		t.Errorf("carol permissions %+v", up.Permissions)
	}
	expectStatus(t, e.call("DELETE", "/api/v1/permissions/"+seedPermExportReport, nil, nil), 400)
}

func TestRolesAPI(t *testing.T) {
	e := newEnv(t)
	var roles rolesResponse
	e.call("GET", "/api/v1/roles?sort=key_asc", nil, &roles)
	var keys []string
	for _, r := range roles.Roles {
		keys = append(keys, r.Key)
	}
	if !slices.Equal(keys, []string{"admin", "analyst", "viewer"}) {
		t.Errorf("roles %v", keys)
	}
	var cr createRoleResponse
	expectStatus(t, e.call("POST", "/api/v1/roles", map[string]any{"key": "auditor", "name": "Auditor"}, &cr), 201)
	if cr.Role.ID == "" {
		t.Fatal("no role id")
	}
	var patch rolePermissionsPatchResponse
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+cr.Role.ID+"/permissions", map[string]any{"permissions": []map[string]string{
		{"id": seedPermReadReports}, {"id": seedPermAdminPerms}}}, &patch), 200)
	if len(patch.PermissionsAdded) != 2 {
		t.Errorf("added %v", patch.PermissionsAdded)
	}
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+cr.Role.ID+"/permissions", map[string]any{"permissions": []map[string]string{
		{"id": seedPermAdminPerms, "operation": "delete"}}}, &patch), 200)
	if !slices.Equal(patch.PermissionsRemoved, []string{seedPermAdminPerms}) {
		t.Errorf("removed %v", patch.PermissionsRemoved)
	}
	var one roleResponse
	// Kinde's spec requires name and key on an update.
	for _, body := range []map[string]any{{"description": "Reads audits"}, {"key": "auditor"}, {"name": "Auditor"},
		{"key": "auditor", "name": " "}} {
		expectStatus(t, e.call("PATCH", "/api/v1/roles/"+cr.Role.ID, body, nil), 400)
	}
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+cr.Role.ID, map[string]any{"key": "viewer", "name": "V"}, nil), 400)
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+cr.Role.ID,
		map[string]any{"key": "auditors", "name": "Auditors", "description": "Reads audits"}, nil), 201)
	e.call("GET", "/api/v1/roles/"+cr.Role.ID, nil, &one)
	if one.Role.Key != "auditors" || one.Role.Name != "Auditors" || one.Role.Description != "Reads audits" {
		t.Errorf("role %+v", one.Role)
	}
	var ru roleUsersResponse
	e.call("GET", "/api/v1/roles/"+seedRoleViewer+"/users", nil, &ru)
	if len(ru.Users) != 2 || ru.Users[0].ID != seedUserBob || ru.Users[1].ID != seedUserCarol ||
		!slices.Equal(ru.Users[0].OrgCodes, []string{DefaultOrgCode}) {
		t.Errorf("viewer users %+v", ru.Users)
	}
	expectStatus(t, e.call("DELETE", "/api/v1/roles/"+seedRoleViewer, nil, nil), 200)
	expectStatus(t, e.call("GET", "/api/v1/roles/"+seedRoleViewer, nil, nil), 400)
	var ur orgUserRolesResponse
	e.call("GET", "/api/v1/organizations/"+DefaultOrgCode+"/users/"+seedUserBob+"/roles", nil, &ur)
	if len(ur.Roles) != 0 {
		t.Errorf("bob still has roles %v", ur.Roles)
	}
}

func TestUsersAndOrganizations(t *testing.T) {
	e := newEnv(t)
	var users usersResponse
	e.call("GET", "/api/v1/users?email=ALICE@acme.test,bob@acme.test", nil, &users)
	if len(users.Users) != 2 || users.Users[0].ID != seedUserAlice {
		t.Errorf("email filter %+v", users.Users)
	}
	e.call("GET", "/api/v1/users?user_id="+seedUserCarol+"&expand=organizations", nil, &users)
	if len(users.Users) != 1 || !slices.Equal(users.Users[0].Organizations, []string{DefaultOrgCode}) {
		t.Errorf("user_id filter %+v", users.Users)
	}
	var u userDetail
	expectStatus(t, e.call("GET", "/api/v1/user?id="+seedUserAdmin, nil, &u), 200)
	if u.PreferredEmail != "admin@acme.test" || u.FirstName != "Ada" {
		t.Errorf("user %+v", u)
	}
	expectStatus(t, e.call("GET", "/api/v1/user?id=kp_nobody", nil, nil), 400)
	var orgs organizationsResponse
	e.call("GET", "/api/v1/organizations", nil, &orgs)
	if len(orgs.Organizations) != 1 || orgs.Organizations[0].Code != DefaultOrgCode || orgs.Organizations[0].Name != "Acme" {
		t.Errorf("orgs %+v", orgs)
	}
	var org organizationItem
	expectStatus(t, e.call("GET", "/api/v1/organization?code="+DefaultOrgCode, nil, &org), 200)
	if org.Name != "Acme" {
		t.Errorf("org %+v", org)
	}
}

func TestOrganizationUserFilters(t *testing.T) {
	e := newEnv(t)
	emails := func(q string) []string {
		var ou organizationUsersResponse
		expectStatus(t, e.call("GET", "/api/v1/organizations/"+DefaultOrgCode+"/users"+q, nil, &ou), 200)
		var out []string
		for _, u := range ou.OrganizationUsers {
			out = append(out, u.Email)
		}
		return out
	}
	if got := emails("?sort=email_asc"); !slices.Equal(got, []string{"admin@acme.test", "alice@acme.test", "bob@acme.test", "carol@acme.test"}) {
		t.Errorf("all %v", got)
	}
	if got := emails("?roles=viewer"); !slices.Equal(got, []string{"bob@acme.test", "carol@acme.test"}) {
		t.Errorf("roles=viewer %v", got)
	}
	// permissions= matches effective permissions, role-inherited included.
	if got := emails("?permissions=export:reports"); !slices.Equal(got, []string{"admin@acme.test", "alice@acme.test", "carol@acme.test"}) {
		t.Errorf("permissions=export:reports %v", got)
	}
	if got := emails("?permissions=export:reports,delete:reports"); !slices.Equal(got, []string{"admin@acme.test"}) {
		t.Errorf("all-match %v", got)
	}
	if got := emails("?roles=viewer&permissions=export:reports"); !slices.Equal(got, []string{"carol@acme.test"}) {
		t.Errorf("roles+permissions %v", got)
	}
	var ou organizationUsersResponse
	e.call("GET", "/api/v1/organizations/"+DefaultOrgCode+"/users?page_size=3", nil, &ou)
	if len(ou.OrganizationUsers) != 3 || ou.NextToken == "" {
		t.Errorf("page 1: %d, next %q", len(ou.OrganizationUsers), ou.NextToken)
	}
	u := ou.OrganizationUsers[0]
	if u.FullName != "Ada Admin" || !slices.Equal(u.Roles, []string{"admin"}) || u.JoinedOn == "" {
		t.Errorf("org user %+v", u)
	}
	var perms orgUserPermissionsResponse
	e.call("GET", "/api/v1/organizations/"+DefaultOrgCode+"/users/"+seedUserCarol+"/permissions?expand=roles", nil, &perms)
	if len(perms.Permissions) != 2 || len(perms.Permissions[0].Roles) != 1 || len(perms.Permissions[1].Roles) != 0 {
		t.Errorf("carol permissions %+v", perms.Permissions)
	}
}

func TestRateLimitAndFaults(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit = 1 })
	tok := e.m2mToken()
	var limited *http.Response
	for i := 0; i < 5 && limited == nil; i++ {
		if resp := e.callWith(tok, "GET", "/api/v1/roles", nil, nil); resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
		}
	}
	if limited == nil {
		t.Fatal("no 429 past the rate limit")
	}
	if secs, err := strconv.Atoi(limited.Header.Get("RateLimit-Reset")); err != nil || secs < 1 {
		t.Errorf("RateLimit-Reset %q", limited.Header.Get("RateLimit-Reset"))
	}
	e.srv.SetRateLimit(0)
	expectStatus(t, e.callWith(tok, "GET", "/api/v1/roles", nil, nil), 200)

	e.srv.SetFaultRate(1)
	var er errorResponse
	expectStatus(t, e.callWith(tok, "GET", "/api/v1/roles", nil, &er), http.StatusInternalServerError)
	if len(er.Errors) != 1 {
		t.Errorf("fault body %v", er)
	}
	e.srv.SetFaultRate(0)
	expectStatus(t, e.callWith(tok, "GET", "/api/v1/roles", nil, nil), 200)
}

func TestRequestLog(t *testing.T) {
	e := newEnv(t)
	e.srv.ResetRequests()
	tok := e.m2mToken()
	e.callWith(tok, "GET", "/api/v1/roles", nil, nil)
	e.callWith(tok, "GET", "/api/v1/nope", nil, nil)
	resp, body := get(t, http.DefaultClient, e.srv.URL()+"/_devkinde/requests")
	expectStatus(t, resp, 200)
	var recs []RequestRecord
	if err := json.Unmarshal([]byte(body), &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("records %+v", recs)
	}
	if recs[0].Path != "/oauth2/token" || recs[1].Path != "/api/v1/roles" || recs[1].Status != 200 ||
		recs[2].Status != 404 || recs[2].Method != "GET" || recs[2].Time.IsZero() {
		t.Errorf("records %+v", recs)
	}
	if got := e.srv.Requests(); len(got) != 3 {
		t.Errorf("Requests() has %d records; /_devkinde must not be logged", len(got))
	}
}

// Under Quirks.LastPageToken the last page, and the empty page it leads to,
// still carry a next_token.
func TestLastPageToken(t *testing.T) {
	e := newEnv(t)
	var pg permissionsResponse
	expectStatus(t, e.call("GET", "/api/v1/permissions?page_size=500", nil, &pg), 200)
	if len(pg.Permissions) == 0 || pg.NextToken == "" {
		t.Fatalf("last page: %d items, next_token %q", len(pg.Permissions), pg.NextToken)
	}
	var empty permissionsResponse
	expectStatus(t, e.call("GET", "/api/v1/permissions?page_size=500&next_token="+pg.NextToken, nil, &empty), 200)
	if len(empty.Permissions) != 0 || empty.NextToken == "" {
		t.Fatalf("page after the last: %d items, next_token %q", len(empty.Permissions), empty.NextToken)
	}
}
