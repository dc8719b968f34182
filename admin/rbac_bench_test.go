package admin_test

import (
	"context"
	"testing"
	"time"

	"permsync/admin"
	"permsync/devkinde"
	"permsync/directory"
	"permsync/events"
	"permsync/fanout"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// BenchmarkConfirmEdit measures what the confirm of an RBAC edit does before
// it answers, on the target tenant (1,000 organizations, 5,000 users,
// devkinde.GenerateSeed) synced into the directory: plan the edit from the
// directory, then, in one transaction, the edit record, the scoped denials,
// the fan-out with its items, the scheduled Kinde call and the audit entry,
// then the events. No Kinde call. The Undo after each confirm is not timed
// (it withdraws the denials, so every iteration plans the same edit).
// SQLite in a temporary folder, or Postgres with PERMSYNC_TEST_DATABASE_URL, in a
// new schema each run (so no run inherits the rows earlier runs left behind).
// The target is 200 ms.
func BenchmarkConfirmEdit(b *testing.B) {
	ctx := context.Background()
	seed := devkinde.GenerateSeed(devkinde.GenerateOptions{Seed: 1, Organizations: 1000, Users: 5000})
	dk, err := devkinde.New(devkinde.Config{Seed: seed})
	if err != nil {
		b.Fatal(err)
	}
	if err := dk.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = dk.Close() })
	db, err := store.Open(ctx, store.Options{DataDir: b.TempDir(), URL: testsupport.DatabaseURL(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	kc := kinde.New(kinde.Config{IssuerURL: dk.URL(), ClientID: devkinde.M2MClientID,
		ClientSecret: devkinde.M2MClientSecret, Rate: 2000, Burst: 100, MaxRetries: -1})
	dir := directory.New(db, nil)
	if err := directory.NewSyncer(db, kc, nil, directory.SyncOptions{}).RunOnce(ctx); err != nil {
		b.Fatal(err)
	}
	broker := events.NewBroker()
	engine, err := fanout.New(db, fanout.Deps{Kinde: kc, Events: broker}, fanout.Options{}) // never started
	if err != nil {
		b.Fatal(err)
	}
	svc, err := admin.NewService(db, kc, db, broker, engine, admin.Options{Directory: dir, UndoWindow: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	actor := admin.Actor{UserID: seed.UserIDByEmail("admin@acme.test"), Email: "admin@acme.test",
		Permissions: []string{admin.DefaultAdminPermission}}
	roleID := func(key string) string {
		for _, r := range seed.Roles {
			if r.Key == key {
				return r.ID
			}
		}
		b.Fatalf("no role %s", key)
		return ""
	}
	permID := func(key string) string {
		p, err := dir.PermissionByKey(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		return p.ID
	}
	// A user who holds analyst in an organization of the generated tenant.
	members, err := db.DirRoleMembers(ctx, roleID("analyst"))
	if err != nil || len(members) == 0 {
		b.Fatal("no analyst", err)
	}
	m := members[len(members)/2]
	cases := []struct {
		name    string
		in      admin.EditInput
		confirm string
	}{
		// The widest edit: analyst is the base role of most memberships.
		{"role.permission.remove/analyst:export:reports", admin.EditInput{Kind: admin.EditRoleRemovePermission,
			RoleID: roleID("analyst"), PermissionID: permID("export:reports")}, "export:reports"},
		{"member.role.remove/one-member", admin.EditInput{Kind: admin.EditMemberRemoveRole, UserID: m.UserID,
			OrgCode: m.OrgCode, RoleID: roleID("analyst")}, "analyst"},
		{"member.permission.add/one-member", admin.EditInput{Kind: admin.EditMemberGrantPermission, UserID: m.UserID,
			OrgCode: m.OrgCode, PermissionID: permID("delete:reports")}, ""},
	}
	// The plan alone, which the preview page computes too.
	b.Run("preview/"+cases[0].name, func(b *testing.B) {
		for b.Loop() {
			if _, err := svc.PreviewEdit(ctx, actor, cases[0].in); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var res *admin.EditResult
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if res, err = svc.ConfirmEdit(ctx, actor, tc.in, tc.confirm); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := svc.UndoEdit(ctx, actor, res.EditID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(res.Affected), "users")
			b.ReportMetric(float64(res.Denied), "denials")
		})
	}
}
