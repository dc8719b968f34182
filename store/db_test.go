package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"permsync/internal/testsupport"
)

// openTest opens a fresh SQLite database in a temp folder, or a fresh
// schema of the Postgres database named by PERMSYNC_TEST_DATABASE_URL, so
// store tests are isolated from each other and from earlier runs.
func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{DataDir: t.TempDir(), URL: testsupport.DatabaseURL(t)})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db2.Close()
	var n2 int
	if err := db2.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n2); err != nil {
		t.Fatal(err)
	}
	if n != n2 {
		t.Fatalf("migrations re-applied: %d then %d", n, n2)
	}
	var mode string
	if err := db2.QueryRow(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestRebind(t *testing.T) {
	t.Parallel()
	db := &DB{dialect: Postgres}
	if got := db.Rebind(`SELECT a FROM t WHERE b = ? AND c = ?`); got != `SELECT a FROM t WHERE b = $1 AND c = $2` {
		t.Fatalf("got %q", got)
	}
	db.dialect = SQLite
	if got := db.Rebind(`x = ?`); got != `x = ?` {
		t.Fatalf("sqlite rebind changed query: %q", got)
	}
}

func TestPreparedStatementsAreReusedAndClosed(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	const q = `SELECT tombstone_version FROM perm_state WHERE id = ?`
	st1, err := db.prepared(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := db.prepared(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if st1 != st2 {
		t.Fatal("the same query was prepared twice")
	}

	// Concurrent use of one statement (and its first preparation) is safe.
	const other = `SELECT epoch FROM user_epochs WHERE user_id = ?`
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var v int64
			if err := db.queryRowPrepared(ctx, q, 1).Scan(&v); err != nil {
				errs <- err
				return
			}
			err := db.queryRowPrepared(ctx, other, uniq("nobody-")).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				err = nil
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.prepared(ctx, q); err == nil {
		t.Fatal("prepared after Close succeeded")
	}
	if _, err := db.DenialVersion(ctx); err == nil {
		t.Fatal("DenialVersion after Close succeeded")
	}
}

// TestDatabaseFileIsPrivate: the SQLite file and its WAL are created 0600,
// and an existing file readable by others is made private.
func TestDatabaseFileIsPrivate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `CREATE TABLE perm_probe (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"permsync.db", "permsync.db-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v; want 0600", name, fi.Mode().Perm())
		}
	}
	db.Close()

	path := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(ctx, Options{URL: "sqlite:" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("existing 0644 file: mode %v; want 0600", fi.Mode().Perm())
	}
}

// TestWebhookRejectionsAreBounded: the table keeps at most
// MaxWebhookRejections rows and none older than its retention, and the
// stats count every refusal the rows stand for.
func TestWebhookRejectionsAreBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openTest(t)
	now := time.Now()
	if err := db.AddWebhookRejection(ctx, WebhookRejection{ReceivedAt: now.Add(-WebhookRejectionRetention - time.Hour),
		HTTPStatus: 401, Reason: "old"}); err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := range MaxWebhookRejections + 50 {
		n := 1 + i%3
		total += n
		if err := db.AddWebhookRejection(ctx, WebhookRejection{ReceivedAt: now, HTTPStatus: 401, Reason: "bad signature",
			Refusals: n}); err != nil {
			t.Fatal(err)
		}
	}
	var rows, oldRows int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_rejections`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM webhook_rejections WHERE reason = 'old'`).Scan(&oldRows); err != nil {
		t.Fatal(err)
	}
	if rows != MaxWebhookRejections || oldRows != 0 {
		t.Fatalf("%d rows (%d past retention); want %d and none", rows, oldRows, MaxWebhookRejections)
	}
	st, err := db.WebhookStats(ctx, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	list, _ := db.WebhookRejections(ctx, 1)
	if st.Rejected <= rows || len(list) != 1 || list[0].Refusals < 1 {
		t.Fatalf("stats count %d refusals over %d rows; want the sum of the rows' refusals", st.Rejected, rows)
	}
}
