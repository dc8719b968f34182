package auth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"permsync/events"
	"permsync/store"
)

// BenchmarkGuardState measures what the request guard adds to a signed-in
// request besides loading the session: reading the live denials, reading
// the user's claims epoch and computing the effective permissions. "db"
// reads the tables every time (DBPermissionState, on SQLite); "cached" is
// PermCache with nothing changed. Seeded with 1,000 users' epochs, 3
// denials for everyone and 3 for single users; the session carries 4
// permissions.
func BenchmarkGuardState(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	for i := range 1000 {
		if _, err := db.BumpUserEpoch(ctx, fmt.Sprintf("kp_%032d", i), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	for i, k := range []string{"export:reports", "old:one", "old:two"} {
		for _, user := range []string{"", fmt.Sprintf("kp_%032d", i)} {
			if _, err := db.AddDenial(ctx, store.Denial{PermissionKey: k, UserID: user, SettledAt: now,
				ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	cache, err := NewPermCache(ctx, db, events.NewBroker(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	user := fmt.Sprintf("kp_%032d", 500)
	for _, tc := range []struct {
		name  string
		state PermissionState
	}{{"db", DBPermissionState{DB: db}}, {"cached", cache}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s := &Session{Session: store.Session{UserID: user, OrgCode: "org_acme", ClaimsEpoch: 1,
					ClaimsAt:    now.Add(-time.Minute),
					Permissions: []string{"read:reports", "export:reports", "delete:reports", "admin:permissions"}}}
				d, err := tc.state.Denials(ctx)
				if err != nil {
					b.Fatal(err)
				}
				s.applyDenials(d)
				epoch, err := tc.state.UserEpoch(ctx, s.UserID)
				if err != nil || epoch != 1 || s.Can("export:reports") {
					b.Fatalf("epoch %d, err %v, can export %v", epoch, err, s.Can("export:reports"))
				}
			}
		})
	}
}
