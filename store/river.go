package store

import (
	"context"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
)

// CompleteJobTx completes a River job inside tx, so that the job and the
// caller's bookkeeping commit or roll back together. River's driver type
// parameter must match the client's driver (RiverDriver), which depends on
// the dialect: this is why it lives here.
func CompleteJobTx[T river.JobArgs](ctx context.Context, tx *Tx, job *river.Job[T]) error {
	var err error
	if tx.db.dialect == Postgres {
		_, err = river.JobCompleteTx[*riverdatabasesql.Driver](ctx, tx.Tx, job)
	} else {
		_, err = river.JobCompleteTx[*riversqlite.Driver](ctx, tx.Tx, job)
	}
	if err != nil {
		return fmt.Errorf("complete job: %w", err)
	}
	return nil
}

// Shared reports whether other processes may use this database at the same
// time (Postgres: several replicas). Then in-process events must also reach
// the other replicas (events.PGBridge); SQLite means a single instance.
func (db *DB) Shared() bool { return db.dialect == Postgres }
