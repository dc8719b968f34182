package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"permsync/internal/testsupport"
)

// The SQLite session cache must never answer with a row the database no
// longer holds: every kind of write, including ones that bypass the store's
// own methods (River, raw SQL through SQL()), is seen by the very next read.
// On Postgres the same assertions hold because every read goes to the row.
func TestSessionReadsSeeEveryWriteAtOnce(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	id, user := uniq("cache-"), uniq("kp_c")
	if err := db.CreateSession(ctx, newSession(id, user, "read:reports", "export:reports")); err != nil {
		t.Fatal(err)
	}
	read := func(what string) *Session {
		t.Helper()
		s, err := db.GetSession(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	first := read("first read")
	again := read("second read")
	if again == first || !slices.Equal(again.Permissions, first.Permissions) {
		t.Fatalf("second read: %+v (same pointer: %v)", again, again == first)
	}
	// A caller changing its copy changes nothing for the next one.
	again.Permissions[0] = "changed:by-caller"
	again.Tokens[0] = 'X'
	if s := read("after a caller's change"); s.Permissions[0] != "read:reports" || s.Tokens[0] != 's' {
		t.Fatalf("a caller's change leaked into the next read: %+v", s)
	}

	// A token refresh through the store.
	upd := read("before update")
	upd.Permissions = []string{"read:reports"}
	if err := db.UpdateSessionTokens(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if s := read("after update"); !slices.Equal(s.Permissions, []string{"read:reports"}) || s.Generation != 2 {
		t.Fatalf("after update: permissions %v, generation %d", s.Permissions, s.Generation)
	}

	// A write that does not go through the store's methods.
	if _, err := db.SQL().ExecContext(ctx, db.Rebind(`UPDATE sessions SET email = ? WHERE id = ?`),
		"raw@acme.test", id); err != nil {
		t.Fatal(err)
	}
	if s := read("after a raw write"); s.Email != "raw@acme.test" {
		t.Fatalf("after a raw write: email %q", s.Email)
	}

	// Same inside a transaction, visible once it commits.
	if err := db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `UPDATE sessions SET name = ? WHERE id = ?`, "In Tx", id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if s := read("after a transaction"); s.Name != "In Tx" {
		t.Fatalf("after a transaction: name %q", s.Name)
	}

	// Expiry needs no write at all: a row read (and cached) before it
	// expires is refused once it has, with nothing written in between. The
	// read before expiry must finish before the expiry to show anything; on
	// a machine too busy for that, the lifetime doubles and the step runs
	// again.
	var exp time.Time
	for life := 300 * time.Millisecond; ; life *= 2 {
		exp = time.UnixMilli(Millis(time.Now().Add(life)))
		if _, err := db.SQL().ExecContext(ctx, db.Rebind(`UPDATE sessions SET expires_at = ? WHERE id = ?`),
			Millis(exp), id); err != nil {
			t.Fatal(err)
		}
		_, err := db.GetSession(ctx, id)
		if time.Now().Before(exp) {
			if err != nil {
				t.Fatalf("before expiry: %v", err)
			}
			break
		}
	}
	testsupport.Eventually(t, 0, "the session's expiry to pass", func() bool { return time.Now().After(exp) })
	if _, err := db.GetSession(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired session still served: %v", err)
	}

	// Revocation: the row is gone, so is the session.
	id2 := uniq("cache-")
	if err := db.CreateSession(ctx, newSession(id2, user, "read:reports")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetSession(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSession(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetSession(ctx, id2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked session still served: %v", err)
	}
}
