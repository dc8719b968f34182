package devkinde

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// eventTypeInfo describes one Kinde event type (GET /api/v1/event_types).
type eventTypeInfo struct {
	Code   string
	Name   string
	Origin string
}

// eventTypes is Kinde's list of webhook event types. devkinde
// emits the user-management and authentication ones; the others can be
// subscribed to but never fire.
var eventTypes = []eventTypeInfo{
	{"organization.created", "Organization created", "kinde"},
	{"user.created", "User created", "kinde"},
	{"user.authentication_failed", "User authentication failed", "kinde"},
	{"user.authenticated", "User authenticated", "kinde"},
	{"subscriber.created", "Subscriber created", "kinde"},
	{"access_request.created", "Access request created", "kinde"},
	{"passkey.added", "Passkey added", "kinde"},
	{"passkey.removed", "Passkey removed", "kinde"},
	{"role.created", "Role created", "kinde"},
	{"role.updated", "Role updated", "kinde"},
	{"role.deleted", "Role deleted", "kinde"},
	{"permission.created", "Permission created", "kinde"},
	{"permission.updated", "Permission updated", "kinde"},
	{"permission.deleted", "Permission deleted", "kinde"},
	{"organization.updated", "Organization updated", "kinde"},
	{"organization.deleted", "Organization deleted", "kinde"},
	{"user.updated", "User updated", "kinde"},
	{"user.deleted", "User deleted", "kinde"},
	{"customer.agreement_cancelled", "Customer agreement cancelled", "kinde"},
	{"customer.agreement_created", "Customer agreement created", "kinde"},
	{"customer.invoice_overdue", "Customer invoice overdue", "kinde"},
	{"customer.meter_usage_updated", "Customer meter usage updated", "kinde"},
	{"customer.payment_failed", "Customer payment failed", "kinde"},
	{"customer.payment_succeeded", "Customer payment succeeded", "kinde"},
	{"customer.plan_created", "Customer plan created", "kinde"},
	{"customer.plan_assigned", "Customer plan assigned", "kinde"},
	{"customer.plan_changed", "Customer plan changed", "kinde"},
}

func isEventType(code string) bool {
	return slices.ContainsFunc(eventTypes, func(e eventTypeInfo) bool { return e.Code == code })
}

// kindeTimestamp formats event times the way Kinde does
// ("2024-05-01T17:41:45.592145+00:00").
func kindeTimestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000-07:00")
}

// emitLocked records an event for delivery once the current update commits.
// source is "api" (Management API), "user" (sign-in pages) or "admin".
func (s *Server) emitLocked(st *state, typ, source string, data any, now time.Time) {
	if typ == "user.updated" && s.quirks.RolesAsStrings {
		data = rolesAsStrings(data)
	}
	raw, err := json.Marshal(data)
	if err != nil {
		s.log.Error("devkinde encode event", "type", typ, "error", err)
		return
	}
	s.pendingEvents = append(s.pendingEvents, &event{Type: typ, EventID: newEventID(), Source: source,
		Timestamp: kindeTimestamp(now), Data: raw, Created: now})
}

// webhookPayload is the JWT payload of a webhook: no iss, aud or exp claims,
// exactly like Kinde's. Kinde's public payloads also carry event_timestamp.
type webhookPayload struct {
	Type           string          `json:"type"`
	EventID        string          `json:"event_id"`
	Source         string          `json:"source"`
	Timestamp      string          `json:"timestamp"`
	EventTimestamp string          `json:"event_timestamp"`
	Data           json.RawMessage `json:"data"`
}

// deliveryJob is one event for one webhook; body and msgID stay the same
// across retries.
type deliveryJob struct {
	webhookID string
	endpoint  string
	msgID     string
	eventID   string
	eventType string
	body      string
}

// planDeliveriesLocked signs each event once per subscribed webhook.
func (s *Server) planDeliveriesLocked(evs []*event) []*deliveryJob {
	var jobs []*deliveryJob
	for _, ev := range evs {
		var body string
		for _, wh := range s.st.sortedWebhooks() {
			if !slices.Contains(wh.EventTypes, ev.Type) {
				continue
			}
			if body == "" {
				tok, err := s.key.sign(webhookPayload{Type: ev.Type, EventID: ev.EventID, Source: ev.Source,
					Timestamp: ev.Timestamp, EventTimestamp: ev.Timestamp, Data: ev.Data})
				if err != nil {
					s.log.Error("devkinde sign webhook", "error", err)
					break
				}
				body = tok
			}
			jobs = append(jobs, &deliveryJob{webhookID: wh.ID, endpoint: wh.Endpoint, msgID: newDeliveryID(),
				eventID: ev.EventID, eventType: ev.Type, body: body})
		}
	}
	return jobs
}

// DeliveryRecord is one webhook delivery attempt, as listed by
// GET /_devkinde/deliveries.
type DeliveryRecord struct {
	WebhookID string    `json:"webhook_id"`
	MessageID string    `json:"webhook_msg_id"` // the webhook-id header, stable across retries
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Endpoint  string    `json:"endpoint"`
	Attempt   int       `json:"attempt"`
	Status    int       `json:"status"` // 0 when no HTTP response arrived
	Error     string    `json:"error,omitempty"`
	Delivered bool      `json:"delivered"`
	Time      time.Time `json:"time"`
}

const (
	maxDeliveryAttempts = 8
	maxDeliveryLog      = 5000
	deliveryTimeout     = 10 * time.Second
)

// deliverer posts webhooks asynchronously, retrying with exponential backoff
// until the endpoint answers 200 or the attempts run out.
type deliverer struct {
	s      *Server
	ctx    context.Context
	cancel context.CancelFunc
	client *http.Client

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	log    []DeliveryRecord
}

func newDeliverer(s *Server) *deliverer {
	ctx, cancel := context.WithCancel(context.Background())
	return &deliverer{s: s, ctx: ctx, cancel: cancel, client: &http.Client{Timeout: deliveryTimeout}}
}

func (d *deliverer) enqueue(jobs []*deliveryJob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	for _, j := range jobs {
		d.wg.Add(1)
		go d.run(j)
	}
}

func (d *deliverer) close() {
	d.mu.Lock()
	d.closed = true
	d.cancel()
	d.mu.Unlock()
	d.wg.Wait()
}

// backoff is the wait before attempt n+1: base·2^(n-1), capped at base·64.
func (d *deliverer) backoff(n int) time.Duration {
	base := d.s.cfg.WebhookRetryBase
	return base << min(n-1, 6)
}

func (d *deliverer) run(j *deliveryJob) {
	defer d.wg.Done()
	for attempt := 1; attempt <= maxDeliveryAttempts; attempt++ {
		status, err := d.post(j)
		rec := DeliveryRecord{WebhookID: j.webhookID, MessageID: j.msgID, EventID: j.eventID, EventType: j.eventType,
			Endpoint: j.endpoint, Attempt: attempt, Status: status, Delivered: status == http.StatusOK,
			Time: d.s.now().UTC()}
		if err != nil {
			rec.Error = err.Error()
		}
		d.record(rec)
		if rec.Delivered || d.ctx.Err() != nil {
			return
		}
		d.s.log.Debug("devkinde webhook delivery failed", "webhook_id", j.webhookID, "event_type", j.eventType,
			"attempt", attempt, "status", status)
		if attempt == maxDeliveryAttempts {
			d.s.log.Warn("devkinde webhook given up", "webhook_id", j.webhookID, "event_id", j.eventID)
			return
		}
		t := time.NewTimer(d.backoff(attempt))
		select {
		case <-d.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (d *deliverer) post(j *deliveryJob) (int, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, j.endpoint, bytes.NewBufferString(j.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/jwt")
	req.Header.Set("webhook-id", j.msgID)
	req.Header.Set("User-Agent", "devkinde-webhooks")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

func (d *deliverer) record(r DeliveryRecord) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log = keepLast(append(d.log, r), maxDeliveryLog)
}

// Deliveries returns the webhook delivery log, oldest first (same data as
// GET /_devkinde/deliveries).
func (s *Server) Deliveries() []DeliveryRecord {
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	return slices.Clone(s.hooks.log)
}

// Event payload builders: the data shapes of Kinde's webhook events.

func userEventData(st *state, u *user) map[string]any {
	orgs := []map[string]any{}
	for _, code := range u.OrgOrder {
		m := u.Orgs[code]
		if m == nil {
			continue
		}
		var roles, perms []map[string]string
		for _, r := range st.userRoles(u, code) {
			roles = append(roles, map[string]string{"id": r.ID, "key": r.Key})
		}
		for _, pid := range m.Permissions {
			if p := st.Permissions[pid]; p != nil {
				perms = append(perms, map[string]string{"id": p.ID, "key": p.Key})
			}
		}
		orgs = append(orgs, map[string]any{"code": code, "roles": roles, "permissions": perms})
	}
	return map[string]any{
		"id": u.ID, "email": u.Email, "first_name": u.FirstName, "last_name": u.LastName, "username": nil,
		"phone": nil, "is_suspended": u.IsSuspended, "is_password_reset_requested": u.PasswordResetRequested,
		"organizations": orgs,
	}
}

func permissionEventData(p *permission) map[string]any {
	return map[string]any{"permission": map[string]any{"id": p.ID, "key": p.Key, "name": p.Name, "description": p.Description}}
}

func roleEventData(r *role) map[string]any {
	return map[string]any{"role": map[string]any{"id": r.ID, "key": r.Key, "name": r.Name,
		"description": r.Description, "is_default_role": r.IsDefaultRole}}
}

// orgEventData always carries external_id, null when unset, as Kinde's
// webhook library declares it.
func orgEventData(o *organization) map[string]any {
	d := map[string]any{"code": o.Code, "name": o.Name, "handle": o.Handle, "external_id": nil}
	if o.ExternalID != "" {
		d["external_id"] = o.ExternalID
	}
	return map[string]any{"organization": d}
}

// rolesAsStrings rewrites user.updated data so that organizations[].roles
// lists role keys (Quirks.RolesAsStrings).
func rolesAsStrings(data any) any {
	d, _ := data.(map[string]any)
	u, _ := d["user"].(map[string]any)
	orgs, _ := u["organizations"].([]map[string]any)
	for _, o := range orgs {
		roles, _ := o["roles"].([]map[string]string)
		keys := make([]string, 0, len(roles))
		for _, r := range roles {
			keys = append(keys, r["key"])
		}
		o["roles"] = keys
	}
	return data
}
