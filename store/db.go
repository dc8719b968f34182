// Package store is permsync's database layer: SQLite by default (modernc.org/sqlite,
// no cgo), Postgres when DATABASE_URL says so. It opens the database, applies the
// embedded migrations (ours and River's), and holds the typed SQL that the
// services above it use. It imports no HTTP or view code.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Dialect names the SQL database behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned when a row that was asked for does not exist.
var ErrNotFound = errors.New("store: not found")

// Options say which database to open.
type Options struct {
	// URL is DATABASE_URL: "" (a SQLite file in DataDir), "sqlite:path",
	// "file:path?…", or "postgres://…".
	URL string
	// DataDir holds the default SQLite file.
	DataDir string
	Logger  *slog.Logger
}

// DB is an open, migrated database.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	log     *slog.Logger

	// stmts caches prepared statements for the queries of the per-request
	// path, keyed by their '?' text (see prepared). nil once closed.
	stmtMu sync.RWMutex
	stmts  map[string]*sql.Stmt

	// sessions caches GetSession's rows on SQLite; nil on Postgres.
	sessions *sessionCache
}

// Open connects, applies migrations and returns the database.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{log: opts.Logger, stmts: map[string]*sql.Stmt{}}
	var err error
	switch {
	case strings.HasPrefix(opts.URL, "postgres://"), strings.HasPrefix(opts.URL, "postgresql://"):
		db.dialect = Postgres
		db.sql, err = sql.Open("pgx", opts.URL)
		if err == nil {
			db.sql.SetMaxOpenConns(20)
			db.sql.SetConnMaxIdleTime(5 * time.Minute)
		}
	default:
		db.dialect = SQLite
		countSQLiteCommits()
		db.sessions = &sessionCache{m: map[string]cachedSession{}}
		var dsn string
		dsn, err = sqliteDSN(opts.URL, opts.DataDir)
		if err == nil {
			db.sql, err = sql.Open("sqlite", dsn)
		}
		if err == nil {
			// One connection: SQLite has one writer, and River on SQLite
			// wants a single connection to avoid SQLITE_BUSY storms.
			db.sql.SetMaxOpenConns(1)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := db.Ping(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := db.migrate(ctx); err != nil {
		db.sql.Close()
		return nil, err
	}
	return db, nil
}

// sqliteDSN builds a modernc.org/sqlite DSN with WAL, a busy timeout,
// foreign keys and immediate write transactions.
func sqliteDSN(raw, dataDir string) (string, error) {
	path := ""
	query := url.Values{}
	switch {
	case raw == "":
		if dataDir == "" {
			dataDir = "."
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return "", err
		}
		path = filepath.Join(dataDir, "permsync.db")
	case strings.HasPrefix(raw, "sqlite:"):
		path = strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
	case strings.HasPrefix(raw, "file:"):
		rest := strings.TrimPrefix(raw, "file:")
		if i := strings.IndexByte(rest, '?'); i >= 0 {
			q, err := url.ParseQuery(rest[i+1:])
			if err != nil {
				return "", err
			}
			query = q
			rest = rest[:i]
		}
		path = rest
	default:
		return "", fmt.Errorf("unsupported DATABASE_URL")
	}
	if path != ":memory:" && !strings.HasPrefix(path, "/") {
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", err
			}
		}
	}
	if path != ":memory:" && query.Get("mode") != "memory" {
		if err := privateFile(path); err != nil {
			return "", err
		}
	}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(ON)", "synchronous(NORMAL)"} {
		query.Add("_pragma", p)
	}
	query.Set("_txlock", "immediate")
	return "file:" + path + "?" + query.Encode(), nil
}

// privateFile creates the database file readable by its owner only (0600),
// or takes group and other access away from one that exists, before SQLite
// opens it. SQLite gives its -wal and -shm files the database file's mode.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("database file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("database file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(fi.Mode().Perm() &^ 0o077); err != nil {
			return fmt.Errorf("database file: make it private: %w", err)
		}
	}
	return nil
}

// SQL returns the underlying pool.
func (db *DB) SQL() *sql.DB { return db.sql }

// Dialect reports which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// Close closes the cached prepared statements and the pool.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	stmts := db.stmts
	db.stmts = nil
	db.stmtMu.Unlock()
	for _, st := range stmts {
		_ = st.Close()
	}
	return db.sql.Close()
}

// RiverDriver returns the River driver for this database. Both dialects go
// through database/sql, so the River client type is *river.Client[*sql.Tx]
// everywhere.
func (db *DB) RiverDriver() riverdriver.Driver[*sql.Tx] {
	if db.dialect == Postgres {
		return riverdatabasesql.New(db.sql)
	}
	return riversqlite.New(db.sql)
}

// Rebind turns the '?' placeholders we write into the dialect's own.
func (db *DB) Rebind(q string) string {
	if db.dialect != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Exec runs a statement with '?' placeholders.
func (db *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, db.Rebind(q), args...)
}

// Query runs a query with '?' placeholders.
func (db *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, db.Rebind(q), args...)
}

// QueryRow runs a one-row query with '?' placeholders.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, db.Rebind(q), args...)
}

// prepared returns a prepared statement for q ('?' placeholders), preparing
// it the first time q is asked for and reusing it afterwards. It is for the
// few statements that run on every request (the session read and the like):
// database/sql does not cache prepared statements itself, and on SQLite
// parsing and planning the statement again each time is a large part of a
// small query's cost. A *sql.Stmt is safe for concurrent use and prepares
// itself again, transparently, on any other pool connection it runs on
// (Postgres has several), so one per query text is enough.
//
// q must be a constant, never text built from data: the cache keeps every
// distinct q until Close. Inside a transaction use the Tx's own methods (or
// tx.StmtContext), not these statements.
func (db *DB) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	db.stmtMu.RLock()
	st, ok := db.stmts[q]
	db.stmtMu.RUnlock()
	if ok {
		return st, nil
	}
	// Prepare without holding the lock; if another caller raced us to
	// the same query, keep theirs.
	st, err := db.sql.PrepareContext(ctx, db.Rebind(q))
	if err != nil {
		return nil, err
	}
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if db.stmts == nil {
		_ = st.Close()
		return nil, errors.New("store: database is closed")
	}
	if prev, ok := db.stmts[q]; ok {
		_ = st.Close()
		return prev, nil
	}
	db.stmts[q] = st
	return st, nil
}

// errRow is a scanner whose Scan returns err: a QueryRow that failed before
// it ran.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queryRowPrepared is QueryRow through the prepared statement for q (see
// prepared). Scan returns sql.ErrNoRows as *sql.Row does.
func (db *DB) queryRowPrepared(ctx context.Context, q string, args ...any) scanner {
	st, err := db.prepared(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// execPrepared is Exec through the prepared statement for q (see prepared).
func (db *DB) execPrepared(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := db.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// querier is what both *DB and *Tx offer: statements with '?' placeholders,
// rebound for the dialect. A statement that runs both on its own and inside
// a transaction is written once, against a querier.
type querier interface {
	Exec(ctx context.Context, q string, args ...any) (sql.Result, error)
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
}

var (
	_ querier = (*DB)(nil)
	_ querier = (*Tx)(nil)
)

// scanStrings reads one string column and closes rows.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// sqlMarks returns "?, ?, …" with n marks, for an IN list.
func sqlMarks(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// Tx is a transaction that rebinds placeholders like DB does.
type Tx struct {
	*sql.Tx
	db *DB
}

// Exec runs a statement inside the transaction.
func (tx *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, tx.db.Rebind(q), args...)
}

// Query runs a query inside the transaction.
func (tx *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.db.Rebind(q), args...)
}

// QueryRow runs a one-row query inside the transaction.
func (tx *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, tx.db.Rebind(q), args...)
}

// InTx runs fn in a transaction, committing when it returns nil. On SQLite the
// transaction takes the write lock at BEGIN (immediate), so it serialises with
// every other writer.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{Tx: sqlTx, db: db}
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// migrateRiver applies River's own migrations.
func (db *DB) migrateRiver(ctx context.Context) error {
	m, err := rivermigrate.New(db.RiverDriver(), nil)
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}

// Millis converts a time to the unix milliseconds we store; the zero time is 0.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromMillis converts stored unix milliseconds back; 0 is the zero time.
func FromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
