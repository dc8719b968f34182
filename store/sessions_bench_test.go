package store

import (
	"context"
	"testing"
)

// BenchmarkGetSession measures the session read that every signed-in request
// makes (on SQLite unless PERMSYNC_TEST_DATABASE_URL names a Postgres database).
func BenchmarkGetSession(b *testing.B) {
	db := openTest(b)
	ctx := context.Background()
	id := uniq("bench-")
	if err := db.CreateSession(ctx, newSession(id, uniq("kp_b"), "read:reports", "export:reports")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.GetSession(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
