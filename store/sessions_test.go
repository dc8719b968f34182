package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
		ExpiresAt: now.Add(24 * time.Hour), ClaimsAt: now.Add(-time.Second),
	}
}

func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
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
	if got.Generation != 1 || !slices.Equal(got.Permissions, s.Permissions) || got.Roles[0].Key != "analyst" ||
		got.ClaimsAt.UnixMilli() != s.ClaimsAt.UnixMilli() {
		t.Fatalf("got %+v", got)
	}

	// Compare and swap: the first update wins, a stale one is refused.
	stale := *got
	got.Permissions = []string{"read:reports"}
	got.ClaimsAt = got.ClaimsAt.Add(time.Minute)
	if err := db.UpdateSessionTokens(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, err := db.GetSession(ctx, h1); err != nil || !again.ClaimsAt.Equal(got.ClaimsAt) {
		t.Fatalf("claims time after an update = %v, %v; want %v", again.ClaimsAt, err, got.ClaimsAt)
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
	t.Parallel()
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
	// A live session last used two hours ago: kept with no idle timeout or a
	// longer one, swept by a shorter one. A session used just now stays.
	idle, busy := uniq("idle-"), uniq("busy-")
	for _, id := range []string{idle, busy} {
		s := newSession(id, uniq("kp_b"), "read:reports")
		if id == idle {
			s.LastSeenAt = time.Now().Add(-2 * time.Hour)
		}
		if err := db.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.DeleteExpiredSessions(ctx, time.Now(), time.Time{}); err != nil || n < 1 {
		t.Fatalf("swept %d, %v", n, err)
	}
	if _, err := db.GetSession(ctx, idle); err != nil {
		t.Fatalf("no idle timeout, yet the idle session went: %v", err)
	}
	if _, err := db.DeleteExpiredSessions(ctx, time.Now(), time.Now().Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetSession(ctx, idle); err != nil {
		t.Fatalf("a 3h idle timeout swept a session idle for 2h: %v", err)
	}
	if _, err := db.DeleteExpiredSessions(ctx, time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetSession(ctx, idle); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a 1h idle timeout kept a session idle for 2h: %v", err)
	}
	if _, err := db.GetSession(ctx, busy); err != nil {
		t.Fatalf("a session used just now was swept: %v", err)
	}
}

func TestEpochsAndDenials(t *testing.T) {
	t.Parallel()
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
	live, dead, pending, scoped := uniq("live:"), uniq("dead:"), uniq("pending:"), uniq("scoped:")
	for _, d := range []Denial{
		{PermissionKey: live, SettledAt: now, ExpiresAt: now.Add(time.Hour)},
		{PermissionKey: dead, SettledAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
		{PermissionKey: pending, FanoutID: uniq("f"), ExpiresAt: now.Add(-time.Hour)}, // unsettled: no expiry
		{PermissionKey: scoped, UserID: user, OrgCode: "org_a", SettledAt: now, ExpiresAt: now.Add(time.Hour)},
	} {
		if _, err := db.AddDenial(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := db.LiveDeniedKeys(ctx, now)
	if err != nil || !slices.Contains(keys, live) || !slices.Contains(keys, pending) || slices.Contains(keys, dead) ||
		slices.Contains(keys, scoped) {
		t.Fatalf("keys denied to everyone = %v, %v; want %s and %s", keys, err, live, pending)
	}
	all, err := db.LiveDenials(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]Denial{}
	for _, d := range all {
		found[d.PermissionKey] = d
	}
	if d, ok := found[scoped]; !ok || d.UserID != user || d.OrgCode != "org_a" || d.Everyone() {
		t.Fatalf("scoped denial = %+v (found %v)", d, ok)
	}
	if _, ok := found[dead]; ok {
		t.Fatal("an expired denial is live")
	}
	if n, err := db.ExpireDenials(ctx, now); err != nil || n < 1 {
		t.Fatalf("expire = %d, %v", n, err)
	}
	if keys, _ := db.LiveDeniedKeys(ctx, now); !slices.Contains(keys, pending) {
		t.Fatal("expiry removed an unsettled denial")
	}
}

// TestDenialsSettleAndWithdrawByFanout: a fan-out's unsettled denials are
// settled (then they expire) or withdrawn; a settled one is never withdrawn.
func TestDenialsSettleAndWithdrawByFanout(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	now := time.Now()
	f1, f2, key := uniq("f1-"), uniq("f2-"), uniq("k:")
	for _, f := range []string{f1, f2} {
		if _, err := db.AddDenial(ctx, Denial{PermissionKey: key, FanoutID: f}); err != nil {
			t.Fatal(err)
		}
	}
	settled := now.Add(-time.Minute)
	if err := db.InTx(ctx, func(tx *Tx) error {
		n, err := tx.SettleDenials(ctx, f1, settled, settled.Add(time.Hour))
		if err == nil && n != 1 {
			err = fmt.Errorf("settled %d; want 1", n)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *Tx) error {
		if n, err := tx.WithdrawDenials(ctx, f1); err != nil || n != 0 {
			return fmt.Errorf("withdrew a settled denial: %d, %v", n, err)
		}
		if n, err := tx.WithdrawDenials(ctx, f2); err != nil || n != 1 {
			return fmt.Errorf("withdrew %d, %v; want 1", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ds, err := db.FanoutDenials(ctx, f1)
	if err != nil || len(ds) != 1 || !ds[0].SettledAt.Equal(time.UnixMilli(settled.UnixMilli())) {
		t.Fatalf("f1 denials = %+v, %v", ds, err)
	}
	if ds, err := db.FanoutDenials(ctx, f2); err != nil || len(ds) != 0 {
		t.Fatalf("f2 denials after withdrawal = %+v, %v", ds, err)
	}
}

// TestSessionReadCarriesPermissionState: on Postgres a session is read with
// its user's current epoch and the denial version, which every denial write
// or withdrawal bumps, so a replica can tell its cached state is older than
// the database. (The version is kept on SQLite too; sessions there are read
// without it.)
func TestSessionReadCarriesPermissionState(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	if db.Dialect() != Postgres {
		v0, err := db.DenialVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.AddDenial(ctx, Denial{PermissionKey: uniq("state:")}); err != nil {
			t.Fatal(err)
		}
		if v, err := db.DenialVersion(ctx); err != nil || v != v0+1 {
			t.Fatalf("DenialVersion after a write = %d, %v; want %d", v, err, v0+1)
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
		if locked.UserEpoch != s.UserEpoch || locked.DenialVersion != s.DenialVersion {
			t.Fatalf("SessionForUpdate read %d/%d, GetSession %d/%d", locked.UserEpoch, locked.DenialVersion,
				s.UserEpoch, s.DenialVersion)
		}
		return s
	}
	s := read()
	if s.UserEpoch != 0 {
		t.Fatalf("epoch of a user never bumped = %d", s.UserEpoch)
	}
	v0 := s.DenialVersion
	if v, err := db.DenialVersion(ctx); err != nil || v != v0 {
		t.Fatalf("DenialVersion = %d, %v; the session read %d", v, err, v0)
	}
	if _, err := db.BumpUserEpoch(ctx, user, "test"); err != nil {
		t.Fatal(err)
	}
	key, f := uniq("state:"), uniq("f")
	if _, err := db.AddDenial(ctx, Denial{PermissionKey: key, FanoutID: f}); err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.SettleDenials(ctx, f, time.Now(), time.Now().Add(time.Hour))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// At least: the Postgres database may be shared with other writers.
	s = read()
	if s.UserEpoch != 1 || s.DenialVersion < v0+2 {
		t.Fatalf("after a bump, a denial and its settling: epoch %d, version %d; want 1, ≥ %d", s.UserEpoch, s.DenialVersion, v0+2)
	}
	v1 := s.DenialVersion
	if _, err := db.AddDenial(ctx, Denial{PermissionKey: key, FanoutID: uniq("g")}); err != nil {
		t.Fatal(err)
	}
	if s := read(); s.DenialVersion <= v1 {
		t.Fatalf("after another denial: version %d; want > %d", s.DenialVersion, v1)
	}
}

func TestRefreshSessionSavesOnceAndReportsChanges(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	id := uniq("rs-")
	if err := db.CreateSession(ctx, newSession(id, uniq("kp_r"), "read:reports")); err != nil {
		t.Fatal(err)
	}
	err := db.RefreshSession(ctx, id, func(row *Session, save func(context.Context, *Session) error) error {
		row.Permissions = []string{"read:reports", "export:reports"}
		return save(ctx, row)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.GetSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 2 || len(got.Permissions) != 2 {
		t.Fatalf("after refresh: generation %d, permissions %v", got.Generation, got.Permissions)
	}
	// A save of a row someone else moved on is refused, and fn's error comes back.
	err = db.RefreshSession(ctx, id, func(row *Session, save func(context.Context, *Session) error) error {
		row.Generation--
		return save(ctx, row)
	})
	if !errors.Is(err, ErrSessionChanged) {
		t.Fatalf("stale save: %v; want ErrSessionChanged", err)
	}
	if err := db.RefreshSession(ctx, uniq("missing-"), func(*Session, func(context.Context, *Session) error) error {
		t.Fatal("fn ran for a missing session")
		return nil
	}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing session: %v; want ErrNotFound", err)
	}
}
