package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// States of a confirmed RBAC edit.
const (
	RBACEditPending  = "pending"  // the undo window: nothing sent to Kinde yet
	RBACEditApplying = "applying" // the Kinde call is being made, or retried (Error says why Kinde refused)
	RBACEditApplied  = "applied"  // Kinde made the change
	RBACEditFailed   = "failed"   // Kinde refused for good; the local denials stand
	RBACEditUndone   = "undone"   // undone before Kinde made the change
)

// RBACEdit is one confirmed RBAC edit: a change to a role, a member or a
// permission, its preview, and how its Kinde call went.
type RBACEdit struct {
	ID         string
	Kind       string // admin.EditKind
	Payload    string // the edit as JSON
	Summary    string // the edit in plain words
	Plan       string // the preview as JSON
	ActorID    string
	ActorEmail string
	State      string // RBACEdit*
	Error      string // why Kinde last refused (applying or failed)
	Outcome    string // what Kinde answered, once it did
	Attempts   int    // Kinde calls made
	FanoutID   string // the fan-out refreshing the affected users' claims
	Affected   int    // users whose claims are refreshed
	CreatedAt  time.Time
	DueAt      time.Time // when the Kinde call is due (the end of the undo window)
	UpdatedAt  time.Time
	FinishedAt time.Time // applied, failed or undone
}

// Undoable reports whether the edit can still be undone: Kinde has not made
// it.
func (e RBACEdit) Undoable() bool {
	return e.State == RBACEditPending || e.State == RBACEditFailed ||
		(e.State == RBACEditApplying && e.Error != "")
}

const rbacEditColumns = `id, kind, payload, summary, plan, actor_id, actor_email, state, error, outcome,
	kinde_attempts, fanout_id, affected, created_at, due_at, updated_at, finished_at`

// CreateRBACEdit records a confirmed edit inside the transaction. State
// defaults to pending, CreatedAt to now.
func (tx *Tx) CreateRBACEdit(ctx context.Context, e *RBACEdit) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = time.Now()
	}
	if e.State == "" {
		e.State = RBACEditPending
	}
	e.UpdatedAt = e.CreatedAt
	_, err := tx.Exec(ctx, `INSERT INTO rbac_edits (`+rbacEditColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.Kind, e.Payload, e.Summary, e.Plan, e.ActorID, e.ActorEmail, e.State, e.Error, e.Outcome,
		e.Attempts, e.FanoutID, e.Affected, Millis(e.CreatedAt), Millis(e.DueAt), Millis(e.UpdatedAt),
		Millis(e.FinishedAt))
	if err != nil {
		return fmt.Errorf("create rbac edit: %w", err)
	}
	return nil
}

// RBACEdit returns one edit, or ErrNotFound.
func (db *DB) RBACEdit(ctx context.Context, id string) (*RBACEdit, error) {
	return oneRBACEdit(ctx, db, `id = ?`, id)
}

// RBACEditByFanout returns the edit whose fan-out is fanoutID, or
// ErrNotFound.
func (db *DB) RBACEditByFanout(ctx context.Context, fanoutID string) (*RBACEdit, error) {
	return oneRBACEdit(ctx, db, `fanout_id = ?`, fanoutID)
}

// RBACEditByFanout is RBACEditByFanout inside the transaction.
func (tx *Tx) RBACEditByFanout(ctx context.Context, fanoutID string) (*RBACEdit, error) {
	return oneRBACEdit(ctx, tx, `fanout_id = ?`, fanoutID)
}

func oneRBACEdit(ctx context.Context, q querier, where string, arg string) (*RBACEdit, error) {
	e, err := scanRBACEdit(q.QueryRow(ctx, `SELECT `+rbacEditColumns+` FROM rbac_edits WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("rbac edit: %w", err)
	}
	return e, nil
}

// RBACEdits lists edits newest first, offset and limit for paging, and how
// many there are.
func (db *DB) RBACEdits(ctx context.Context, offset, limit int) ([]RBACEdit, int, error) {
	if limit <= 0 {
		limit = 50
	}
	var total int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM rbac_edits`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("rbac edits: %w", err)
	}
	rows, err := db.Query(ctx, `SELECT `+rbacEditColumns+` FROM rbac_edits ORDER BY created_at DESC, id
		LIMIT ? OFFSET ?`, limit, max(offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("rbac edits: %w", err)
	}
	defer rows.Close()
	var out []RBACEdit
	for rows.Next() {
		e, err := scanRBACEdit(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("rbac edits: %w", err)
		}
		out = append(out, *e)
	}
	return out, total, rows.Err()
}

// RBACEditApplying records that the edit's Kinde call is being made (one
// more attempt). It reports false when the edit is not pending or applying
// (undone, or done), and then the call must not be made.
func (db *DB) RBACEditApplying(ctx context.Context, id string) (bool, error) {
	res, err := db.Exec(ctx, `UPDATE rbac_edits SET state = ?, kinde_attempts = kinde_attempts + 1, updated_at = ?
		WHERE id = ? AND state IN (?, ?)`, RBACEditApplying, time.Now().UnixMilli(), id,
		RBACEditPending, RBACEditApplying)
	return affectedOne(res, err, "rbac edit applying")
}

// RBACEditRefused records why Kinde refused the edit: still applying (it is
// retried), or failed when final.
func (db *DB) RBACEditRefused(ctx context.Context, id, reason string, final bool) (bool, error) {
	now := time.Now().UnixMilli()
	state, finished := RBACEditApplying, int64(0)
	if final {
		state, finished = RBACEditFailed, now
	}
	res, err := db.Exec(ctx, `UPDATE rbac_edits SET state = ?, error = ?, updated_at = ?, finished_at = ?
		WHERE id = ? AND state = ?`, state, reason, now, finished, id, RBACEditApplying)
	return affectedOne(res, err, "rbac edit refused")
}

// RBACEditApplied records, inside the transaction, that Kinde made the edit
// at at and what it answered.
func (tx *Tx) RBACEditApplied(ctx context.Context, id, outcome string, at time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE rbac_edits SET state = ?, error = '', outcome = ?, updated_at = ?, finished_at = ?
		WHERE id = ? AND state = ?`, RBACEditApplied, outcome, Millis(at), Millis(at), id, RBACEditApplying)
	return affectedOne(res, err, "rbac edit applied")
}

// UndoRBACEdit marks an undoable edit undone inside the transaction. It
// reports false when Kinde made it already (or is making it now).
func (tx *Tx) UndoRBACEdit(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE rbac_edits SET state = ?, updated_at = ?, finished_at = ?
		WHERE id = ? AND (state IN (?, ?) OR (state = ? AND error <> ''))`, RBACEditUndone, Millis(at), Millis(at), id,
		RBACEditPending, RBACEditFailed, RBACEditApplying)
	return affectedOne(res, err, "undo rbac edit")
}

func scanRBACEdit(sc scanner) (*RBACEdit, error) {
	var e RBACEdit
	var created, due, updated, finished int64
	if err := sc.Scan(&e.ID, &e.Kind, &e.Payload, &e.Summary, &e.Plan, &e.ActorID, &e.ActorEmail, &e.State,
		&e.Error, &e.Outcome, &e.Attempts, &e.FanoutID, &e.Affected, &created, &due, &updated, &finished); err != nil {
		return nil, err
	}
	e.CreatedAt, e.DueAt, e.UpdatedAt, e.FinishedAt = FromMillis(created), FromMillis(due), FromMillis(updated),
		FromMillis(finished)
	return &e, nil
}

// SetRBACEditPayload replaces the edit's payload: a create records the id
// Kinde gave, for the steps after the call.
func (db *DB) SetRBACEditPayload(ctx context.Context, id, payload string) error {
	_, err := db.Exec(ctx, `UPDATE rbac_edits SET payload = ?, updated_at = ? WHERE id = ?`, payload,
		time.Now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("set rbac edit payload: %w", err)
	}
	return nil
}
