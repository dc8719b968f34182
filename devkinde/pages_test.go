package devkinde

import "testing"

// TestDemoAccountsFollowTheState: the demo accounts (the sign-in page's list
// and permsync's start-up banner) describe each user as they stand now:
// roles, then direct grants, and a deleted permission is gone at once.
func TestDemoAccountsFollowTheState(t *testing.T) {
	e := newEnv(t)
	access := func() map[string]string {
		out := map[string]string{}
		for _, a := range e.srv.DemoAccounts() {
			out[a.Email] = a.Access
		}
		return out
	}
	want := map[string]string{
		"admin@acme.test": "admin", "alice@acme.test": "analyst", "bob@acme.test": "viewer",
		"carol@acme.test": "viewer + direct export:reports",
	}
	got := access()
	for email, w := range want {
		if got[email] != w {
			t.Errorf("%s = %q, want %q", email, got[email], w)
		}
	}
	expectStatus(t, e.call("DELETE", "/api/v1/permissions/"+seedPermExportReport, nil, nil), 200)
	if got := access()["carol@acme.test"]; got != "viewer" {
		t.Errorf("carol after export:reports was deleted = %q, want viewer", got)
	}
}
