package directory_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"permsync/devkinde"
	"permsync/directory"
	"permsync/store"
)

// Tenants measured in docs/BENCHMARKS.md: the demo seed and the target
// tenant of 1,000 organizations and 5,000 users.
var benchTenants = []struct {
	name string
	seed func() *devkinde.Seed
}{
	{"demo", devkinde.DefaultSeed},
	{"orgs=1000,users=5000", func() *devkinde.Seed {
		return devkinde.GenerateSeed(devkinde.GenerateOptions{Seed: 1, Organizations: 1000, Users: 5000})
	}},
}

// BenchmarkFullSync runs the directory's full sync against devkinde over
// HTTP with no rate limit and reports what it costs: Management API calls
// (counted at devkinde), and the minutes those calls take at 5 and at 50
// calls per second, the budget being the bound (devkinde answers in well
// under the 200 ms and 20 ms a call those rates allow).
func BenchmarkFullSync(b *testing.B) {
	for _, tc := range benchTenants {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			sd := tc.seed()
			dk := startDevkinde(b, sd)
			var calls int
			for b.Loop() {
				b.StopTimer()
				db := openDB(b)
				dk.ResetRequests()
				b.StartTimer()
				if err := directory.NewSyncer(db, client(dk, nil), nil, directory.SyncOptions{}).RunOnce(ctx); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				calls = 0
				for _, r := range dk.Requests() {
					if len(r.Path) > 8 && r.Path[:8] == "/api/v1/" {
						calls++
					}
				}
				st, err := directory.New(db, nil).Status(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if st.LastCalls != int64(calls) {
					b.Fatalf("the sync counted %d calls, devkinde served %d", st.LastCalls, calls)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(calls), "calls")
			b.ReportMetric(float64(calls)/5/60, "min@5/s")
			b.ReportMetric(float64(calls)/50/60, "min@50/s")
		})
	}
}

// syncedLarge is the 1,000 × 5,000 tenant synced once into a database
// (SQLite, or a fresh Postgres schema with PERMSYNC_TEST_DATABASE_URL),
// shared by the query benchmarks.
var (
	syncedOnce sync.Once
	syncedDB   *store.DB
	syncedErr  error
)

func syncedLargeTenant(b *testing.B) *store.DB {
	syncedOnce.Do(func() {
		dk, err := devkinde.New(devkinde.Config{Seed: benchTenants[1].seed()})
		if err == nil {
			err = dk.Start()
		}
		if err != nil {
			syncedErr = err
			return
		}
		defer dk.Close()
		syncedDB = openDB(b)
		syncedErr = directory.NewSyncer(syncedDB, client(dk, nil), nil, directory.SyncOptions{}).RunOnce(context.Background())
	})
	if syncedErr != nil {
		b.Fatal(syncedErr)
	}
	return syncedDB
}

// BenchmarkDirectoryQueries times the directory's answers at 1,000
// organizations and 5,000 users, and reports p95 besides the mean.
func BenchmarkDirectoryQueries(b *testing.B) {
	db := syncedLargeTenant(b)
	dir := directory.New(db, nil)
	ctx := context.Background()
	exp, err := dir.PermissionByKey(ctx, "export:reports")
	if err != nil {
		b.Fatal(err)
	}
	page, err := dir.Users(ctx, "", 0, 1)
	if err != nil || len(page.Users) == 0 {
		b.Fatal("no users", err)
	}
	user := page.Users[0].ID
	cases := []struct {
		name string
		fn   func() error
	}{
		{"HolderIDs/export:reports", func() error { _, err := dir.HolderIDs(ctx, "export:reports"); return err }},
		{"HolderUsers-first-page/export:reports", func() error {
			_, err := dir.HolderUsers(ctx, exp.ID, directory.HolderQuery{Limit: 50})
			return err
		}},
		{"HolderUsers-last-page/export:reports", func() error {
			_, err := dir.HolderUsers(ctx, exp.ID, directory.HolderQuery{Offset: 4950, Limit: 50})
			return err
		}},
		{"HolderUsers-search/export:reports", func() error {
			_, err := dir.HolderUsers(ctx, exp.ID, directory.HolderQuery{Search: "user4242", Limit: 50})
			return err
		}},
		{"AllHolders/export:reports", func() error { _, err := dir.AllHolders(ctx, "export:reports"); return err }},
		{"UserGrants", func() error { _, err := dir.UserGrants(ctx, user, ""); return err }},
		{"Users-first-page", func() error { _, err := dir.Users(ctx, "", 0, 50); return err }},
		{"Permissions", func() error { _, err := dir.Permissions(ctx); return err }},
		{"Roles", func() error { _, err := dir.Roles(ctx); return err }},
		{"Status", func() error { _, err := dir.Status(ctx); return err }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if err := c.fn(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}
