package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// The kept grants and holder counts equal a recount from the base tables
// after every kind of directory write, applied at random: whole
// organizations replaced, one membership set or removed, a role's
// permissions changed, roles, permissions, users and organizations deleted.
// A recount after each transaction catches an upkeep that is right only on
// average.
func TestDirDerivedMatchRecountAfterRandomChanges(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(8, 60))
	const nPerms, nRoles, nOrgs, nUsers = 8, 5, 6, 30
	perm := func(i int) string { return fmt.Sprintf("perm_%d", i) }
	role := func(i int) string { return fmt.Sprintf("role_%d", i) }
	org := func(i int) string { return fmt.Sprintf("org_%d", i) }
	user := func(i int) string { return fmt.Sprintf("kp_%d", i) }
	some := func(n, max int, name func(int) string) []string {
		var out []string
		for range rng.IntN(n + 1) {
			out = append(out, name(rng.IntN(max)))
		}
		return out // duplicates on purpose: the writes drop them
	}
	member := func() DirMember {
		return DirMember{UserID: user(rng.IntN(nUsers)), RoleIDs: some(2, nRoles, role), PermissionIDs: some(2, nPerms, perm)}
	}
	seed := func(tx *Tx) error {
		var perms []DirPermission
		for i := range nPerms {
			perms = append(perms, DirPermission{ID: perm(i), Key: fmt.Sprintf("p:%d", i)})
		}
		if err := tx.DirUpsertPermissions(ctx, perms, 1); err != nil {
			return err
		}
		for i := range nRoles {
			if err := tx.DirUpsertRoles(ctx, []DirRole{{ID: role(i), Key: fmt.Sprintf("r%d", i)}}, 1); err != nil {
				return err
			}
			if err := tx.DirSetRolePermissions(ctx, role(i), some(3, nPerms, perm)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := db.InTx(ctx, seed); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		run  func(tx *Tx) error
	}{
		{"replace an organization's members", func(tx *Tx) error {
			var ms []DirMember
			seen := map[string]bool{}
			for range rng.IntN(8) {
				if m := member(); !seen[m.UserID] {
					seen[m.UserID] = true
					ms = append(ms, m)
				}
			}
			o := org(rng.IntN(nOrgs))
			if err := tx.DirUpsertOrganizations(ctx, []DirOrganization{{Code: o}}, 1); err != nil {
				return err
			}
			return tx.DirReplaceOrganizationMembers(ctx, o, ms)
		}},
		{"set a membership", func(tx *Tx) error {
			m := member()
			return tx.DirSetMembership(ctx, org(rng.IntN(nOrgs)), m.UserID, &m)
		}},
		{"remove a membership", func(tx *Tx) error {
			return tx.DirSetMembership(ctx, org(rng.IntN(nOrgs)), user(rng.IntN(nUsers)), nil)
		}},
		{"change a role's permissions", func(tx *Tx) error {
			return tx.DirSetRolePermissions(ctx, role(rng.IntN(nRoles)), some(4, nPerms, perm))
		}},
		{"delete a role", func(tx *Tx) error { return tx.DirDeleteRole(ctx, role(rng.IntN(nRoles))) }},
		{"delete a permission", func(tx *Tx) error {
			_, err := tx.DirDeletePermission(ctx, perm(rng.IntN(nPerms)))
			return err
		}},
		{"delete a user", func(tx *Tx) error { return tx.DirDeleteUser(ctx, user(rng.IntN(nUsers))) }},
		{"delete an organization", func(tx *Tx) error { return tx.DirDeleteOrganization(ctx, org(rng.IntN(nOrgs))) }},
		{"an RBAC edit of a role's permission", func(tx *Tx) error {
			r, p := role(rng.IntN(nRoles)), perm(rng.IntN(nPerms))
			if rng.IntN(2) == 0 {
				return tx.DirGrantRolePermission(ctx, r, p)
			}
			return tx.DirRevokeRolePermission(ctx, r, p)
		}},
		{"an RBAC edit of a member", func(tx *Tx) error {
			o, u := org(rng.IntN(nOrgs)), user(rng.IntN(nUsers))
			switch rng.IntN(4) {
			case 0:
				return tx.DirGrantUserRole(ctx, o, u, role(rng.IntN(nRoles)))
			case 1:
				return tx.DirRevokeUserRole(ctx, o, u, role(rng.IntN(nRoles)))
			case 2:
				return tx.DirGrantUserPermission(ctx, o, u, perm(rng.IntN(nPerms)))
			}
			return tx.DirRevokeUserPermission(ctx, o, u, perm(rng.IntN(nPerms)))
		}},
		{"a raw write wrapped in DirChangeUsers", func(tx *Tx) error {
			u, o := user(rng.IntN(nUsers)), org(rng.IntN(nOrgs))
			return tx.DirChangeUsers(ctx, []string{u}, func() error {
				_, err := tx.Exec(ctx, `DELETE FROM dir_user_roles WHERE user_id = ? AND org_code = ?`, u, o)
				return err
			})
		}},
	}
	// Deletions are rarer than additions, so the directory keeps holders.
	weights := []int{6, 8, 3, 4, 1, 1, 1, 1, 3, 6, 2}
	pick := func() int {
		total := 0
		for _, w := range weights {
			total += w
		}
		n := rng.IntN(total)
		for i, w := range weights {
			if n < w {
				return i
			}
			n -= w
		}
		return 0
	}
	var sawHolders bool
	for step := range 300 {
		op := ops[pick()]
		if err := db.InTx(ctx, op.run); err != nil {
			t.Fatalf("step %d, %s: %v", step, op.name, err)
		}
		if err := db.DirVerifyDerived(ctx); err != nil {
			t.Fatalf("step %d, after %s: %v", step, op.name, err)
		}
		if step%50 == 49 {
			// Roles and permissions come back, as a sync would bring them.
			if err := db.InTx(ctx, seed); err != nil {
				t.Fatal(err)
			}
			if err := db.DirVerifyDerived(ctx); err != nil {
				t.Fatalf("step %d, after reseeding: %v", step, err)
			}
		}
		if c, err := db.DirPermissionCountsAll(ctx); err == nil && len(c) > 0 {
			sawHolders = true
		}
	}
	if !sawHolders {
		t.Fatal("no permission ever had a holder: the test exercised nothing")
	}
}

// DirVerifyDerived notices a kept count that is wrong, and a kept grant
// that is missing.
func TestDirVerifyDerivedNoticesDrift(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *Tx) error {
		if err := tx.DirUpsertPermissions(ctx, []DirPermission{{ID: "p1", Key: "export:reports"}}, 1); err != nil {
			return err
		}
		if err := tx.DirUpsertRoles(ctx, []DirRole{{ID: "r1", Key: "analyst"}}, 1); err != nil {
			return err
		}
		if err := tx.DirSetRolePermissions(ctx, "r1", []string{"p1"}); err != nil {
			return err
		}
		return tx.DirReplaceOrganizationMembers(ctx, "org_a", []DirMember{{UserID: "kp_1", RoleIDs: []string{"r1"}},
			{UserID: "kp_2", PermissionIDs: []string{"p1"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DirVerifyDerived(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := db.DirPermissionCountsOf(ctx, "p1")
	if err != nil || c != (DirPermissionCounts{Users: 2, Grants: 2, ViaRoles: 1, Direct: 1, DirectOnly: 1}) {
		t.Fatalf("counts %+v, %v", c, err)
	}
	if _, err := db.Exec(ctx, `UPDATE dir_permission_counts SET users = 3`); err != nil {
		t.Fatal(err)
	}
	if err := db.DirVerifyDerived(ctx); err == nil {
		t.Fatal("a wrong count went unnoticed")
	}
	if _, err := db.Exec(ctx, `UPDATE dir_permission_counts SET users = 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM dir_grants WHERE user_id = 'kp_2'`); err != nil {
		t.Fatal(err)
	}
	if err := db.DirVerifyDerived(ctx); err == nil {
		t.Fatal("a missing grant went unnoticed")
	}
}
