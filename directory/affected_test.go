package directory_test

import (
	"reflect"
	"testing"

	"permsync/directory"
	"permsync/fanout"
)

// Affected folds holders into one user each, with every path in any
// organization as a reason, once.
func TestAffectedFoldsHoldersPerUser(t *testing.T) {
	t.Parallel()
	analyst := directory.Path{Kind: directory.ViaRole, RoleID: "r1", RoleKey: "analyst"}
	admin := directory.Path{Kind: directory.ViaRole, RoleID: "r2", RoleKey: "admin"}
	direct := directory.Path{Kind: directory.Direct}
	hs := []directory.Holder{
		{UserID: "u1", Email: "alice@acme.test", Name: "Alice", OrgCode: "org_a", Via: []directory.Path{analyst}},
		{UserID: "u1", Email: "alice@acme.test", Name: "Alice", OrgCode: "org_b", Via: []directory.Path{admin, analyst, direct}},
		{UserID: "u2", Email: "carol@acme.test", Name: "Carol", OrgCode: "org_a", Via: []directory.Path{direct}},
		{UserID: "u2", Email: "carol@acme.test", Name: "Carol", OrgCode: "org_b", Via: []directory.Path{direct}},
	}
	role := func(key string) fanout.Reason { return fanout.Reason{Kind: fanout.ReasonRole, RoleKey: key} }
	want := []fanout.AffectedUser{
		{UserID: "u1", Email: "alice@acme.test", Name: "Alice",
			Reasons: []fanout.Reason{role("analyst"), role("admin"), {Kind: fanout.ReasonDirect}}},
		{UserID: "u2", Email: "carol@acme.test", Name: "Carol", Reasons: []fanout.Reason{{Kind: fanout.ReasonDirect}}},
	}
	if got := directory.Affected(hs); !reflect.DeepEqual(got, want) {
		t.Errorf("Affected = %+v\nwant %+v", got, want)
	}
	if got := directory.Reasons([]directory.Path{direct, analyst, direct}); !reflect.DeepEqual(got,
		[]fanout.Reason{{Kind: fanout.ReasonDirect}, role("analyst")}) {
		t.Errorf("Reasons = %+v", got)
	}
}
