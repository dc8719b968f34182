package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Fan-out item states.
const (
	FanoutItemPending = "pending" // queued or being retried
	FanoutItemDone    = "done"    // refresh_claims succeeded and the epoch was bumped
	FanoutItemFailed  = "failed"  // gave up; an admin may retry it
)

// Phases of a fan-out that makes its own Kinde call first (a deletion with
// an undo window). A fan-out without one has phase "" and is refreshing
// from the start.
const (
	FanoutPhaseWaiting    = "waiting"    // the undo window: nothing sent to Kinde yet
	FanoutPhaseDeleting   = "deleting"   // the Kinde call is being made
	FanoutPhaseRetrying   = "retrying"   // Kinde refused; the call is retried (KindeError says why)
	FanoutPhaseFailed     = "failed"     // Kinde refused for good; the local denial stands
	FanoutPhaseRefreshing = "refreshing" // Kinde made the change; refresh_claims per user
	FanoutPhaseUndone     = "undone"     // undone before Kinde was called
)

// Fanout is one batch of refresh_claims jobs started by one action. Done and
// Failed move with the items' states in the same transaction, so they are
// always exact.
type Fanout struct {
	ID            string
	Kind          string // e.g. "permission_deleted", "user_refresh"
	ActorID       string
	ActorEmail    string
	PermissionID  string
	PermissionKey string
	Reason        string
	Total         int
	Done          int
	Failed        int
	CreatedAt     time.Time
	UpdatedAt     time.Time
	FinishedAt    time.Time // zero while items are pending (or the Kinde call is)

	// The Kinde call made before the refreshes (see FanoutPhase*).
	Phase         string
	KindeDueAt    time.Time // when the call is due (the end of the undo window)
	KindeAttempts int
	KindeError    string    // why Kinde last refused, while retrying or failed
	KindeDoneAt   time.Time // when Kinde made the change
}

// Refreshing reports whether the fan-out's refresh_claims jobs are (or were)
// running: it has no Kinde call of its own, or that call succeeded.
func (f Fanout) Refreshing() bool { return f.Phase == "" || f.Phase == FanoutPhaseRefreshing }

// Undoable reports whether the change can still be undone: Kinde was not
// called, or refused.
func (f Fanout) Undoable() bool {
	return f.Phase == FanoutPhaseWaiting || f.Phase == FanoutPhaseRetrying || f.Phase == FanoutPhaseFailed
}

// Pending is the number of items neither done nor failed.
func (f Fanout) Pending() int { return max(0, f.Total-f.Done-f.Failed) }

// FanoutItem is one user of a fan-out.
type FanoutItem struct {
	FanoutID  string
	UserID    string
	Email     string
	Reasons   string // comma-separated, e.g. "role:analyst,session"
	Status    string // FanoutItemPending, FanoutItemDone or FanoutItemFailed
	Attempts  int
	LastError string
	JobID     int64
	Round     int // 0, then one more each time an admin retries the item
	UpdatedAt time.Time
	DoneAt    time.Time
}

const fanoutColumns = `id, kind, actor_id, actor_email, permission_id, permission_key, reason,
	total, done, failed, created_at, updated_at, finished_at, phase, kinde_due_at, kinde_attempts, kinde_error,
	kinde_done_at`

const fanoutItemColumns = `fanout_id, user_id, email, reasons, status, attempts, last_error, job_id,
	round, updated_at, done_at`

// CreateFanout records a fan-out and its items inside the transaction. Items
// are pending unless their Status says FanoutItemDone (a user whose refresh
// another fan-out already makes: done at once, counted, with no job).
// f.Total and f.Done are set from the items; a refreshing fan-out with
// nothing pending is finished at once. f.Phase and f.KindeDueAt are stored
// as given.
func (tx *Tx) CreateFanout(ctx context.Context, f *Fanout, items []FanoutItem) error {
	now := time.Now()
	if f.CreatedAt.IsZero() {
		f.CreatedAt = now
	}
	f.UpdatedAt = f.CreatedAt
	f.Total, f.Done, f.Failed = len(items), 0, 0
	for _, it := range items {
		if it.Status == FanoutItemDone {
			f.Done++
		}
	}
	f.FinishedAt = time.Time{}
	if f.Done == f.Total && f.Refreshing() {
		f.FinishedAt = f.CreatedAt
	}
	_, err := tx.Exec(ctx, `INSERT INTO fanouts (`+fanoutColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, 0, '', 0)`,
		f.ID, f.Kind, f.ActorID, f.ActorEmail, f.PermissionID, f.PermissionKey, f.Reason, f.Total, f.Done,
		Millis(f.CreatedAt), Millis(f.UpdatedAt), Millis(f.FinishedAt), f.Phase, Millis(f.KindeDueAt))
	if err != nil {
		return fmt.Errorf("create fanout: %w", err)
	}
	return tx.insertFanoutItems(ctx, f, items)
}

// insertFanoutItems inserts the items of a new fan-out (pending, or done
// at its creation when CreateFanout says so). A deletion records thousands
// of holders in the click's transaction: on Postgres they go in one
// statement, as arrays of columns (one round trip, a handful of parameters),
// on SQLite as multi-row INSERTs (no network to cross).
func (tx *Tx) insertFanoutItems(ctx context.Context, f *Fanout, items []FanoutItem) error {
	if len(items) == 0 {
		return nil
	}
	status := func(it FanoutItem) (string, int64) {
		if it.Status == FanoutItemDone {
			return FanoutItemDone, Millis(f.CreatedAt)
		}
		return FanoutItemPending, 0
	}
	if tx.db.dialect == Postgres {
		n := len(items)
		users, emails, reasons, states := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		done := make([]int64, n)
		for i, it := range items {
			users[i], emails[i], reasons[i] = it.UserID, it.Email, it.Reasons
			states[i], done[i] = status(it)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fanout_items (fanout_id, user_id, email, reasons, status, done_at, updated_at)
			SELECT ?, u, e, r, s, d, ? FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[])
			AS t (u, e, r, s, d)`,
			f.ID, Millis(f.CreatedAt), users, emails, reasons, states, done); err != nil {
			return fmt.Errorf("create fanout items: %w", err)
		}
		return nil
	}
	const perInsert = 1000
	for i := 0; i < len(items); i += perInsert {
		chunk := items[i:min(i+perInsert, len(items))]
		args := make([]any, 0, 7*len(chunk))
		for _, it := range chunk {
			st, done := status(it)
			args = append(args, f.ID, it.UserID, it.Email, it.Reasons, st, done, Millis(f.CreatedAt))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fanout_items (fanout_id, user_id, email, reasons, status, done_at,
			updated_at) VALUES `+rowMarks(len(chunk), 7), args...); err != nil {
			return fmt.Errorf("create fanout items: %w", err)
		}
	}
	return nil
}

// StartKindeCall moves a fan-out whose Kinde call is due (waiting, retrying,
// or deleting when a crashed attempt is retried) to deleting and counts the
// attempt. It reports false when the fan-out is in no such phase (undone,
// or already done), and then the call must not be made.
func (db *DB) StartKindeCall(ctx context.Context, id string) (bool, error) {
	res, err := db.Exec(ctx, `UPDATE fanouts SET phase = ?, kinde_attempts = kinde_attempts + 1, updated_at = ?
		WHERE id = ? AND phase IN (?, ?, ?)`, FanoutPhaseDeleting, time.Now().UnixMilli(), id,
		FanoutPhaseWaiting, FanoutPhaseRetrying, FanoutPhaseDeleting)
	return affectedOne(res, err, "start kinde call")
}

// KindeCallRefused records why Kinde refused a deleting fan-out's call:
// retrying, or failed when it will not be retried.
func (db *DB) KindeCallRefused(ctx context.Context, id, reason string, final bool) (bool, error) {
	phase := FanoutPhaseRetrying
	if final {
		phase = FanoutPhaseFailed
	}
	res, err := db.Exec(ctx, `UPDATE fanouts SET phase = ?, kinde_error = ?, updated_at = ? WHERE id = ? AND phase = ?`,
		phase, reason, time.Now().UnixMilli(), id, FanoutPhaseDeleting)
	return affectedOne(res, err, "kinde call refused")
}

// KindeCallDone records that Kinde made a deleting fan-out's change at at:
// it moves to refreshing (finished at once when it has no items).
func (tx *Tx) KindeCallDone(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE fanouts SET phase = ?, kinde_done_at = ?, kinde_error = '', updated_at = ?,
		finished_at = CASE WHEN total = 0 THEN ? ELSE finished_at END WHERE id = ? AND phase = ?`,
		FanoutPhaseRefreshing, Millis(at), Millis(at), Millis(at), id, FanoutPhaseDeleting)
	return affectedOne(res, err, "kinde call done")
}

// UndoFanout marks an undoable fan-out (see Fanout.Undoable) undone and
// finished. It reports false when it is not undoable (any more).
func (tx *Tx) UndoFanout(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE fanouts SET phase = ?, finished_at = ?, updated_at = ? WHERE id = ? AND phase IN (?, ?, ?)`,
		FanoutPhaseUndone, Millis(at), Millis(at), id, FanoutPhaseWaiting, FanoutPhaseRetrying, FanoutPhaseFailed)
	return affectedOne(res, err, "undo fanout")
}

// PendingFanoutItems returns the users of a fan-out whose items are pending,
// with their rounds.
func (db *DB) PendingFanoutItems(ctx context.Context, fanoutID string) ([]FanoutItem, error) {
	rows, err := db.Query(ctx, `SELECT `+fanoutItemColumns+` FROM fanout_items WHERE fanout_id = ? AND status = ?`,
		fanoutID, FanoutItemPending)
	if err != nil {
		return nil, fmt.Errorf("pending fanout items: %w", err)
	}
	defer rows.Close()
	var out []FanoutItem
	for rows.Next() {
		it, err := scanFanoutItem(rows)
		if err != nil {
			return nil, fmt.Errorf("pending fanout items: %w", err)
		}
		out = append(out, *it)
	}
	return out, rows.Err()
}

func affectedOne(res sql.Result, err error, what string) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return n > 0, nil
}

// insertBatch is how many rows one multi-row INSERT carries (well inside
// SQLite's and Postgres's limits on bound parameters).
const insertBatch = 500

// rowMarks returns "(?, ?), (?, ?), …": n rows of cols marks.
func rowMarks(n, cols int) string {
	row := "(" + sqlMarks(cols) + ")"
	return strings.Repeat(row+", ", n-1) + row
}

// SetFanoutItemJob records the River job id working an item.
func (tx *Tx) SetFanoutItemJob(ctx context.Context, fanoutID, userID string, jobID int64) error {
	_, err := tx.Exec(ctx, `UPDATE fanout_items SET job_id = ? WHERE fanout_id = ? AND user_id = ?`,
		jobID, fanoutID, userID)
	if err != nil {
		return fmt.Errorf("set fanout item job: %w", err)
	}
	return nil
}

// SetFanoutItemJobs records which River job works each user's item of a
// fan-out (jobIDs maps user ids to job ids), with one statement per 500
// items: a fan-out's thousands of items are set in the transaction that
// enqueues their jobs, where a statement per job would cost a round trip
// each on Postgres.
func (tx *Tx) SetFanoutItemJobs(ctx context.Context, fanoutID string, jobIDs map[string]int64) error {
	ids := make([]string, 0, len(jobIDs))
	for id := range jobIDs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for chunk := range slices.Chunk(ids, insertBatch) {
		args := make([]any, 0, 2*len(chunk)+1)
		for _, id := range chunk {
			args = append(args, id, jobIDs[id])
		}
		args = append(args, fanoutID)
		// VALUES names its columns column1, column2 on both databases.
		if _, err := tx.Exec(ctx, `UPDATE fanout_items SET job_id = v.column2
			FROM (VALUES `+strings.TrimSuffix(strings.Repeat("(?, CAST(? AS BIGINT)), ", len(chunk)), ", ")+`) AS v
			WHERE fanout_items.fanout_id = ? AND fanout_items.user_id = v.column1`, args...); err != nil {
			return fmt.Errorf("set fanout item jobs: %w", err)
		}
	}
	return nil
}

// PendingFanoutUsers returns which of the given users have an item of the
// fan-out that is pending in the given round, in the order given.
func (db *DB) PendingFanoutUsers(ctx context.Context, fanoutID string, round int, userIDs []string) ([]string, error) {
	pending := make(map[string]bool, len(userIDs))
	for chunk := range slices.Chunk(userIDs, insertBatch) {
		args := make([]any, 0, len(chunk)+3)
		args = append(args, fanoutID, round, FanoutItemPending)
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := db.Query(ctx, `SELECT user_id FROM fanout_items WHERE fanout_id = ? AND round = ? AND status = ?
			AND user_id IN (`+sqlMarks(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("pending fanout users: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("pending fanout users: %w", err)
			}
			pending[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("pending fanout users: %w", err)
		}
	}
	out := make([]string, 0, len(pending))
	for _, id := range userIDs {
		if pending[id] {
			out = append(out, id)
			delete(pending, id) // a user named twice is returned once
		}
	}
	return out, nil
}

// Refreshed is a user whose refresh_claims succeeded, with when the call
// started: tokens granted after it carry claims at least that fresh.
type Refreshed struct {
	UserID string
	At     time.Time
}

// CompleteFanoutItems records successful refresh_claims calls of one
// fan-out's round inside the transaction, in a handful of statements
// however many users there are: every user's claims are marked cleared at
// its At by this fan-out (before any epoch bump is visible, so the refresh that follows
// dates the session's claims from it), the items still pending in the round
// move to done with attempts and the time their calls were sent (the
// earliest At of the statement's users) and are counted, and those users' claims epochs
// are bumped with reason. Users whose item was not pending in that round
// (done already, failed, requeued in a later round, or missing) are not
// counted again. It returns the new epoch of each user counted.
func (tx *Tx) CompleteFanoutItems(ctx context.Context, fanoutID string, round, attempts int, reason string,
	users []Refreshed) (map[string]int64, error) {
	epochs := make(map[string]int64, len(users))
	if len(users) == 0 {
		return epochs, nil
	}
	now := Millis(time.Now())
	var counted []string
	for chunk := range slices.Chunk(users, insertBatch) {
		// Newest time per user within the statement: one row per key, as an
		// upsert of several rows needs on Postgres.
		at := make(map[string]int64, len(chunk))
		var ids []string
		for _, u := range chunk {
			if prev, ok := at[u.UserID]; !ok {
				ids = append(ids, u.UserID)
				at[u.UserID] = Millis(u.At)
			} else {
				at[u.UserID] = max(prev, Millis(u.At))
			}
		}
		args := make([]any, 0, 3*len(ids))
		for _, id := range ids {
			args = append(args, id, at[id], fanoutID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO user_claims (user_id, cleared_at, cleared_by) VALUES `+
			rowMarks(len(ids), 3)+`
			ON CONFLICT (user_id) DO UPDATE SET cleared_at = CASE
			WHEN excluded.cleared_at > user_claims.cleared_at THEN excluded.cleared_at ELSE user_claims.cleared_at END,
			cleared_by = CASE
			WHEN excluded.cleared_at > user_claims.cleared_at THEN excluded.cleared_by ELSE user_claims.cleared_by END`,
			args...); err != nil {
			return nil, fmt.Errorf("complete fanout items: mark claims cleared: %w", err)
		}
		args = append(args[:0], FanoutItemDone, attempts, now, now, fanoutID, round, FanoutItemPending)
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err := tx.Query(ctx, `UPDATE fanout_items SET status = ?, attempts = ?, last_error = '', updated_at = ?,
			done_at = ? WHERE fanout_id = ? AND round = ? AND status = ? AND user_id IN (`+sqlMarks(len(ids))+`)
			RETURNING user_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("complete fanout items: %w", err)
		}
		n := len(counted)
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("complete fanout items: %w", err)
			}
			counted = append(counted, id)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("complete fanout items: %w", err)
		}
		if len(counted) == n {
			continue
		}
		args = args[:0]
		for _, id := range counted[n:] {
			args = append(args, id, now, reason)
		}
		rows, err = tx.Query(ctx, `INSERT INTO user_epochs (user_id, epoch, changed_at, reason) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, 1, ?, ?), ", len(counted)-n), ", ")+`
			ON CONFLICT (user_id) DO UPDATE SET epoch = user_epochs.epoch + 1, changed_at = excluded.changed_at,
			reason = excluded.reason RETURNING user_id, epoch`, args...)
		if err != nil {
			return nil, fmt.Errorf("complete fanout items: bump epochs: %w", err)
		}
		for rows.Next() {
			var id string
			var epoch int64
			if err := rows.Scan(&id, &epoch); err != nil {
				rows.Close()
				return nil, fmt.Errorf("complete fanout items: bump epochs: %w", err)
			}
			epochs[id] = epoch
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("complete fanout items: bump epochs: %w", err)
		}
	}
	if len(counted) == 0 {
		return epochs, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE fanouts SET done = done + ?, updated_at = ?,
		finished_at = CASE WHEN done + failed + ? >= total THEN ? ELSE finished_at END
		WHERE id = ?`, len(counted), now, len(counted), now, fanoutID); err != nil {
		return nil, fmt.Errorf("complete fanout items: count: %w", err)
	}
	return epochs, nil
}

// Fanout returns one fan-out, or ErrNotFound.
func (db *DB) Fanout(ctx context.Context, id string) (*Fanout, error) {
	f, err := scanFanout(db.QueryRow(ctx, `SELECT `+fanoutColumns+` FROM fanouts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	return f, nil
}

// Fanouts lists the most recent fan-outs, newest first.
func (db *DB) Fanouts(ctx context.Context, limit int) ([]Fanout, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := db.Query(ctx, `SELECT `+fanoutColumns+` FROM fanouts ORDER BY created_at DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("fanouts: %w", err)
	}
	defer rows.Close()
	var out []Fanout
	for rows.Next() {
		f, err := scanFanout(rows)
		if err != nil {
			return nil, fmt.Errorf("fanouts: %w", err)
		}
		out = append(out, *f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fanouts: %w", err)
	}
	return out, nil
}

// FanoutCounts summarises every fan-out: how many there are and how many
// still have pending items.
func (db *DB) FanoutCounts(ctx context.Context) (total, active int, err error) {
	err = db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN finished_at = 0 THEN 1 ELSE 0 END), 0)
		FROM fanouts`).Scan(&total, &active)
	if err != nil {
		return 0, 0, fmt.Errorf("fanout counts: %w", err)
	}
	return total, active, nil
}

// FanoutItems lists a fan-out's items: failed first, then pending, then done;
// by user id within each.
func (db *DB) FanoutItems(ctx context.Context, fanoutID string) ([]FanoutItem, error) {
	return db.FanoutItemsPage(ctx, fanoutID, -1, 0)
}

// FanoutItemsPage returns limit items of a fan-out from offset, in
// FanoutItems' order (limit < 0: all of them).
func (db *DB) FanoutItemsPage(ctx context.Context, fanoutID string, limit, offset int) ([]FanoutItem, error) {
	q, args := `SELECT `+fanoutItemColumns+` FROM fanout_items WHERE fanout_id = ?
		ORDER BY CASE status WHEN 'failed' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, user_id`, []any{fanoutID}
	if limit >= 0 {
		q, args = q+` LIMIT ? OFFSET ?`, append(args, limit, max(offset, 0))
	}
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("fanout items: %w", err)
	}
	defer rows.Close()
	var out []FanoutItem
	for rows.Next() {
		it, err := scanFanoutItem(rows)
		if err != nil {
			return nil, fmt.Errorf("fanout items: %w", err)
		}
		out = append(out, *it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fanout items: %w", err)
	}
	return out, nil
}

// FanoutItem returns one item, or ErrNotFound.
func (db *DB) FanoutItem(ctx context.Context, fanoutID, userID string) (*FanoutItem, error) {
	it, err := scanFanoutItem(db.QueryRow(ctx, `SELECT `+fanoutItemColumns+` FROM fanout_items
		WHERE fanout_id = ? AND user_id = ?`, fanoutID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("fanout item: %w", err)
	}
	return it, nil
}

// CompleteFanoutItem moves a pending item to done and counts it, inside the
// transaction. attempts is the number of attempts it took. It reports false,
// changing nothing, when the item was not pending (already done, failed, or
// missing), so a job that runs twice is counted once.
func (tx *Tx) CompleteFanoutItem(ctx context.Context, fanoutID, userID string, attempts int) (bool, error) {
	now := Millis(time.Now())
	res, err := tx.Exec(ctx, `UPDATE fanout_items SET status = ?, attempts = ?, last_error = '', updated_at = ?,
		done_at = ? WHERE fanout_id = ? AND user_id = ? AND status = ?`,
		FanoutItemDone, attempts, now, now, fanoutID, userID, FanoutItemPending)
	if err != nil {
		return false, fmt.Errorf("complete fanout item: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if err := countFanoutItem(ctx, tx, fanoutID, "done", now); err != nil {
		return false, err
	}
	return true, nil
}

// FailFanoutItem moves a pending item to failed with a readable error and
// counts it. It reports false, changing nothing, when the item was not
// pending.
func (db *DB) FailFanoutItem(ctx context.Context, fanoutID, userID string, attempts int, msg string) (bool, error) {
	var changed bool
	err := db.InTx(ctx, func(tx *Tx) error {
		now := Millis(time.Now())
		res, err := tx.Exec(ctx, `UPDATE fanout_items SET status = ?, attempts = ?, last_error = ?, updated_at = ?
			WHERE fanout_id = ? AND user_id = ? AND status = ?`,
			FanoutItemFailed, attempts, msg, now, fanoutID, userID, FanoutItemPending)
		if err != nil {
			return fmt.Errorf("fail fanout item: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		changed = true
		return countFanoutItem(ctx, tx, fanoutID, "failed", now)
	})
	return changed, err
}

// countFanoutItem adds one to a fan-out's done or failed counter and marks it
// finished when nothing is left pending. column is a constant, never input.
func countFanoutItem(ctx context.Context, tx *Tx, fanoutID, column string, now int64) error {
	_, err := tx.Exec(ctx, `UPDATE fanouts SET `+column+` = `+column+` + 1, updated_at = ?,
		finished_at = CASE WHEN done + failed + 1 >= total THEN ? ELSE finished_at END
		WHERE id = ?`, now, now, fanoutID)
	if err != nil {
		return fmt.Errorf("count fanout item: %w", err)
	}
	return nil
}

// NoteFanoutAttempt records a failed attempt on a pending item that will be
// retried.
func (db *DB) NoteFanoutAttempt(ctx context.Context, fanoutID, userID string, attempts int, msg string) error {
	_, err := db.Exec(ctx, `UPDATE fanout_items SET attempts = ?, last_error = ?, updated_at = ?
		WHERE fanout_id = ? AND user_id = ? AND status = ?`,
		attempts, msg, Millis(time.Now()), fanoutID, userID, FanoutItemPending)
	if err != nil {
		return fmt.Errorf("note fanout attempt: %w", err)
	}
	return nil
}

// RequeueFailedFanoutItems moves every failed item of a fan-out back to
// pending in a new round, inside the transaction, uncounting them and
// reopening the fan-out. It returns the items as requeued, by user id.
func (tx *Tx) RequeueFailedFanoutItems(ctx context.Context, fanoutID string) ([]FanoutItem, error) {
	now := Millis(time.Now())
	rows, err := tx.Query(ctx, `UPDATE fanout_items SET status = ?, round = round + 1, attempts = 0, updated_at = ?
		WHERE fanout_id = ? AND status = ? RETURNING `+fanoutItemColumns,
		FanoutItemPending, now, fanoutID, FanoutItemFailed)
	if err != nil {
		return nil, fmt.Errorf("requeue fanout items: %w", err)
	}
	var out []FanoutItem
	for rows.Next() {
		it, err := scanFanoutItem(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("requeue fanout items: %w", err)
		}
		out = append(out, *it)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(out) == 0 {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE fanouts SET failed = failed - ?, updated_at = ?, finished_at = 0 WHERE id = ?`,
		len(out), now, fanoutID); err != nil {
		return nil, fmt.Errorf("requeue fanout items: %w", err)
	}
	slices.SortFunc(out, func(a, b FanoutItem) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// StalePendingFanoutItems lists pending items with a job that have not
// changed since before, oldest first, for the reconciler.
func (db *DB) StalePendingFanoutItems(ctx context.Context, before time.Time, limit int) ([]FanoutItem, error) {
	rows, err := db.Query(ctx, `SELECT `+fanoutItemColumns+` FROM fanout_items
		WHERE status = ? AND job_id > 0 AND updated_at < ? ORDER BY updated_at LIMIT ?`,
		FanoutItemPending, Millis(before), limit)
	if err != nil {
		return nil, fmt.Errorf("stale fanout items: %w", err)
	}
	defer rows.Close()
	var out []FanoutItem
	for rows.Next() {
		it, err := scanFanoutItem(rows)
		if err != nil {
			return nil, fmt.Errorf("stale fanout items: %w", err)
		}
		out = append(out, *it)
	}
	return out, rows.Err()
}

// TouchFanoutItem bumps an item's updated_at so the reconciler looks at it
// again later.
func (db *DB) TouchFanoutItem(ctx context.Context, fanoutID, userID string) error {
	_, err := db.Exec(ctx, `UPDATE fanout_items SET updated_at = ? WHERE fanout_id = ? AND user_id = ?`,
		Millis(time.Now()), fanoutID, userID)
	if err != nil {
		return fmt.Errorf("touch fanout item: %w", err)
	}
	return nil
}

// LastDoneFanoutItems returns, for each of the given users, when a fan-out
// last refreshed their claims (items done), keyed by user id.
func (db *DB) LastDoneFanoutItems(ctx context.Context, userIDs []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(userIDs))
	for chunk := range slices.Chunk(userIDs, 500) {
		args := make([]any, 0, len(chunk)+1)
		args = append(args, FanoutItemDone)
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := db.Query(ctx, `SELECT user_id, MAX(done_at) FROM fanout_items
			WHERE status = ? AND user_id IN (`+sqlMarks(len(chunk))+`) GROUP BY user_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("last done fanout items: %w", err)
		}
		for rows.Next() {
			var id string
			var at int64
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("last done fanout items: %w", err)
			}
			out[id] = FromMillis(at)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("last done fanout items: %w", err)
		}
	}
	return out, nil
}

func scanFanout(sc scanner) (*Fanout, error) {
	var f Fanout
	var created, updated, finished, due, kdone int64
	if err := sc.Scan(&f.ID, &f.Kind, &f.ActorID, &f.ActorEmail, &f.PermissionID, &f.PermissionKey, &f.Reason,
		&f.Total, &f.Done, &f.Failed, &created, &updated, &finished, &f.Phase, &due, &f.KindeAttempts,
		&f.KindeError, &kdone); err != nil {
		return nil, err
	}
	f.CreatedAt, f.UpdatedAt, f.FinishedAt = FromMillis(created), FromMillis(updated), FromMillis(finished)
	f.KindeDueAt, f.KindeDoneAt = FromMillis(due), FromMillis(kdone)
	return &f, nil
}

func scanFanoutItem(sc scanner) (*FanoutItem, error) {
	var it FanoutItem
	var updated, done int64
	if err := sc.Scan(&it.FanoutID, &it.UserID, &it.Email, &it.Reasons, &it.Status, &it.Attempts, &it.LastError,
		&it.JobID, &it.Round, &updated, &done); err != nil {
		return nil, err
	}
	it.UpdatedAt, it.DoneAt = FromMillis(updated), FromMillis(done)
	return &it, nil
}
