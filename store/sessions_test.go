package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"
)

// uniq makes ids unique per run: the Postgres test database is shared and
// kept between runs.
func uniq(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func newSession(id, user string, perms ...string) *Session {
	now := time.Now()
	return &Session{
		ID: id, UserID: user, Tokens: []byte("sealed"), Permissions: perms,
		Roles:          []Role{{ID: "r1", Key: "analyst", Name: "Analyst"}},
		AccessIssuedAt: now, AccessExpiresAt: now.Add(time.Hour), CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(24 * time.Hour),
	}
}

func TestSessionLifecycle(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	h1, h2, user := uniq("h1-"), uniq("h2-"), uniq("kp_a")
	s := newSession(h1, user, "read:reports", "export:reports")
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSession(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 1 || !slices.Equal(got.Permissions, s.Permissions) || got.Roles[0].Key != "analyst" {
		t.Fatalf("got %+v", got)
	}

	// Compare and swap: the first update wins, a stale one is refused.
	stale := *got
	got.Permissions = []string{"read:reports"}
	if err := db.UpdateSessionTokens(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got.Generation != 2 {
		t.Fatalf("generation = %d; want 2", got.Generation)
	}
	if err := db.UpdateSessionTokens(ctx, &stale); !errors.Is(err, ErrSessionChanged) {
		t.Fatalf("stale update: %v; want ErrSessionChanged", err)
	}

	// The permission index follows updates.
	has := func(key string) bool {
		list, err := db.SessionsWithPermission(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(list, func(s Session) bool { return s.ID == h1 })
	}
	if has("export:reports") || !has("read:reports") {
		t.Fatal("the permission index did not follow the update")
	}
	if users, _ := db.UsersWithPermission(ctx, "read:reports"); !slices.Contains(users, user) {
		t.Fatalf("users with read = %v", users)
	}

	if err := db.SaveSessionValues(ctx, h1, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.TouchSession(ctx, h1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSession(ctx, newSession(h2, user)); err != nil {
		t.Fatal(err)
	}
	if list, _ := db.UserSessions(ctx, user); len(list) != 2 {
		t.Fatalf("user sessions = %d", len(list))
	}
	if n, err := db.DeleteUserSessions(ctx, user); err != nil || n != 2 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	if _, err := db.GetSession(ctx, h1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}

func TestExpiredSessionsAreInvisibleAndSwept(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	old := uniq("old-")
	s := newSession(old, uniq("kp_b"), "read:reports")
	s.ExpiresAt = time.Now().Add(-time.Minute)
	if err := db.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetSession(ctx, old); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired session visible: %v", err)
	}
	if n, err := db.DeleteExpiredSessions(ctx, time.Now()); err != nil || n < 1 {
		t.Fatalf("swept %d, %v", n, err)
	}
}

func TestEpochsAndTombstones(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	user := uniq("kp_c")
	if e, err := db.UserEpoch(ctx, user); err != nil || e != 0 {
		t.Fatalf("epoch = %d, %v", e, err)
	}
	for want := int64(1); want <= 2; want++ {
		if e, err := db.BumpUserEpoch(ctx, user, "test"); err != nil || e != want {
			t.Fatalf("bump = %d, %v; want %d", e, err, want)
		}
	}
	now := time.Now()
	live, dead := uniq("live:"), uniq("dead:")
	_ = db.PutTombstone(ctx, Tombstone{PermissionKey: live, ExpiresAt: now.Add(time.Hour)})
	_ = db.PutTombstone(ctx, Tombstone{PermissionKey: dead, ExpiresAt: now.Add(-time.Hour)})
	keys, err := db.LiveTombstoneKeys(ctx, now)
	if err != nil || !slices.Contains(keys, live) || slices.Contains(keys, dead) {
		t.Fatalf("live tombstones = %v, %v", keys, err)
	}
}

// TestSessionReadCarriesPermissionState: on Postgres a session is read with
// its user's current epoch and the tombstone version, which every tombstone
// write or lift bumps, so a replica can tell its cached state is older than
// the database. (The version is kept on SQLite too; sessions there are read
// without it.)
func TestSessionReadCarriesPermissionState(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	if db.Dialect() != Postgres {
		v0, err := db.TombstoneVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PutTombstone(ctx, Tombstone{PermissionKey: uniq("state:"), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if v, err := db.TombstoneVersion(ctx); err != nil || v != v0+1 {
			t.Fatalf("TombstoneVersion after a write = %d, %v; want %d", v, err, v0+1)
		}
		return // sessions are read without it: SQLite serves one instance
	}
	user, id := uniq("kp_state"), uniq("h_state")
	if err := db.CreateSession(ctx, newSession(id, user)); err != nil {
		t.Fatal(err)
	}
	read := func() *Session {
		t.Helper()
		s, err := db.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var locked *Session
		if err := db.InTx(ctx, func(tx *Tx) error {
			locked, err = tx.SessionForUpdate(ctx, id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if locked.UserEpoch != s.UserEpoch || locked.TombstoneVersion != s.TombstoneVersion {
			t.Fatalf("SessionForUpdate read %d/%d, GetSession %d/%d", locked.UserEpoch, locked.TombstoneVersion,
				s.UserEpoch, s.TombstoneVersion)
		}
		return s
	}
	s := read()
	if s.UserEpoch != 0 {
		t.Fatalf("epoch of a user never bumped = %d", s.UserEpoch)
	}
	v0 := s.TombstoneVersion
	if v, err := db.TombstoneVersion(ctx); err != nil || v != v0 {
		t.Fatalf("TombstoneVersion = %d, %v; the session read %d", v, err, v0)
	}
	if _, err := db.BumpUserEpoch(ctx, user, "test"); err != nil {
		t.Fatal(err)
	}
	key := uniq("state:")
	if err := db.PutTombstone(ctx, Tombstone{PermissionKey: key, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *Tx) error {
		return tx.PutTombstone(ctx, Tombstone{PermissionKey: key, ExpiresAt: time.Now().Add(2 * time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
	// At least: the Postgres database may be shared with other writers.
	s = read()
	if s.UserEpoch != 1 || s.TombstoneVersion < v0+2 {
		t.Fatalf("after a bump and two tombstone writes: epoch %d, version %d; want 1, ≥ %d", s.UserEpoch, s.TombstoneVersion, v0+2)
	}
	v1 := s.TombstoneVersion
	if ok, err := db.LiftTombstone(ctx, key, ""); err != nil || !ok {
		t.Fatalf("lift = %v, %v", ok, err)
	}
	if s := read(); s.TombstoneVersion <= v1 {
		t.Fatalf("after a lift: version %d; want > %d", s.TombstoneVersion, v1)
	}
}
