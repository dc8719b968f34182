package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
)

//go:embed migrations
var migrationFS embed.FS

// migration is one embedded SQL file, named NNNN_name.sql.
type migration struct {
	version string
	sql     string
}

func (db *DB) migrations() ([]migration, error) {
	dir := path.Join("migrations", string(db.dialect))
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: strings.TrimSuffix(e.Name(), ".sql"), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies River's migrations, then ours, each of ours once and in
// order, recording them in schema_migrations. On Postgres an advisory lock
// keeps replicas that start together from racing.
func (db *DB) migrate(ctx context.Context) error {
	if err := db.migrateRiver(ctx); err != nil {
		return err
	}
	ms, err := db.migrations()
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	return db.InTx(ctx, func(tx *Tx) error {
		if db.dialect == Postgres {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7226521)`); err != nil {
				return fmt.Errorf("migration lock: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version TEXT PRIMARY KEY,
			applied_at BIGINT NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied := map[string]bool{}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return err
			}
			applied[v] = true
		}
		rows.Close()
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.version, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				m.version, time.Now().UnixMilli()); err != nil {
				return err
			}
			db.log.Info("applied migration", "version", m.version, "dialect", string(db.dialect))
		}
		return nil
	})
}
