package admin_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"permsync/admin"
	"permsync/directory"
	"permsync/events"
	"permsync/fanout"
	"permsync/internal/testsupport"
	"permsync/kinde"
	"permsync/store"
)

// BenchmarkDeleteClick measures what the delete click does before it
// answers, as the app runs it: the holders read from the directory (with
// their emails and paths, plus users whose live session carries the key),
// then the fan-out record with one item per holder, the denial, the
// scheduled Kinde delete job and the audit entry, in one transaction, then
// the events. No Kinde call. Each iteration deletes a fresh permission that
// a role held by every user grants (5,000: the target tenant's holders of
// export:reports); granting it and the Undo that follows are not timed.
// SQLite in a temporary folder, or Postgres with PERMSYNC_TEST_DATABASE_URL, in a
// new schema each run (so no run inherits the rows earlier runs left behind).
func BenchmarkDeleteClick(b *testing.B) {
	for _, holders := range []int{4, 5000} {
		b.Run(fmt.Sprintf("holders=%d", holders), func(b *testing.B) { benchDeleteClick(b, holders) })
	}
}

func benchDeleteClick(b *testing.B, holders int) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: b.TempDir(), URL: testsupport.DatabaseURL(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	kc := kinde.New(kinde.Config{IssuerURL: "http://127.0.0.1:1", ClientID: "unused", ClientSecret: "unused"})
	broker := events.NewBroker()
	engine, err := fanout.New(db, fanout.Deps{Kinde: kc, Events: broker}, fanout.Options{}) // never started
	if err != nil {
		b.Fatal(err)
	}
	// The directory: one organization whose members all hold role_bench.
	members := make([]store.DirMember, holders)
	users := make([]store.DirUser, holders)
	for i := range members {
		id := fmt.Sprintf("kp_%032x", i)
		members[i] = store.DirMember{UserID: id, RoleIDs: []string{"role_bench"}}
		users[i] = store.DirUser{ID: id, Email: fmt.Sprintf("user%05d@bench.test", i)}
	}
	err = db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DirUpsertRoles(ctx, []store.DirRole{{ID: "role_bench", Key: "bench"}}, 1); err != nil {
			return err
		}
		if err := tx.DirUpsertUsers(ctx, users); err != nil {
			return err
		}
		if err := tx.DirReplaceOrganizationMembers(ctx, "org_bench", members); err != nil {
			return err
		}
		return tx.PutDirSyncState(ctx, &store.DirSyncState{Run: 1, Status: "done", CompletedAt: time.Now(), CompletedRun: 1})
	})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := admin.NewService(db, kc, db, broker, engine, admin.Options{Directory: directory.New(db, nil),
		UndoWindow: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	actor := admin.Actor{UserID: "kp_admin", Email: "admin@acme.test", Permissions: []string{admin.DefaultAdminPermission}}
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		n++
		id, key := fmt.Sprintf("perm_%d", n), fmt.Sprintf("bench:%d", n)
		if err := db.UpsertPermissionKeys(ctx, []store.PermissionKey{{ID: id, Key: key}}); err != nil {
			b.Fatal(err)
		}
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.DirUpsertPermissions(ctx, []store.DirPermission{{ID: id, Key: key}}, 1); err != nil {
				return err
			}
			return tx.DirSetRolePermissions(ctx, "role_bench", []string{id})
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := svc.DeletePermission(ctx, actor, id, key)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if res.Affected != holders {
			b.Fatalf("affected = %d; want %d", res.Affected, holders)
		}
		if err := svc.UndoDeletion(ctx, actor, res.FanoutID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
