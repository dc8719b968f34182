package admin_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"permsync/admin"
	"permsync/apperr"
	"permsync/directory"
	"permsync/kinde"
	"permsync/store"
)

func TestListings(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	alice, carol := h.userID("alice@acme.test"), h.userID("carol@acme.test")

	perms, err := h.svc.Permissions(ctx, h.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	if perms.Total != 4 || len(perms.Permissions) != 4 {
		t.Fatalf("permissions = %+v", perms)
	}
	byKey := map[string]admin.PermissionSummary{}
	for _, p := range perms.Permissions {
		byKey[p.Key] = p
	}
	exp := byKey["export:reports"]
	if exp.Holders != 3 || len(exp.Roles) != 2 || exp.Roles[0].Key != "admin" || exp.Roles[1].Key != "analyst" {
		t.Errorf("export:reports = %+v", exp)
	}
	if r := byKey["read:reports"]; r.Holders != 4 || len(r.Roles) != 3 {
		t.Errorf("read:reports = %+v", r)
	}
	if !byKey["admin:permissions"].IsAdmin {
		t.Error("admin:permissions not flagged")
	}
	found, err := h.svc.Permissions(ctx, h.admin, "EXPORT")
	if err != nil || len(found.Permissions) != 1 || found.Permissions[0].Key != "export:reports" {
		t.Fatalf("search = %+v, %v", found, err)
	}
	// Listings keep the id → key map that webhooks need.
	pk, err := h.db.PermissionKeyByID(ctx, exp.ID)
	if err != nil || pk.Key != "export:reports" {
		t.Fatalf("permission key = %+v, %v", pk, err)
	}

	roles, err := h.svc.Roles(ctx, h.admin)
	if err != nil || len(roles) != 3 {
		t.Fatalf("roles = %+v, %v", roles, err)
	}
	if roles[1].Key != "analyst" || roles[1].Holders != 1 || len(roles[1].Permissions) != 2 {
		t.Errorf("analyst = %+v", roles[1])
	}

	h.addSession(alice, "alice@acme.test", "read:reports", "export:reports")
	users, err := h.svc.Users(ctx, h.admin, "")
	if err != nil || users.Total != 4 {
		t.Fatalf("users = %+v, %v", users, err)
	}
	ui := slices.IndexFunc(users.Users, func(u admin.UserSummary) bool { return u.ID == alice })
	if u := users.Users[ui]; u.Email != "alice@acme.test" || !slices.Equal(u.Roles, []string{"analyst"}) ||
		!slices.Equal(u.Permissions, []string{"export:reports", "read:reports"}) || u.LiveSessions != 1 {
		t.Errorf("alice = %+v", u)
	}
	if only, _ := h.svc.Users(ctx, h.admin, "viewer"); only == nil || len(only.Users) != 2 {
		t.Errorf("role search = %+v", only)
	}

	d, err := h.svc.UserDetail(ctx, h.admin, carol)
	if err != nil {
		t.Fatal(err)
	}
	gi := slices.IndexFunc(d.Grants, func(g admin.UserPermission) bool { return g.Key == "export:reports" })
	if gi < 0 || d.Grants[gi].Reasons[0].Kind != admin.ReasonDirect || !slices.Equal(d.Roles, []string{"viewer"}) {
		t.Errorf("carol = %+v", d)
	}
	if _, err := h.svc.UserDetail(ctx, h.admin, "kp_0000000000000000000000000000beef"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown user: %v", err)
	}
	ad, err := h.svc.UserDetail(ctx, h.admin, kinde.NormalizeUserID("kp:"+alice[3:]))
	if err != nil || len(ad.Sessions) != 1 || ad.Sessions[0].Stale {
		t.Errorf("alice detail = %+v, %v", ad, err)
	}

	ov, err := h.svc.Overview(ctx, h.admin)
	if err != nil || !ov.KindeOK || ov.Permissions != 4 || ov.Roles != 3 || ov.Users != 4 || ov.Webhooks.Known {
		t.Fatalf("overview = %+v, %v", ov, err)
	}
}

// A key that exists again under a new id keeps its denial: it is dated, so
// it cannot revive the key in tokens whose claims predate the deletion, and
// nothing lifts it.
func TestRecreatedPermissionKeepsItsDenial(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	now := time.Now()
	if _, err := h.db.AddDenial(ctx, store.Denial{PermissionKey: "export:reports", PermissionID: "old-id",
		CreatedAt: now, SettledAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	perms, err := h.kc.AllPermissions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h.svc.PermissionKeys().RememberPermissions(ctx, perms) // as a permission.created webhook does
	list, err := h.svc.Permissions(ctx, h.admin, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Tombstones) != 1 || list.Tombstones[0].PermissionKey != "export:reports" || list.Tombstones[0].Pending {
		t.Fatalf("tombstones = %+v", list.Tombstones)
	}
	keys, _ := h.db.LiveDeniedKeys(ctx, now)
	if !slices.Contains(keys, "export:reports") {
		t.Fatal("listing a key created again lifted its denial")
	}
}

// When Kinde is down every page still renders, from the directory, and
// none of them calls Kinde.
func TestPagesWithoutKinde(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ctx := context.Background()
	h.dk.SetFaultRate(1)
	h.dk.ResetRequests()
	ov, err := h.svc.Overview(ctx, h.admin)
	if err != nil || !ov.KindeOK || ov.Permissions != 4 || ov.Roles != 3 || ov.Users != 4 || !ov.Directory.Synced {
		t.Fatalf("overview = %+v, %v", ov, err)
	}
	list, err := h.svc.Permissions(ctx, h.admin, "")
	if err != nil || len(list.Permissions) != 4 {
		t.Fatalf("permissions = %+v, %v", list, err)
	}
	d, err := h.svc.PermissionDetail(ctx, h.admin, list.Permissions[1].ID)
	if err != nil || d.AffectedTotal == 0 {
		t.Fatalf("permission = %+v, %v", d, err)
	}
	if _, err := h.svc.Roles(ctx, h.admin); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.UserDetail(ctx, h.admin, h.userID("carol@acme.test")); err != nil {
		t.Fatal(err)
	}
	if n := len(h.dk.Requests()); n != 0 {
		t.Errorf("the pages made %d requests to Kinde", n)
	}
	// A sync with Kinde down fails and leaves the directory as it was.
	if err := directory.NewSyncer(h.db, h.kc, nil, directory.SyncOptions{}).RunOnce(ctx); err == nil {
		t.Fatal("a sync with Kinde down succeeded")
	}
	ov2, err := h.svc.Overview(ctx, h.admin)
	if err != nil || ov2.Users != 4 || !ov2.AsOf.Equal(ov.AsOf) || ov2.Directory.LastError == "" {
		t.Fatalf("overview after a failed sync = %+v, %v", ov2, err)
	}
}
