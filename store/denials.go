package store

import (
	"context"
	"fmt"
	"time"
)

// Denial takes a permission key away from tokens whose claims predate a
// change: a key deleted for everyone (UserID and OrgCode empty: a
// tombstone), or taken from one user, in one organization or in all of them.
//
// It applies to a session whose claims are not known to be newer than the
// change at Kinde (Session.ClaimsAt ≤ SettledAt), and to every session while
// the change has not reached Kinde (SettledAt zero: an undo window, or Kinde
// refusing). So a key created again at Kinde later is not revived in older
// tokens, and only tokens granted after the new grant carry it; nothing is
// lifted early. A settled denial lives until ExpiresAt, at least the longest
// access-token lifetime after SettledAt; an unsettled one does not expire.
type Denial struct {
	ID            int64
	PermissionKey string
	UserID        string // "" = every user
	OrgCode       string // "" = every organization
	PermissionID  string // the Kinde permission the key named, when known
	CreatedAt     time.Time
	SettledAt     time.Time // zero until the change is made at Kinde
	ExpiresAt     time.Time // meaningful once settled
	Reason        string
	FanoutID      string // the fan-out that carries the change, if any
}

// Everyone reports whether the denial is a tombstone: the key for every
// user in every organization.
func (d Denial) Everyone() bool { return d.UserID == "" && d.OrgCode == "" }

const denialColumns = `id, permission_key, user_id, org_code, permission_id, created_at, settled_at, expires_at,
	reason, fanout_id`

// AddDenial records a denial and returns its id. CreatedAt defaults to now.
func (db *DB) AddDenial(ctx context.Context, d Denial) (int64, error) {
	var id int64
	err := db.InTx(ctx, func(tx *Tx) error {
		var err error
		id, err = tx.AddDenial(ctx, d)
		return err
	})
	return id, err
}

// AddDenial records a denial inside the transaction and bumps the denial
// version with it.
func (tx *Tx) AddDenial(ctx context.Context, d Denial) (int64, error) {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = time.Now()
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO denials (permission_key, user_id, org_code, permission_id, created_at,
		settled_at, expires_at, reason, fanout_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		d.PermissionKey, d.UserID, d.OrgCode, d.PermissionID, Millis(d.CreatedAt), Millis(d.SettledAt),
		Millis(d.ExpiresAt), d.Reason, d.FanoutID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add denial: %w", err)
	}
	return id, bumpDenialVersion(ctx, tx)
}

// AddDenials records many denials inside the transaction, several rows per
// statement, and bumps the denial version once. CreatedAt defaults to now.
func (tx *Tx) AddDenials(ctx context.Context, ds []Denial) error {
	if len(ds) == 0 {
		return nil
	}
	now := time.Now()
	if tx.db.dialect == Postgres {
		// One statement, a column per array: an RBAC edit records thousands
		// of denials in the confirm's transaction.
		n := len(ds)
		keys, users, orgs, perms := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		reasons, fanouts := make([]string, n), make([]string, n)
		created, settled, expires := make([]int64, n), make([]int64, n), make([]int64, n)
		for i, d := range ds {
			if d.CreatedAt.IsZero() {
				d.CreatedAt = now
			}
			keys[i], users[i], orgs[i], perms[i], reasons[i], fanouts[i] = d.PermissionKey, d.UserID, d.OrgCode,
				d.PermissionID, d.Reason, d.FanoutID
			created[i], settled[i], expires[i] = Millis(d.CreatedAt), Millis(d.SettledAt), Millis(d.ExpiresAt)
		}
		_, err := tx.Exec(ctx, `INSERT INTO denials (permission_key, user_id, org_code, permission_id, created_at,
			settled_at, expires_at, reason, fanout_id)
			SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[],
			?::text[], ?::text[])`, keys, users, orgs, perms, created, settled, expires, reasons, fanouts)
		if err != nil {
			return fmt.Errorf("add denials: %w", err)
		}
		return bumpDenialVersion(ctx, tx)
	}
	for start := 0; start < len(ds); start += insertBatch {
		batch := ds[start:min(start+insertBatch, len(ds))]
		args := make([]any, 0, 9*len(batch))
		for _, d := range batch {
			if d.CreatedAt.IsZero() {
				d.CreatedAt = now
			}
			args = append(args, d.PermissionKey, d.UserID, d.OrgCode, d.PermissionID, Millis(d.CreatedAt),
				Millis(d.SettledAt), Millis(d.ExpiresAt), d.Reason, d.FanoutID)
		}
		_, err := tx.Exec(ctx, `INSERT INTO denials (permission_key, user_id, org_code, permission_id, created_at,
			settled_at, expires_at, reason, fanout_id) VALUES `+rowMarks(len(batch), 9), args...)
		if err != nil {
			return fmt.Errorf("add denials: %w", err)
		}
	}
	return bumpDenialVersion(ctx, tx)
}

// SettleDenials records that the change behind the fan-out's unsettled
// denials was made at Kinde at at: from now on they apply to sessions whose
// claims predate at, until expires. It reports how many it settled.
func (tx *Tx) SettleDenials(ctx context.Context, fanoutID string, at, expires time.Time) (int64, error) {
	res, err := tx.Exec(ctx, `UPDATE denials SET settled_at = ?, expires_at = ?
		WHERE fanout_id = ? AND settled_at = 0`, Millis(at), Millis(expires), fanoutID)
	if err != nil {
		return 0, fmt.Errorf("settle denials: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	return n, bumpDenialVersion(ctx, tx)
}

// WithdrawDenials deletes the fan-out's denials that are not settled yet (an
// undone change that never reached Kinde) and reports how many.
func (tx *Tx) WithdrawDenials(ctx context.Context, fanoutID string) (int64, error) {
	res, err := tx.Exec(ctx, `DELETE FROM denials WHERE fanout_id = ? AND settled_at = 0`, fanoutID)
	if err != nil {
		return 0, fmt.Errorf("withdraw denials: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	return n, bumpDenialVersion(ctx, tx)
}

// DenialVersion returns the denial version: a counter that every denial
// write or withdrawal bumps in its own transaction. Sessions are read with it
// (Session.DenialVersion), so a cache of the denials can tell it is older
// than the database without waiting for a notification. Expiry does not bump
// it: readers drop expired denials by their ExpiresAt.
func (db *DB) DenialVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := db.queryRowPrepared(ctx, `SELECT tombstone_version FROM perm_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("denial version: %w", err)
	}
	return v, nil
}

func bumpDenialVersion(ctx context.Context, q querier) error {
	if _, err := q.Exec(ctx, `UPDATE perm_state SET tombstone_version = tombstone_version + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("bump denial version: %w", err)
	}
	return nil
}

// liveDenial is the condition for a denial in force at a time: unsettled, or
// settled and not expired.
const liveDenial = `(settled_at = 0 OR expires_at > ?)`

// LiveDenials returns the denials in force at now, newest first.
func (db *DB) LiveDenials(ctx context.Context, now time.Time) ([]Denial, error) {
	return db.queryDenials(ctx, `SELECT `+denialColumns+` FROM denials WHERE `+liveDenial+`
		ORDER BY created_at DESC, id DESC`, Millis(now))
}

// LiveDenials is LiveDenials inside the transaction.
func (tx *Tx) LiveDenials(ctx context.Context, now time.Time) ([]Denial, error) {
	return queryDenials(ctx, tx, `SELECT `+denialColumns+` FROM denials WHERE `+liveDenial+`
		ORDER BY created_at DESC, id DESC`, Millis(now))
}

// FanoutDenials returns the denials a fan-out carries, oldest first.
func (db *DB) FanoutDenials(ctx context.Context, fanoutID string) ([]Denial, error) {
	return db.queryDenials(ctx, `SELECT `+denialColumns+` FROM denials WHERE fanout_id = ? ORDER BY id`, fanoutID)
}

func (db *DB) queryDenials(ctx context.Context, q string, args ...any) ([]Denial, error) {
	return queryDenials(ctx, db, q, args...)
}

func queryDenials(ctx context.Context, qr querier, q string, args ...any) ([]Denial, error) {
	rows, err := qr.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("denials: %w", err)
	}
	defer rows.Close()
	var out []Denial
	for rows.Next() {
		var (
			d                         Denial
			created, settled, expires int64
		)
		if err := rows.Scan(&d.ID, &d.PermissionKey, &d.UserID, &d.OrgCode, &d.PermissionID, &created, &settled,
			&expires, &d.Reason, &d.FanoutID); err != nil {
			return nil, fmt.Errorf("denials: %w", err)
		}
		d.CreatedAt, d.SettledAt, d.ExpiresAt = FromMillis(created), FromMillis(settled), FromMillis(expires)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("denials: %w", err)
	}
	return out, nil
}

// LiveDeniedKeys returns the keys denied to everyone (tombstoned) at now.
func (db *DB) LiveDeniedKeys(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT permission_key FROM denials
		WHERE user_id = '' AND org_code = '' AND `+liveDenial+` ORDER BY permission_key`, Millis(now))
	if err != nil {
		return nil, fmt.Errorf("denied keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("denied keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// ExpireDenials deletes the settled denials that expired at or before now
// and reports how many.
func (db *DB) ExpireDenials(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.Exec(ctx, `DELETE FROM denials WHERE settled_at <> 0 AND expires_at <= ?`, Millis(now))
	if err != nil {
		return 0, fmt.Errorf("expire denials: %w", err)
	}
	return res.RowsAffected()
}
