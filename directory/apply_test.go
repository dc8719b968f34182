package directory_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"permsync/devkinde"
	"permsync/directory"
	"permsync/kinde"
	"permsync/store"
)

// syncedDemo returns a directory synced from devkinde's demo seed.
func syncedDemo(t *testing.T) (*devkinde.Server, *kinde.Client, *store.DB, *directory.Directory, *devkinde.Seed) {
	t.Helper()
	sd := devkinde.DefaultSeed()
	dk := startDevkinde(t, sd)
	kc := client(dk, nil)
	db := openDB(t)
	if err := directory.NewSyncer(db, kc, nil, directory.SyncOptions{}).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dk, kc, db, directory.New(db, nil), sd
}

// apply parses an event payload, prepares it and applies it.
func apply(t *testing.T, dir *directory.Directory, db *store.DB, kc directory.Kinde, payload string) *directory.Change {
	t.Helper()
	ctx := context.Background()
	ev, err := kinde.ParseEvent([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	u, err := dir.Prepare(ctx, kc, ev)
	if err != nil {
		t.Fatalf("prepare %s: %v", ev.Type, err)
	}
	var c *directory.Change
	err = db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		c, err = u.ApplyTx(ctx, tx)
		return err
	})
	if err != nil {
		t.Fatalf("apply %s: %v", ev.Type, err)
	}
	return c
}

func lossStrings(c *directory.Change) []string {
	var out []string
	for _, l := range c.Losses {
		out = append(out, l.UserID+"@"+l.OrgCode+":"+strings.Join(l.Keys, ","))
	}
	slices.Sort(out)
	return out
}

func TestApplyUserUpdated(t *testing.T) {
	ctx := context.Background()
	dk, kc, db, dir, sd := syncedDemo(t)
	carol := sd.UserIDByEmail("carol@acme.test")

	// The event spells out carol's roles and direct permissions: she lost
	// her direct export:reports.
	c := apply(t, dir, db, kc, fmt.Sprintf(`{"type":"user.updated","event_id":"event_1","data":{"user":{"id":%q,
		"email":"carol@acme.test","first_name":"Carol","last_name":"Exporter","is_suspended":false,
		"organizations":[{"code":"org_acme","roles":[{"id":"","key":"viewer"}],"permissions":[]}]}}}`, carol))
	if got, want := lossStrings(c), []string{carol + "@org_acme:export:reports"}; !slices.Equal(got, want) {
		t.Errorf("losses %v, want %v", got, want)
	}
	if ids, _ := dir.HolderIDs(ctx, "export:reports"); slices.Contains(ids, carol) {
		t.Error("carol still holds export:reports in the directory")
	}

	// Roles null: the membership is re-read from Kinde (where carol still
	// has her direct grant), not guessed.
	dk.ResetRequests()
	c = apply(t, dir, db, kc, fmt.Sprintf(`{"type":"user.updated","event_id":"event_2","data":{"user":{"id":%q,
		"email":"carol@acme.test","organizations":[{"code":"org_acme","roles":null,"permissions":null}]}}}`, carol))
	if !c.Empty() {
		t.Errorf("re-read took something away: %+v", c)
	}
	reread := 0
	for _, r := range dk.Requests() {
		if strings.HasPrefix(r.Path, "/api/v1/organizations/org_acme/users/"+carol+"/") {
			reread++
		}
	}
	if reread != 2 {
		t.Errorf("%d requests re-read carol's membership, want 2 (roles, permissions)", reread)
	}
	if ids, _ := dir.HolderIDs(ctx, "export:reports"); !slices.Contains(ids, carol) {
		t.Error("the re-read did not restore carol's direct export:reports")
	}

	// A role the directory has never met: re-read, never a crash.
	c = apply(t, dir, db, kc, fmt.Sprintf(`{"type":"user.updated","event_id":"event_3","data":{"user":{"id":%q,
		"email":"carol@acme.test","organizations":[{"code":"org_acme","roles":[{"id":"nope","key":"ghost"}],"permissions":[]}]}}}`, carol))
	if !c.Empty() {
		t.Errorf("an unknown role took something away: %+v", c)
	}

	// No organizations any more: carol lost everything.
	c = apply(t, dir, db, kc, fmt.Sprintf(`{"type":"user.updated","event_id":"event_4","data":{"user":{"id":%q,
		"email":"carol@acme.test","organizations":[]}}}`, carol))
	if got, want := lossStrings(c), []string{carol + "@org_acme:export:reports,read:reports"}; !slices.Equal(got, want) {
		t.Errorf("losses %v, want %v", got, want)
	}
}

func TestApplyRoleAndPermissionEvents(t *testing.T) {
	ctx := context.Background()
	_, kc, db, dir, sd := syncedDemo(t)
	alice := sd.UserIDByEmail("alice@acme.test")
	var analyst, export string
	for _, r := range sd.Roles {
		if r.Key == "analyst" {
			analyst = r.ID
		}
	}
	for _, p := range sd.Permissions {
		if p.Key == "export:reports" {
			export = p.ID
		}
	}

	// role.updated re-reads the role's permissions from Kinde: unchanged.
	c := apply(t, dir, db, kc, fmt.Sprintf(`{"type":"role.updated","event_id":"event_5","data":{"role":{"id":%q,"key":"analyst","name":"Analyst"}}}`, analyst))
	if !c.Empty() {
		t.Errorf("an unchanged role took something away: %+v", c)
	}

	// permission.deleted: the directory says who held it.
	c = apply(t, dir, db, kc, fmt.Sprintf(`{"type":"permission.deleted","event_id":"event_6","data":{"permission":{"id":%q}}}`, export))
	if len(c.DeletedPermissions) != 1 || c.DeletedPermissions[0].Key != "export:reports" || len(c.DeletedPermissions[0].Holders) != 3 {
		t.Fatalf("deleted permissions: %+v", c.DeletedPermissions)
	}
	if ids, _ := dir.HolderIDs(ctx, "export:reports"); len(ids) != 0 {
		t.Errorf("export:reports still has holders %v", ids)
	}

	// role.deleted: its holders lose what only it granted.
	c = apply(t, dir, db, kc, fmt.Sprintf(`{"type":"role.deleted","event_id":"event_7","data":{"role":{"id":%q}}}`, analyst))
	if got, want := lossStrings(c), []string{alice + "@org_acme:read:reports"}; !slices.Equal(got, want) {
		t.Errorf("losses %v, want %v", got, want)
	}

	// A permission the directory never knew: nothing, no error.
	c = apply(t, dir, db, kc, `{"type":"permission.deleted","event_id":"event_8","data":{"permission":{"id":"unknown"}}}`)
	if !c.Empty() {
		t.Errorf("an unknown permission took something away: %+v", c)
	}

	// organization.deleted: every member loses everything there.
	c = apply(t, dir, db, kc, `{"type":"organization.deleted","event_id":"event_9","data":{"organization":{"code":"org_acme"}}}`)
	if users := c.LossUsers(); len(users) != 3 { // alice now holds nothing
		t.Errorf("organization deleted: losses for %v, want admin, bob and carol", users)
	}
	st, err := dir.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Counts.Memberships != 0 || st.ChangedAt.IsZero() {
		t.Errorf("after organization.deleted: %+v", st)
	}
}
