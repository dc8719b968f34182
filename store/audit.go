package store

import (
	"context"
	"fmt"
	"time"
)

// Audit outcomes.
const (
	AuditOK      = "ok"      // the action did everything it set out to do
	AuditFailed  = "failed"  // the action did nothing
	AuditPartial = "partial" // the action did some of it; Detail says what
	AuditDenied  = "denied"  // the actor was not allowed
)

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID      int64
	At      time.Time
	ActorID string // the actor's Kinde user id
	Actor   string // how to show the actor, usually their email
	Action  string // e.g. "permission.delete"
	Target  string // e.g. "perm_123 (export:reports)"
	Outcome string // AuditOK, AuditFailed, AuditPartial or AuditDenied
	Detail  string // a readable sentence; never a token or a secret
}

const auditInsert = `INSERT INTO audit_log (at, actor_id, actor, action, target, outcome, detail)
	VALUES (?, ?, ?, ?, ?, ?, ?)`

func auditArgs(e AuditEntry) []any {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	return []any{Millis(e.At), e.ActorID, e.Actor, e.Action, e.Target, e.Outcome, e.Detail}
}

// AddAudit appends an entry to the audit log.
func (db *DB) AddAudit(ctx context.Context, e AuditEntry) error { return addAudit(ctx, db, e) }

// AddAudit appends an entry to the audit log inside the transaction.
func (tx *Tx) AddAudit(ctx context.Context, e AuditEntry) error { return addAudit(ctx, tx, e) }

func addAudit(ctx context.Context, q querier, e AuditEntry) error {
	if _, err := q.Exec(ctx, auditInsert, auditArgs(e)...); err != nil {
		return fmt.Errorf("add audit: %w", err)
	}
	return nil
}

// AuditEntries returns the most recent audit entries, newest first.
func (db *DB) AuditEntries(ctx context.Context, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.Query(ctx, `SELECT id, at, actor_id, actor, action, target, outcome, detail
		FROM audit_log ORDER BY at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.ActorID, &e.Actor, &e.Action, &e.Target, &e.Outcome, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit entries: %w", err)
		}
		e.At = FromMillis(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit entries: %w", err)
	}
	return out, nil
}
