package kinde_test

import (
	"errors"
	"slices"
	"testing"

	"permsync/devkinde"
	"permsync/kinde"
)

// TestDevkindeRBACEdits runs every RBAC edit call of the client against
// devkinde and reads the result back through the client.
func TestDevkindeRBACEdits(t *testing.T) {
	s := startDevkinde(t, devkinde.Config{})
	c := newClient(s, kinde.Config{})
	ctx := t.Context()
	seed := devkinde.DefaultSeed()
	bob := seed.UserIDByEmail("bob@acme.test")
	org := devkinde.DefaultOrgCode
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	permID := func(key string) string {
		t.Helper()
		ps, err := c.AllPermissions(ctx)
		must(err)
		for _, p := range ps {
			if p.Key == key {
				return p.ID
			}
		}
		t.Fatalf("no permission %q", key)
		return ""
	}

	// Permissions: create, rename.
	_, err := c.CreatePermission(ctx, kinde.PermissionInput{Key: "audit:read", Name: "Read audit"})
	must(err)
	audit := permID("audit:read")
	must(c.UpdatePermission(ctx, audit, kinde.PermissionInput{Key: "audit:view", Name: "View audit"}))
	if permID("audit:view") != audit {
		t.Fatal("rename changed the id")
	}
	_, err = c.CreatePermission(ctx, kinde.PermissionInput{Key: "audit:view"})
	if !errors.Is(err, kinde.ErrExists) {
		t.Fatalf("duplicate key = %v, want ErrExists", err)
	}

	// Roles: create, rename, permissions.
	roleID, err := c.CreateRole(ctx, kinde.RoleInput{Key: "auditor", Name: "Auditor"})
	must(err)
	must(c.UpdateRole(ctx, roleID, kinde.RoleInput{Key: "auditor", Name: "Auditors", Description: "Reads the audit log"}))
	r, err := c.Role(ctx, roleID)
	must(err)
	if r.Name != "Auditors" || r.Description != "Reads the audit log" {
		t.Fatalf("role after update = %+v", r)
	}
	must(c.AddRolePermission(ctx, roleID, audit))
	must(c.AddRolePermission(ctx, roleID, audit)) // already there: no change, no error
	ch, err := c.UpdateRolePermissions(ctx, roleID, []string{permID("read:reports")}, nil)
	must(err)
	if !slices.Equal(ch.Added, []string{permID("read:reports")}) || len(ch.Removed) != 0 {
		t.Fatalf("bulk change = %+v", ch)
	}
	rp, err := c.AllRolePermissions(ctx, roleID)
	must(err)
	if got := keysOf(rp); !slices.Equal(got, []string{"audit:view", "read:reports"}) {
		t.Fatalf("role permissions = %v", got)
	}
	must(c.RemoveRolePermission(ctx, roleID, permID("read:reports")))
	if err := c.RemoveRolePermission(ctx, roleID, permID("read:reports")); !errors.Is(err, kinde.ErrNotAssigned) {
		t.Fatalf("removing it again = %v, want ErrNotAssigned", err)
	}

	// A member: role and direct permission, added and removed.
	must(c.AddOrganizationUserRole(ctx, org, bob, roleID))
	must(c.AddOrganizationUserPermission(ctx, org, bob, permID("delete:reports")))
	roles, err := c.OrganizationUserRoles(ctx, org, bob)
	must(err)
	if !slices.ContainsFunc(roles, func(r kinde.OrganizationUserRole) bool { return r.Key == "auditor" }) {
		t.Fatalf("bob's roles = %+v", roles)
	}
	held, err := c.OrganizationUserPermissions(ctx, org, bob)
	must(err)
	var heldKeys []string
	for _, p := range held {
		heldKeys = append(heldKeys, p.Key)
	}
	slices.Sort(heldKeys)
	if !slices.Equal(heldKeys, []string{"audit:view", "delete:reports", "read:reports"}) {
		t.Fatalf("bob holds %v", heldKeys)
	}
	must(c.RemoveOrganizationUserPermission(ctx, org, bob, permID("delete:reports")))
	if err := c.RemoveOrganizationUserPermission(ctx, org, bob, audit); !errors.Is(err, kinde.ErrNotAssigned) {
		t.Fatalf("removing a role-held permission as direct = %v, want ErrNotAssigned", err)
	}
	must(c.RemoveOrganizationUserRole(ctx, org, bob, roleID))
	if err := c.RemoveOrganizationUserRole(ctx, org, bob, roleID); !errors.Is(err, kinde.ErrNotAssigned) {
		t.Fatalf("removing the role again = %v, want ErrNotAssigned", err)
	}

	// Unknown ids are typed, whichever status Kinde picks for them.
	for name, err := range map[string]error{
		"role":            c.UpdateRole(ctx, "01900000-0000-7000-8000-000000000000", kinde.RoleInput{Key: "x", Name: "x"}),
		"role permission": c.AddRolePermission(ctx, roleID, "01900000-0000-7000-8000-000000000000"),
		"member role":     c.AddOrganizationUserRole(ctx, org, bob, "01900000-0000-7000-8000-000000000000"),
		"organization":    c.RemoveOrganizationUser(ctx, "org_nope", bob),
		"user":            c.AddOrganizationUserPermission(ctx, org, "kp_00000000000000000000000000000000", audit),
	} {
		if !errors.Is(err, kinde.ErrUnknownID) {
			t.Errorf("%s: %v, want ErrUnknownID", name, err)
		}
	}

	// Removal from the organization, then the role goes.
	must(c.RemoveOrganizationUser(ctx, org, bob))
	if err := c.RemoveOrganizationUser(ctx, org, bob); !errors.Is(err, kinde.ErrNotAssigned) {
		t.Fatalf("removing a non-member = %v, want ErrNotAssigned", err)
	}
	members, err := c.AllOrganizationUsers(ctx, org, kinde.OrgUserFilter{})
	must(err)
	if slices.ContainsFunc(members, func(u kinde.OrganizationUser) bool { return u.ID == bob }) {
		t.Fatal("bob is still a member")
	}
	must(c.DeleteRole(ctx, roleID))
	if _, err := c.Role(ctx, roleID); !errors.Is(err, kinde.ErrUnknownID) {
		t.Fatalf("deleted role = %v, want ErrUnknownID", err)
	}
}
