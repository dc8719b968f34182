package app_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"permsync/app/apptest"
	"permsync/devkinde"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// TestRecreatedKeyStaysDeniedInOlderTokens: export:reports, held by many
// users, is deleted in the admin panel while Kinde's budget is slow; while
// the fan-out runs, the key is created again at Kinde and granted to the
// analyst role again. A user the fan-out has not reached yet still carries
// the old key in her token and is refused; a token granted after the new
// grant carries the new key and is honoured. The permissions page, which
// used to lift the old key's tombstone when it saw the key again, changes
// nothing.
func TestRecreatedKeyStaysDeniedInOlderTokens(t *testing.T) {
	const holders = 40
	seed := devkinde.DefaultSeed()
	for i := range holders {
		seed.Users = append(seed.Users, devkinde.SeedUser{
			ID: fmt.Sprintf("kp_%032x", 0x7ec4e000+i), Email: fmt.Sprintf("holder%02d@acme.test", i),
			FirstName: "Holder", LastName: fmt.Sprint(i), Password: devkinde.DemoPassword,
			Organizations: []devkinde.SeedMembership{{Code: devkinde.DefaultOrgCode, Roles: []string{"analyst"}}},
		})
	}
	env := apptest.Start(t, apptest.Options{Seed: seed, Env: map[string]string{
		"PERMSYNC_KINDE_RATE": "2", "PERMSYNC_UNDO_WINDOW": "0"}})
	ctx := context.Background()
	kc := env.Kinde()

	// Sessions signed in before the delete, from the end of the list (the
	// fan-out reaches them last, give or take).
	old := map[string]*apptest.Client{}
	for i := holders - 8; i < holders; i++ {
		email := fmt.Sprintf("holder%02d@acme.test", i)
		c := env.Login(t, email)
		if resp := c.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s before the delete: GET /reports/export = %d", email, resp.StatusCode)
		}
		old[env.UserID(t, email)] = c
	}

	oldID := apptest.PermissionID(t, kc, "export:reports")
	adm := env.Login(t, "admin@acme.test")
	fanoutPath := adm.DeletePermission(t, oldID, "export:reports")
	fanoutID := strings.TrimPrefix(fanoutPath, "/admin/fanouts/")

	// Created again at Kinde, and granted to analysts again, while the
	// fan-out runs: once permsync has recorded Kinde's answer to the delete.
	// (A token granted between Kinde's delete and that record is refused the
	// key too: permsync cannot tell it from an older one, so it errs on the
	// side of the deletion.)
	testsupport.Eventually(t, waitFor, "permsync to record Kinde's delete of export:reports", func() bool {
		f, err := env.DB.Fanout(ctx, fanoutID)
		return err == nil && !f.KindeDoneAt.IsZero()
	})
	if perms, err := kc.AllPermissions(ctx); err != nil || slices.ContainsFunc(perms,
		func(p kinde.Permission) bool { return p.Key == "export:reports" }) {
		t.Fatalf("Kinde still lists export:reports after the recorded delete (err %v)", err)
	}
	if _, err := kc.CreatePermission(ctx, kinde.PermissionInput{Key: "export:reports", Name: "Export reports"}); err != nil {
		t.Fatal(err)
	}
	newID := apptest.PermissionID(t, kc, "export:reports")
	if newID == oldID {
		t.Fatal("devkinde reused the deleted permission's id")
	}
	if err := kc.AddRolePermission(ctx, env.SeedRoleID(t, "analyst"), newID); err != nil {
		t.Fatal(err)
	}
	// The page that used to lift the old key's tombstone on seeing it again.
	if resp := adm.Get(t, "/admin/permissions"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/permissions = %d", resp.StatusCode)
	}

	// A holder the fan-out has not reached: her token still carries the
	// key, and she is refused. Checked only while her item is pending
	// before and after the request, so the answer is about her old token.
	checked := false
	for userID, c := range old {
		if !itemPending(t, env, fanoutID, userID) {
			continue
		}
		row := aliceSession(t, env, userID)
		resp := c.Get(t, "/reports/export")
		if !itemPending(t, env, fanoutID, userID) {
			continue
		}
		if !slices.Contains(row.Permissions, "export:reports") {
			t.Fatalf("%s's old token lacks export:reports: %v", userID, row.Permissions)
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s, not refreshed yet, old token: GET /reports/export = %d; want 403", userID, resp.StatusCode)
		}
		checked = true
		break
	}
	if !checked {
		t.Fatal("the fan-out reached every signed-in holder before the check; slow it down")
	}

	// A token granted after the new grant carries the new key: honoured.
	fresh := env.Login(t, fmt.Sprintf("holder%02d@acme.test", 0))
	if resp := fresh.Get(t, "/reports/export"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a sign-in after the new grant: GET /reports/export = %d; want 200", resp.StatusCode)
	}
}

// itemPending reports whether the user's item of the fan-out is pending.
func itemPending(t *testing.T, env *apptest.Env, fanoutID, userID string) bool {
	t.Helper()
	it, err := env.DB.FanoutItem(context.Background(), fanoutID, userID)
	if err != nil {
		t.Fatalf("fan-out item of %s: %v", userID, err)
	}
	return it.Status == store.FanoutItemPending
}
