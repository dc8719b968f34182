package admin_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"permsync/admin"
	"permsync/apperr"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// roleID finds a role's id by key in the directory.
func (h *harness) roleID(key string) string {
	h.t.Helper()
	roles, err := h.svc.Roles(context.Background(), h.admin)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range roles {
		if r.Key == key {
			return r.ID
		}
	}
	h.t.Fatalf("role %q not found", key)
	return ""
}

// waitEdit waits for an edit to reach state and its fan-out to finish.
func (h *harness) waitEdit(id, state string) *admin.EditView {
	h.t.Helper()
	var v *admin.EditView
	testsupport.Eventually(h.t, 20*time.Second, "edit "+id+" to be "+state, func() bool {
		var err error
		if v, err = h.svc.Edit(context.Background(), h.admin, id); err != nil {
			h.t.Fatal(err)
		}
		return v.State == state && v.Fanout.Finished
	})
	return v
}

// fanoutDenials returns the denials recorded under a fan-out.
func (h *harness) fanoutDenials(fanoutID string) []store.Denial {
	h.t.Helper()
	ds, err := h.db.LiveDenials(context.Background(), time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	var out []store.Denial
	for _, d := range ds {
		if d.FanoutID == fanoutID {
			out = append(out, d)
		}
	}
	return out
}

// TestConfirmRemovesPermissionFromRole: taking export:reports off analyst
// denies it to alice alone (carol holds it directly, admin through the admin
// role), refreshes exactly alice, makes the change at Kinde and in the
// directory, and settles the denial.
func TestConfirmRemovesPermissionFromRole(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	in := admin.EditInput{Kind: admin.EditRoleRemovePermission, RoleID: h.roleID("analyst"),
		PermissionID: h.permissionID("export:reports")}
	pv, err := h.svc.PreviewEdit(ctx, h.admin, in)
	if err != nil {
		t.Fatal(err)
	}
	if pv.ConfirmWord != "export:reports" {
		t.Fatalf("confirm word = %q", pv.ConfirmWord)
	}
	if _, err := h.svc.ConfirmEdit(ctx, h.admin, in, "wrong"); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("wrong confirmation: %v", err)
	}
	res, err := h.svc.ConfirmEdit(ctx, h.admin, in, "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	alice := h.userID("alice@acme.test")
	if res.Affected != 1 || res.Denied != 1 {
		t.Fatalf("affected %d, denied %d; want 1 and 1", res.Affected, res.Denied)
	}
	v := h.waitEdit(res.EditID, admin.EditApplied)
	if v.Outcome == "" || v.Attempts != 1 {
		t.Errorf("outcome %q after %d attempt(s)", v.Outcome, v.Attempts)
	}
	ds := h.fanoutDenials(res.FanoutID)
	if len(ds) != 1 || ds[0].UserID != alice || ds[0].OrgCode != "org_acme" || ds[0].PermissionKey != "export:reports" ||
		ds[0].SettledAt.IsZero() {
		t.Fatalf("denials = %+v; want one settled denial of export:reports to alice in org_acme", ds)
	}
	items, err := h.db.FanoutItems(ctx, res.FanoutID)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].UserID != alice || items[0].Status != store.FanoutItemDone {
		t.Fatalf("fan-out items = %+v; want alice, done", items)
	}
	perms, err := h.kc.AllRolePermissions(ctx, h.roleID("analyst"))
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(perms, func(p kinde.Permission) bool { return p.Key == "export:reports" }) {
		t.Fatal("Kinde's analyst role still grants export:reports")
	}
	keys, err := h.db.DirRolePermissionKeys(ctx, h.roleID("analyst"))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(keys, "export:reports") {
		t.Fatal("the directory's analyst role still grants export:reports")
	}
	// The edit is planned again from the updated directory: nothing to do.
	if _, err := h.svc.PreviewEdit(ctx, h.admin, in); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("preview after the edit: %v; want Invalid", err)
	}
}

// TestUndoEdit: inside the window Undo withdraws the denials and Kinde
// never sees the change; a second Undo is refused.
func TestUndoEdit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{undoWindow: time.Hour})
	ctx := context.Background()
	bob := h.userID("bob@acme.test")
	in := admin.EditInput{Kind: admin.EditMemberRemoveRole, UserID: bob, OrgCode: "org_acme",
		RoleID: h.roleID("viewer")}
	res, err := h.svc.ConfirmEdit(ctx, h.admin, in, "viewer")
	if err != nil {
		t.Fatal(err)
	}
	if ds := h.fanoutDenials(res.FanoutID); len(ds) != 1 || ds[0].UserID != bob || !ds[0].SettledAt.IsZero() {
		t.Fatalf("denials = %+v; want read:reports denied to bob, unsettled", ds)
	}
	if err := h.svc.UndoEdit(ctx, h.admin, res.EditID); err != nil {
		t.Fatal(err)
	}
	if ds := h.fanoutDenials(res.FanoutID); len(ds) != 0 {
		t.Fatalf("denials after Undo = %+v", ds)
	}
	v, err := h.svc.Edit(ctx, h.admin, res.EditID)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != admin.EditUndone || v.Undoable {
		t.Fatalf("state %q, undoable %v", v.State, v.Undoable)
	}
	if err := h.svc.UndoEdit(ctx, h.admin, res.EditID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("second undo: %v; want Conflict", err)
	}
	roles, err := h.kc.OrganizationUserRoles(ctx, "org_acme", bob)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 1 {
		t.Fatalf("bob's roles at Kinde = %+v; want viewer kept", roles)
	}
}

// TestGrantAndRefusals: a direct grant has no denial and refreshes the
// user; an edit that takes the admin permission from the actor is refused.
func TestGrantAndRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	bob := h.userID("bob@acme.test")
	res, err := h.svc.ConfirmEdit(ctx, h.admin, admin.EditInput{Kind: admin.EditMemberGrantPermission, UserID: bob,
		OrgCode: "org_acme", PermissionID: h.permissionID("export:reports")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Denied != 0 || res.Affected != 1 {
		t.Fatalf("denied %d, affected %d", res.Denied, res.Affected)
	}
	h.waitEdit(res.EditID, admin.EditApplied)
	ps, err := h.kc.OrganizationUserPermissions(ctx, "org_acme", bob)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ps, func(p kinde.OrganizationUserPermission) bool { return p.Key == "export:reports" }) {
		t.Fatalf("bob's permissions at Kinde = %+v", ps)
	}
	_, err = h.svc.ConfirmEdit(ctx, h.admin, admin.EditInput{Kind: admin.EditMemberRemoveRole,
		UserID: h.admin.UserID, OrgCode: "org_acme", RoleID: h.roleID("admin")}, "admin")
	if apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("locking oneself out: %v; want Conflict", err)
	}
	if _, err := h.svc.ConfirmEdit(ctx, admin.Actor{UserID: bob}, admin.EditInput{Kind: admin.EditRoleDelete,
		RoleID: h.roleID("viewer")}, "viewer"); !errors.Is(err, admin.ErrForbidden) {
		t.Fatalf("a non-admin: %v; want Forbidden", err)
	}
}

// TestEveryEditAtKinde makes each kind of edit through to Kinde and the
// directory: after each, the directory's derived tables agree with its base
// tables, and the next edit is planned from what the last one left.
func TestEveryEditAtKinde(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	bob, carol := h.userID("bob@acme.test"), h.userID("carol@acme.test")
	steps := []struct {
		in      admin.EditInput
		confirm string
	}{
		{admin.EditInput{Kind: admin.EditRoleAddPermission, RoleID: h.roleID("viewer"),
			PermissionID: h.permissionID("export:reports")}, ""},
		{admin.EditInput{Kind: admin.EditMemberAddRole, UserID: bob, OrgCode: "org_acme", RoleID: h.roleID("analyst")}, ""},
		{admin.EditInput{Kind: admin.EditMemberRemovePermission, UserID: carol, OrgCode: "org_acme",
			PermissionID: h.permissionID("export:reports")}, "export:reports"},
		{admin.EditInput{Kind: admin.EditRoleCreate, Key: "auditor", Name: "Auditor"}, ""},
		{admin.EditInput{Kind: admin.EditPermissionCreate, Key: "read:audit", Name: "Read the audit log"}, ""},
		{admin.EditInput{Kind: admin.EditRoleRename, RoleID: h.roleID("viewer"), Key: "reader", Name: "Reader"}, ""},
		{admin.EditInput{Kind: admin.EditPermissionRename, PermissionID: h.permissionID("delete:reports"),
			Key: "remove:reports", Name: "Remove reports"}, "delete:reports"},
		{admin.EditInput{Kind: admin.EditMemberRemove, UserID: bob, OrgCode: "org_acme"}, "org_acme"},
		{admin.EditInput{Kind: admin.EditRoleDelete, RoleID: h.roleID("viewer")}, "reader"},
	}
	for _, s := range steps {
		res, err := h.svc.ConfirmEdit(ctx, h.admin, s.in, s.confirm)
		if err != nil {
			t.Fatalf("%s: %v", s.in.Kind, err)
		}
		v := h.waitEdit(res.EditID, admin.EditApplied)
		if err := h.db.DirVerifyDerived(ctx); err != nil {
			t.Fatalf("after %s: %v", v.Summary, err)
		}
	}
	roles, err := h.kc.AllRoles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range roles {
		keys = append(keys, r.Key)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"admin", "analyst", "auditor"}) {
		t.Fatalf("roles at Kinde = %v", keys)
	}
	if orgs, err := h.db.DirUserOrgs(ctx, bob); err != nil || len(orgs) != 0 {
		t.Fatalf("bob's organizations in the directory = %v, %v", orgs, err)
	}
}

// TestUndoFromTheFanout: the fan-out page's Undo of an edit's fan-out
// undoes the edit.
func TestUndoFromTheFanout(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{undoWindow: time.Hour})
	ctx := context.Background()
	res, err := h.svc.ConfirmEdit(ctx, h.admin, admin.EditInput{Kind: admin.EditRoleRemovePermission,
		RoleID: h.roleID("analyst"), PermissionID: h.permissionID("export:reports")}, "export:reports")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.UndoDeletion(ctx, h.admin, res.FanoutID); err != nil {
		t.Fatal(err)
	}
	v, err := h.svc.Edit(ctx, h.admin, res.EditID)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != admin.EditUndone || len(h.fanoutDenials(res.FanoutID)) != 0 {
		t.Fatalf("after Undo from the fan-out: state %q, denials %v", v.State, h.fanoutDenials(res.FanoutID))
	}
}
