package store

import (
	"context"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"

	"permsync/internal/testsupport"
)

// TestMigrationTreesAgree: the SQLite and Postgres migration trees have the
// same files and, once applied, the same tables with the same columns
// (River's own tables aside). The column check needs Postgres, so it runs in
// the Postgres pass of `make test`.
func TestMigrationTreesAgree(t *testing.T) {
	t.Parallel()
	names := func(dialect Dialect) []string {
		entries, err := fs.ReadDir(migrationFS, path.Join("migrations", string(dialect)))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	lite, pg := names(SQLite), names(Postgres)
	if !slices.Equal(lite, pg) {
		t.Fatalf("migration files differ:\n  sqlite:   %v\n  postgres: %v", lite, pg)
	}
	if len(lite) == 0 {
		t.Fatal("no migrations found")
	}

	ctx := context.Background()
	liteDB, err := Open(ctx, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer liteDB.Close()
	liteCols := columns(t, liteDB, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`)
	if len(liteCols) == 0 {
		t.Fatal("no tables after migrating SQLite")
	}
	if !testsupport.Postgres() {
		t.Logf("tables and columns compared in the Postgres pass (set %s)", testsupport.DatabaseEnv)
		return
	}
	pgDB, err := Open(ctx, Options{DataDir: t.TempDir(), URL: testsupport.DatabaseURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pgDB.Close()
	pgCols := columns(t, pgDB, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema()`)
	for table, cols := range liteCols {
		if other, ok := pgCols[table]; !ok {
			t.Errorf("table %s exists on SQLite only", table)
		} else if !slices.Equal(cols, other) {
			t.Errorf("table %s columns differ:\n  sqlite:   %v\n  postgres: %v", table, cols, other)
		}
	}
	for table := range pgCols {
		if _, ok := liteCols[table]; !ok {
			t.Errorf("table %s exists on Postgres only", table)
		}
	}
}

// columns runs q (rows of table, column) and returns each table's sorted
// columns, River's tables left out.
func columns(t *testing.T, db *DB, q string) map[string][]string {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(table, "river_") {
			continue
		}
		out[table] = append(out[table], col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, cols := range out {
		slices.Sort(cols)
	}
	return out
}
