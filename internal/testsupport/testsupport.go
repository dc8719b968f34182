// Package testsupport is what permsync's tests share: a database for each
// test (a fresh Postgres schema when PERMSYNC_TEST_DATABASE_URL is set), one
// Eventually, and a logger that writes to the test's output. Only tests
// import it (app/layers_test.go checks), and it imports nothing of ours, so
// any package's own tests may use it.
package testsupport

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// DatabaseEnv names the Postgres database tests run against; unset means
// SQLite. `make test` sets it for its Postgres pass.
const DatabaseEnv = "PERMSYNC_TEST_DATABASE_URL"

// Postgres reports whether tests run against Postgres.
func Postgres() bool { return os.Getenv(DatabaseEnv) != "" }

// DatabaseURL returns the database URL for one test: "" (SQLite, in the
// test's data folder) unless DatabaseEnv names a Postgres database; then a
// new schema of it, dropped when the test ends, so every test starts empty
// (River's tables included) and tests may run in parallel.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(DatabaseEnv)
	if base == "" {
		return ""
	}
	schema := "test_" + RandomHex(6)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("testsupport: postgres: %v", err)
	}
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		db.Close()
		t.Fatalf("testsupport: create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testsupport: %s: %v", DatabaseEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// RandomHex returns n random bytes, hex-encoded.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// DefaultWait is how long Eventually waits: generous, since tests never
// assert on timing and the machine may be busy.
const DefaultWait = 60 * time.Second

// Eventually polls cond until it holds, failing the test once timeout (0:
// DefaultWait) has passed.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if timeout <= 0 {
		timeout = DefaultWait
	}
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logger returns a logger of warnings and errors for the test's output
// (shown on failure or with -v); PERMSYNC_TEST_LOG (debug, info, warn,
// error) sets another level.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if s := os.Getenv("PERMSYNC_TEST_LOG"); s != "" {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			t.Fatalf("testsupport: PERMSYNC_TEST_LOG: %v", err)
		}
	}
	return LoggerAt(t, level)
}

// LoggerAt returns a logger that writes lines at level and above to the
// test's output until the test ends, and drops them afterwards, when
// background goroutines may still be winding down.
func LoggerAt(t testing.TB, level slog.Level) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// testWriter forwards log lines to t.Output until the test ends.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	func() {
		defer func() {
			if recover() != nil { // the test ended between the check and the write
				w.done = true
			}
		}()
		_, _ = w.t.Output().Write(p)
	}()
	return len(p), nil
}
