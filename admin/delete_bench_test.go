package admin_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"permsync/admin"
	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// holderList is a HolderSource that knows a fixed list of holders: it
// stands in for the directory, whose own query is measured with it.
type holderList []string

func (h holderList) HolderIDs(context.Context, string) ([]string, error) { return h, nil }

// BenchmarkDeleteClick measures what the delete click does before it
// answers, with the holders known locally: the fan-out record with one item
// per holder, the denial, the scheduled Kinde delete job and the audit entry,
// in one transaction, then the events. No Kinde call. Each iteration deletes
// a fresh permission held by 5,000 users (the target tenant's holders of
// export:reports); the Undo that follows is not timed. SQLite in a temporary
// folder, or Postgres with PERMSYNC_TEST_DATABASE_URL.
func BenchmarkDeleteClick(b *testing.B) {
	for _, holders := range []int{4, 5000} {
		b.Run(fmt.Sprintf("holders=%d", holders), func(b *testing.B) { benchDeleteClick(b, holders) })
	}
}

func benchDeleteClick(b *testing.B, holders int) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: b.TempDir(), URL: os.Getenv("PERMSYNC_TEST_DATABASE_URL")})
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
	ids := make(holderList, holders)
	for i := range ids {
		ids[i] = fmt.Sprintf("kp_%032x", i)
	}
	svc, err := admin.NewService(db, kc, db, broker, engine, admin.Options{Holders: ids, UndoWindow: time.Minute})
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
