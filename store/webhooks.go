package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Statuses of a received webhook.
const (
	WebhookReceived  = "received"  // recorded; its job has not finished yet
	WebhookProcessed = "processed" // acted on
	WebhookIgnored   = "ignored"   // nothing to do (an event type we do not act on, a stale event...)
	WebhookFailed    = "failed"    // its job gave up; the error says why
)

// WebhookEvent is one verified Kinde webhook delivery. Payload is the
// verified JSON payload (never the JWS); the store never logs it.
type WebhookEvent struct {
	WebhookID   string // the webhook-id header, or the event id when there was none
	EventID     string
	Type        string
	Source      string
	EventAt     time.Time // the payload's timestamp; zero if absent
	ReceivedAt  time.Time
	Status      string
	Attempts    int
	Error       string // readable, for the admin page
	Outcome     string // what processing did, readable
	FanoutID    string // the fan-out it started, if any
	Payload     []byte
	ProcessedAt time.Time
}

const webhookColumns = `webhook_id, event_id, type, source, event_at, received_at, status, attempts, error,
	outcome, fanout_id, payload, processed_at`

// InsertWebhookEvent records a delivery inside the transaction unless one
// with the same webhook id or event id is already recorded. It reports
// whether the row was inserted (false: a duplicate, nothing changed).
func (tx *Tx) InsertWebhookEvent(ctx context.Context, e *WebhookEvent) (bool, error) {
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = time.Now()
	}
	if e.Status == "" {
		e.Status = WebhookReceived
	}
	res, err := tx.Exec(ctx, `INSERT INTO webhook_events (`+webhookColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		e.WebhookID, e.EventID, e.Type, e.Source, Millis(e.EventAt), Millis(e.ReceivedAt), e.Status, e.Attempts,
		e.Error, e.Outcome, e.FanoutID, string(e.Payload), Millis(e.ProcessedAt))
	if err != nil {
		return false, fmt.Errorf("insert webhook event: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert webhook event: %w", err)
	}
	return n > 0, nil
}

// WebhookEvent returns one recorded delivery, or ErrNotFound.
func (db *DB) WebhookEvent(ctx context.Context, webhookID string) (*WebhookEvent, error) {
	e, err := scanWebhookEvent(db.QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhook_events WHERE webhook_id = ?`,
		webhookID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("webhook event: %w", err)
	}
	return e, nil
}

// WebhookEvents lists the most recent deliveries, newest first; limit ≤ 0
// means 100.
func (db *DB) WebhookEvents(ctx context.Context, limit int) ([]WebhookEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := db.Query(ctx, `SELECT `+webhookColumns+` FROM webhook_events
		ORDER BY received_at DESC, webhook_id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("webhook events: %w", err)
	}
	defer rows.Close()
	var out []WebhookEvent
	for rows.Next() {
		e, err := scanWebhookEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("webhook events: %w", err)
		}
		out = append(out, *e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhook events: %w", err)
	}
	return out, nil
}

// FinishWebhookEvent moves a received delivery to status (processed or
// ignored) with its outcome, inside the transaction. It reports false,
// changing nothing, when the delivery was no longer in WebhookReceived, so
// a job that runs twice acts once.
func (tx *Tx) FinishWebhookEvent(ctx context.Context, webhookID, status, outcome, fanoutID string, attempts int) (bool, error) {
	now := Millis(time.Now())
	res, err := tx.Exec(ctx, `UPDATE webhook_events SET status = ?, outcome = ?, fanout_id = ?, attempts = ?,
		error = '', processed_at = ? WHERE webhook_id = ? AND status = ?`,
		status, outcome, fanoutID, attempts, now, webhookID, WebhookReceived)
	if err != nil {
		return false, fmt.Errorf("finish webhook event: %w", err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// NoteWebhookAttempt records a failed attempt that will be retried.
func (db *DB) NoteWebhookAttempt(ctx context.Context, webhookID string, attempts int, msg string) error {
	_, err := db.Exec(ctx, `UPDATE webhook_events SET attempts = ?, error = ? WHERE webhook_id = ? AND status = ?`,
		attempts, msg, webhookID, WebhookReceived)
	if err != nil {
		return fmt.Errorf("note webhook attempt: %w", err)
	}
	return nil
}

// FailWebhookEvent marks a received delivery failed for good.
func (db *DB) FailWebhookEvent(ctx context.Context, webhookID string, attempts int, msg string) error {
	_, err := db.Exec(ctx, `UPDATE webhook_events SET status = ?, attempts = ?, error = ?, processed_at = ?
		WHERE webhook_id = ? AND status = ?`,
		WebhookFailed, attempts, msg, Millis(time.Now()), webhookID, WebhookReceived)
	if err != nil {
		return fmt.Errorf("fail webhook event: %w", err)
	}
	return nil
}

// PruneWebhookEvents deletes deliveries and rejections received before
// before, and reports how many deliveries went.
func (db *DB) PruneWebhookEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.Exec(ctx, `DELETE FROM webhook_events WHERE received_at < ?`, Millis(before))
	if err != nil {
		return 0, fmt.Errorf("prune webhook events: %w", err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM webhook_rejections WHERE received_at < ?`, Millis(before)); err != nil {
		return 0, fmt.Errorf("prune webhook rejections: %w", err)
	}
	return res.RowsAffected()
}

func scanWebhookEvent(sc scanner) (*WebhookEvent, error) {
	var e WebhookEvent
	var eventAt, received, processed int64
	var payload string
	if err := sc.Scan(&e.WebhookID, &e.EventID, &e.Type, &e.Source, &eventAt, &received, &e.Status, &e.Attempts,
		&e.Error, &e.Outcome, &e.FanoutID, &payload, &processed); err != nil {
		return nil, err
	}
	e.EventAt, e.ReceivedAt, e.ProcessedAt = FromMillis(eventAt), FromMillis(received), FromMillis(processed)
	e.Payload = []byte(payload)
	return &e, nil
}

// WebhookRejection is a delivery refused before it was recorded: a sample
// standing for Refusals refusals of the same reason.
type WebhookRejection struct {
	ReceivedAt time.Time
	HTTPStatus int
	Reason     string // readable and short; never the body
	WebhookID  string // the webhook-id header as sent (unverified), truncated
	Refusals   int    // refusals this row stands for (at least 1)
}

// Bounds of the webhook_rejections table: AddWebhookRejection keeps at most
// MaxWebhookRejections rows, none older than WebhookRejectionRetention.
const (
	MaxWebhookRejections      = 1000
	WebhookRejectionRetention = 7 * 24 * time.Hour
)

// AddWebhookRejection records a refused delivery (a sample of Refusals
// refusals) and trims the table to its bounds.
func (db *DB) AddWebhookRejection(ctx context.Context, r WebhookRejection) error {
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = time.Now()
	}
	r.Refusals = max(r.Refusals, 1)
	_, err := db.Exec(ctx, `INSERT INTO webhook_rejections (received_at, http_status, reason, webhook_id, refusals)
		VALUES (?, ?, ?, ?, ?)`, Millis(r.ReceivedAt), r.HTTPStatus, truncate(r.Reason, 300), truncate(r.WebhookID, 128), r.Refusals)
	if err != nil {
		return fmt.Errorf("add webhook rejection: %w", err)
	}
	if _, err := db.Exec(ctx, `DELETE FROM webhook_rejections WHERE received_at < ? OR id <= (
		SELECT id FROM webhook_rejections ORDER BY id DESC LIMIT 1 OFFSET ?)`,
		Millis(r.ReceivedAt.Add(-WebhookRejectionRetention)), MaxWebhookRejections); err != nil {
		return fmt.Errorf("trim webhook rejections: %w", err)
	}
	return nil
}

// WebhookRejections lists the most recent refused deliveries, newest first.
func (db *DB) WebhookRejections(ctx context.Context, limit int) ([]WebhookRejection, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := db.Query(ctx, `SELECT received_at, http_status, reason, webhook_id, refusals FROM webhook_rejections
		ORDER BY received_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("webhook rejections: %w", err)
	}
	defer rows.Close()
	var out []WebhookRejection
	for rows.Next() {
		var r WebhookRejection
		var at int64
		if err := rows.Scan(&at, &r.HTTPStatus, &r.Reason, &r.WebhookID, &r.Refusals); err != nil {
			return nil, fmt.Errorf("webhook rejections: %w", err)
		}
		r.ReceivedAt = FromMillis(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhook rejections: %w", err)
	}
	return out, nil
}

// WebhookStats summarises deliveries since a time.
type WebhookStats struct {
	Received       int       // verified deliveries recorded
	Failed         int       // of those, failed in processing
	Rejected       int       // refused before recording
	LastReceivedAt time.Time // latest verified delivery ever; zero if none
}

// WebhookStats counts deliveries since since.
func (db *DB) WebhookStats(ctx context.Context, since time.Time) (WebhookStats, error) {
	var st WebhookStats
	var last int64
	err := db.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM webhook_events WHERE received_at >= ?),
		(SELECT COUNT(*) FROM webhook_events WHERE received_at >= ? AND status = ?),
		(SELECT COALESCE(SUM(refusals), 0) FROM webhook_rejections WHERE received_at >= ?),
		(SELECT COALESCE(MAX(received_at), 0) FROM webhook_events)`,
		Millis(since), Millis(since), WebhookFailed, Millis(since)).Scan(&st.Received, &st.Failed, &st.Rejected, &last)
	if err != nil {
		return WebhookStats{}, fmt.Errorf("webhook stats: %w", err)
	}
	st.LastReceivedAt = FromMillis(last)
	return st, nil
}

// DeleteOrgSessions deletes every session in an organization and returns the
// distinct users whose sessions went.
func (db *DB) DeleteOrgSessions(ctx context.Context, orgCode string) ([]string, error) {
	var users []string
	err := db.InTx(ctx, func(tx *Tx) error {
		rows, err := tx.Query(ctx, `SELECT DISTINCT user_id FROM sessions WHERE org_code = ? ORDER BY user_id`, orgCode)
		if err != nil {
			return err
		}
		users, err = scanStrings(rows)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE org_code = ?`, orgCode)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete org sessions: %w", err)
	}
	return users, nil
}

// UsersWithRole returns the distinct user ids of live sessions whose access
// token carries a role with the given id (or, when roleID is empty, key).
func (db *DB) UsersWithRole(ctx context.Context, roleID, roleKey string) ([]string, error) {
	field, val := `"id":`, roleID
	if roleID == "" {
		field, val = `"key":`, roleKey
	}
	if val == "" {
		return nil, nil
	}
	pattern := "%" + likeEscape(field+jsonString(val)) + "%"
	rows, err := db.Query(ctx, `SELECT DISTINCT user_id FROM sessions WHERE roles LIKE ? ESCAPE '\'
		AND expires_at > ? ORDER BY user_id`, pattern, Millis(time.Now()))
	if err != nil {
		return nil, fmt.Errorf("users with role: %w", err)
	}
	ids, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("users with role: %w", err)
	}
	return ids, nil
}

// likeEscape escapes LIKE's wildcards with a backslash.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// jsonString is s as encoding/json writes it (quoted). Ids and keys are
// plain ASCII; anything needing escapes simply will not match.
func jsonString(s string) string { return `"` + s + `"` }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
