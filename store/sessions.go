package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrSessionChanged is returned by a compare-and-swap session update when the
// row's generation is no longer the one the caller read: someone else updated
// it first.
var ErrSessionChanged = errors.New("store: session changed concurrently")

// Session is one server-side session row. ID is the hex SHA-256 of
// the random id in the cookie, never the cookie value itself. Tokens and
// WebValues are opaque, already encrypted blobs: the store never sees a token
// in the clear.
type Session struct {
	ID      string
	UserID  string
	OrgCode string
	Email   string
	Name    string

	Tokens      []byte   // encrypted access, ID and refresh tokens
	Permissions []string // permission keys from the access token
	Roles       []Role   // roles from the access token, when present
	ClaimsEpoch int64    // the user's claims epoch the tokens were built at
	// ClaimsAt is when the tokens' claims are known to be current at Kinde:
	// the start of the sign-in, or of the latest refresh_claims for the user
	// before the last refresh. Denials settled at or after it apply.
	ClaimsAt time.Time

	AccessIssuedAt   time.Time
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
	RefreshedAt      time.Time // zero until the first refresh
	CreatedAt        time.Time
	LastSeenAt       time.Time
	ExpiresAt        time.Time // the row is dead after this

	// Generation starts at 1 and grows by one on every token update; updates
	// compare and swap on it.
	Generation int64
	UserAgent  string
	WebValues  []byte // encrypted gorilla/sessions values

	// Read with the row by GetSession and SessionForUpdate on Postgres,
	// never stored: the user's claims epoch and the denial version (see
	// DB.DenialVersion) in the same snapshot as the row. A replica's cached
	// copy of either that is older than these is stale: another replica
	// changed it and its notification has not arrived yet. Zero on SQLite,
	// which serves a single instance, whose cache is told of every change
	// before the change's request answers.
	UserEpoch     int64
	DenialVersion int64
}

// Role is a role claim of an access token.
type Role struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Name string `json:"name"`
}

const sessionColumns = `id, user_id, org_code, email, name, tokens, permissions, roles, claims_epoch,
	access_issued_at, access_expires_at, refresh_expires_at, refreshed_at, created_at, last_seen_at,
	expires_at, generation, user_agent, web_values, claims_at`

type scanner interface{ Scan(dest ...any) error }

// sessionStateColumns follow sessionColumns in single-session reads: the
// user's current claims epoch and the denial version.
const sessionStateColumns = `COALESCE((SELECT epoch FROM user_epochs WHERE user_epochs.user_id = sessions.user_id), 0),
	(SELECT tombstone_version FROM perm_state WHERE id = 1)`

// scanSession scans sessionColumns, then, withState, sessionStateColumns.
func scanSession(sc scanner, withState bool) (*Session, error) {
	var (
		s                                         Session
		perms, roles                              string
		issued, expires, rexp, refreshed, created int64
		seen, dead, claimsAt                      int64
	)
	dest := []any{&s.ID, &s.UserID, &s.OrgCode, &s.Email, &s.Name, &s.Tokens, &perms, &roles, &s.ClaimsEpoch,
		&issued, &expires, &rexp, &refreshed, &created, &seen, &dead, &s.Generation, &s.UserAgent, &s.WebValues, &claimsAt}
	if withState {
		dest = append(dest, &s.UserEpoch, &s.DenialVersion)
	}
	err := sc.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("scan session: %w", err)
	}
	if err := json.Unmarshal([]byte(perms), &s.Permissions); err != nil {
		return nil, fmt.Errorf("session permissions: %w", err)
	}
	if err := json.Unmarshal([]byte(roles), &s.Roles); err != nil {
		return nil, fmt.Errorf("session roles: %w", err)
	}
	s.AccessIssuedAt, s.AccessExpiresAt = FromMillis(issued), FromMillis(expires)
	s.RefreshExpiresAt, s.RefreshedAt = FromMillis(rexp), FromMillis(refreshed)
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = FromMillis(created), FromMillis(seen), FromMillis(dead)
	s.ClaimsAt = FromMillis(claimsAt)
	return &s, nil
}

func encodeClaims(s *Session) (perms, roles string, err error) {
	p := s.Permissions
	if p == nil {
		p = []string{}
	}
	r := s.Roles
	if r == nil {
		r = []Role{}
	}
	pb, err := json.Marshal(p)
	if err != nil {
		return "", "", err
	}
	rb, err := json.Marshal(r)
	if err != nil {
		return "", "", err
	}
	return string(pb), string(rb), nil
}

// CreateSession inserts a new session row with generation 1.
func (db *DB) CreateSession(ctx context.Context, s *Session) error {
	perms, roles, err := encodeClaims(s)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	if s.Generation == 0 {
		s.Generation = 1
	}
	return db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.UserID, s.OrgCode, s.Email, s.Name, s.Tokens, perms, roles, s.ClaimsEpoch,
			Millis(s.AccessIssuedAt), Millis(s.AccessExpiresAt), Millis(s.RefreshExpiresAt), Millis(s.RefreshedAt),
			Millis(s.CreatedAt), Millis(s.LastSeenAt), Millis(s.ExpiresAt), s.Generation, s.UserAgent, s.WebValues,
			Millis(s.ClaimsAt))
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return replaceSessionPermissions(ctx, tx, s.ID, s.Permissions)
	})
}

// GetSession returns the live session with the given id (the hash), or
// ErrNotFound when there is none or it has expired. It runs on every
// signed-in request, through a cached prepared statement; on SQLite a row
// read since the last commit is served from memory (sessionCache).
func (db *DB) GetSession(ctx context.Context, id string) (*Session, error) {
	now := time.Now()
	commits, cached := db.cacheUsable()
	if cached {
		if s, ok := db.sessions.get(id, commits, now); ok {
			return s, nil
		}
	}
	q, withState := getSessionSQL, db.dialect == Postgres
	if withState {
		q = getSessionWithStateSQL
	}
	s, err := scanSession(db.queryRowPrepared(ctx, q, id, now.UnixMilli()), withState)
	if err == nil && cached {
		db.sessions.put(s, commits)
	}
	return s, err
}

// SessionForUpdate reads a session and locks its row until the transaction
// ends (Postgres SELECT … FOR UPDATE). On SQLite the transaction already holds
// the database's write lock, so the plain read is just as exclusive.
func (tx *Tx) SessionForUpdate(ctx context.Context, id string) (*Session, error) {
	q, withState := getSessionSQL, tx.db.dialect == Postgres
	if withState {
		q = getSessionWithStateSQL + ` FOR UPDATE`
	}
	return scanSession(tx.QueryRow(ctx, q, id, time.Now().UnixMilli()), withState)
}

// RefreshSession runs a token refresh of session id: fn gets the row and a
// save function for the refreshed row. On Postgres a transaction holds the
// row (SELECT … FOR UPDATE) across fn, so replicas refresh one session one at
// a time, and save writes in that transaction. On SQLite no transaction is
// held across fn (the pool's one connection must not wait on a network
// call; SQLite means a single instance, whose caller serialises refreshes
// itself): fn gets a plain read and save is UpdateSessionTokens. Either way
// save is a compare-and-swap on the row's generation (ErrSessionChanged).
// It returns ErrNotFound when there is no live session, or fn's error.
func (db *DB) RefreshSession(ctx context.Context, id string,
	fn func(row *Session, save func(context.Context, *Session) error) error) error {
	if db.dialect != Postgres {
		row, err := db.GetSession(ctx, id)
		if err != nil {
			return err
		}
		return fn(row, db.UpdateSessionTokens)
	}
	return db.InTx(ctx, func(tx *Tx) error {
		row, err := tx.SessionForUpdate(ctx, id)
		if err != nil {
			return err
		}
		return fn(row, tx.UpdateSessionTokens)
	})
}

// The single-session reads: getSessionWithStateSQL (Postgres) adds
// sessionStateColumns.
const (
	getSessionSQL          = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = ? AND expires_at > ?`
	getSessionWithStateSQL = `SELECT ` + sessionColumns + `, ` + sessionStateColumns +
		` FROM sessions WHERE id = ? AND expires_at > ?`
)

// UpdateSessionTokens stores the result of a token refresh: tokens, claims,
// epoch and expiries. It is a compare-and-swap on s.Generation: when the row
// is no longer at that generation it returns ErrSessionChanged and writes
// nothing. On success s.Generation is advanced.
func (db *DB) UpdateSessionTokens(ctx context.Context, s *Session) error {
	return db.InTx(ctx, func(tx *Tx) error { return tx.UpdateSessionTokens(ctx, s) })
}

// UpdateSessionTokens is UpdateSessionTokens inside a transaction.
func (tx *Tx) UpdateSessionTokens(ctx context.Context, s *Session) error {
	perms, roles, err := encodeClaims(s)
	if err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	res, err := tx.Exec(ctx, `UPDATE sessions SET org_code = ?, email = ?, name = ?, tokens = ?, permissions = ?,
		roles = ?, claims_epoch = ?, access_issued_at = ?, access_expires_at = ?, refresh_expires_at = ?,
		refreshed_at = ?, expires_at = ?, claims_at = ?, generation = generation + 1
		WHERE id = ? AND generation = ?`,
		s.OrgCode, s.Email, s.Name, s.Tokens, perms, roles, s.ClaimsEpoch, Millis(s.AccessIssuedAt),
		Millis(s.AccessExpiresAt), Millis(s.RefreshExpiresAt), Millis(s.RefreshedAt), Millis(s.ExpiresAt),
		Millis(s.ClaimsAt), s.ID, s.Generation)
	if err != nil {
		return fmt.Errorf("update session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update session: %w", err)
	} else if n == 0 {
		return ErrSessionChanged
	}
	if err := replaceSessionPermissions(ctx, tx, s.ID, s.Permissions); err != nil {
		return err
	}
	s.Generation++
	return nil
}

func replaceSessionPermissions(ctx context.Context, tx *Tx, id string, keys []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM session_permissions WHERE session_id = ?`, id); err != nil {
		return fmt.Errorf("session permissions: %w", err)
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, err := tx.Exec(ctx, `INSERT INTO session_permissions (session_id, permission_key) VALUES (?, ?)`, id, k); err != nil {
			return fmt.Errorf("session permissions: %w", err)
		}
	}
	return nil
}

// SaveSessionValues stores the encrypted gorilla/sessions values of a session.
// It does not touch the generation: values are independent of tokens.
func (db *DB) SaveSessionValues(ctx context.Context, id string, values []byte) error {
	if _, err := db.Exec(ctx, `UPDATE sessions SET web_values = ? WHERE id = ?`, values, id); err != nil {
		return fmt.Errorf("save session values: %w", err)
	}
	return nil
}

// TouchSession records that the session was used at t. The session store
// calls it at most once a minute per session, through a cached prepared
// statement.
func (db *DB) TouchSession(ctx context.Context, id string, t time.Time) error {
	if _, err := db.execPrepared(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, Millis(t), id); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession removes one session. Deleting a missing session is not an
// error.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	return db.InTx(ctx, func(tx *Tx) error {
		// session_permissions cascades, but delete explicitly so that a
		// database without foreign keys enforced stays clean too.
		if _, err := tx.Exec(ctx, `DELETE FROM session_permissions WHERE session_id = ?`, id); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete session: %w", err)
		}
		return nil
	})
}

// DeleteUserSessions removes every session of a user and reports how many
// there were.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM session_permissions WHERE session_id IN
			(SELECT id FROM sessions WHERE user_id = ?)`, userID); err != nil {
			return fmt.Errorf("delete user sessions: %w", err)
		}
		res, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
		if err != nil {
			return fmt.Errorf("delete user sessions: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// DeleteExpiredSessions removes sessions whose expiry is before now and, when
// idleBefore is not zero, sessions last used before idleBefore (the idle
// timeout): a session nobody uses stops counting as live on the admin's pages
// without waiting for its owner's next request.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	const dead = `expires_at <= ? OR (CAST(? AS BIGINT) > 0 AND last_seen_at <= ?)`
	idle := Millis(idleBefore) // 0 when there is no idle timeout
	var n int64
	err := db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM session_permissions WHERE session_id IN
			(SELECT id FROM sessions WHERE `+dead+`)`, Millis(now), idle, idle); err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		res, err := tx.Exec(ctx, `DELETE FROM sessions WHERE `+dead, Millis(now), idle, idle)
		if err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// UserSessions lists a user's live sessions, newest first.
func (db *DB) UserSessions(ctx context.Context, userID string) ([]Session, error) {
	return db.listSessions(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND expires_at > ? ORDER BY created_at DESC`, userID, time.Now().UnixMilli())
}

// SessionsWithPermission lists the live sessions whose access token carries
// the permission key, oldest first.
func (db *DB) SessionsWithPermission(ctx context.Context, key string) ([]Session, error) {
	return db.listSessions(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE id IN (SELECT session_id FROM session_permissions WHERE permission_key = ?)
		AND expires_at > ? ORDER BY created_at`, key, time.Now().UnixMilli())
}

// UsersWithPermission returns the distinct user ids of live sessions whose
// access token carries the permission key.
func (db *DB) UsersWithPermission(ctx context.Context, key string) ([]string, error) {
	return usersWithPermission(ctx, db, key)
}

// UsersWithPermission is UsersWithPermission inside the transaction.
func (tx *Tx) UsersWithPermission(ctx context.Context, key string) ([]string, error) {
	return usersWithPermission(ctx, tx, key)
}

func usersWithPermission(ctx context.Context, q querier, key string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT s.user_id FROM sessions s
		JOIN session_permissions p ON p.session_id = s.id
		WHERE p.permission_key = ? AND s.expires_at > ? ORDER BY s.user_id`, key, time.Now().UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("users with permission: %w", err)
	}
	ids, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("users with permission: %w", err)
	}
	return ids, nil
}

func (db *DB) listSessions(ctx context.Context, q string, args ...any) ([]Session, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		s, err := scanSession(rows, false)
		if err != nil {
			return nil, err
		}
		out = append(out, *s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}
