package kinde

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Event is a Kinde event, as delivered by a webhook or returned by
// GET /events/{id}.
type Event struct {
	Type      string          // e.g. "permission.deleted"
	EventID   string          // e.g. "event_0190…"; dedupe key when no webhook-id header
	Source    string          // "admin", "api" or "user"; may be empty
	Timestamp time.Time       // zero when absent
	Data      json.RawMessage // the "data" object; nil when absent or null
}

// Event types permsync acts on.
const (
	EventPermissionCreated   = "permission.created"
	EventPermissionUpdated   = "permission.updated"
	EventPermissionDeleted   = "permission.deleted"
	EventRoleCreated         = "role.created"
	EventRoleUpdated         = "role.updated"
	EventRoleDeleted         = "role.deleted"
	EventUserCreated         = "user.created"
	EventUserUpdated         = "user.updated"
	EventUserDeleted         = "user.deleted"
	EventOrganizationUpdated = "organization.updated"
	EventOrganizationDeleted = "organization.deleted"
)

// Limits on the identifying fields of an event.
const (
	maxEventTypeLen = 64
	maxEventIDLen   = 128
)

// EventPermission is data.permission of a permission.* event. Only ID is set
// for permission.deleted.
type EventPermission struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// EventRole is data.role of a role.* event. Only ID is set for role.deleted.
type EventRole struct {
	ID            string `json:"id"`
	Key           string `json:"key"`
	Name          string `json:"name"`
	Description   string `json:"description"`
	IsDefaultRole bool   `json:"is_default_role"`
}

// EventRef is a role or permission reference inside an event. Kinde's
// payloads are documented both as {id, key} objects and as bare strings
// (Kinde's webhook library types user.updated's organizations[].roles as
// strings); which one Kinde sends is not settled, so both decode: a string
// becomes the Key.
type EventRef struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// UnmarshalJSON accepts {"id","key"} or a bare string (the key).
func (r *EventRef) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		*r = EventRef{}
		return json.Unmarshal(b, &r.Key)
	}
	type plain EventRef
	return json.Unmarshal(b, (*plain)(r))
}

// EventUserOrganization is one organization of data.user, with the roles and
// permissions the user holds there (nil when Kinde sends null).
type EventUserOrganization struct {
	Code        string     `json:"code"`
	Roles       []EventRef `json:"roles"`
	Permissions []EventRef `json:"permissions"`
}

// EventUser is data.user of a user.* event. Only ID is set for user.deleted.
type EventUser struct {
	ID            string                  `json:"id"` // normalised with NormalizeUserID
	Email         string                  `json:"email"`
	FirstName     string                  `json:"first_name"`
	LastName      string                  `json:"last_name"`
	Username      string                  `json:"username"`
	IsSuspended   bool                    `json:"is_suspended"`
	Organizations []EventUserOrganization `json:"organizations"`
}

// EventOrganization is the organization of an organization.* event.
type EventOrganization struct {
	Code       string `json:"code"`
	Name       string `json:"name"`
	Handle     string `json:"handle"`
	ExternalID string `json:"external_id"`
}

// ParseEvent parses an event payload strictly: one JSON object and nothing
// after it; "type" and "event_id" present, non-empty strings of sane form;
// "source" a string; "timestamp" and "event_timestamp" each an RFC 3339
// string or a number of Unix seconds (Timestamp is the first present of the
// two); "data" an object or null. Field names match exactly. Unknown
// top-level fields are tolerated so that Kinde can add some. Errors wrap
// ErrMalformed (and ErrMissingField for a missing type or event_id).
func ParseEvent(payload []byte) (*Event, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return nil, fmt.Errorf("%w: payload is not a JSON object: %w", ErrMalformed, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: payload is null", ErrMalformed)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the payload object", ErrMalformed)
	}

	ev := &Event{}
	var err error
	if ev.Type, err = requiredString(top, "type"); err != nil {
		return nil, err
	}
	if !validEventType(ev.Type) {
		return nil, fmt.Errorf("%w: invalid type %.64q", ErrMalformed, ev.Type)
	}
	if ev.EventID, err = requiredString(top, "event_id"); err != nil {
		return nil, err
	}
	if !validEventID(ev.EventID) {
		return nil, fmt.Errorf("%w: invalid event_id %.64q", ErrMalformed, ev.EventID)
	}
	if raw, ok := top["source"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &ev.Source); err != nil {
			return nil, fmt.Errorf("%w: source is not a string", ErrMalformed)
		}
	}
	if ev.Timestamp, err = eventTime(top); err != nil {
		return nil, err
	}
	if raw, ok := top["data"]; ok && !isNull(raw) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] != '{' {
			return nil, fmt.Errorf("%w: data is not an object", ErrMalformed)
		}
		ev.Data = raw
	}
	return ev, nil
}

// requiredString reads a non-empty string field.
func requiredString(top map[string]json.RawMessage, name string) (string, error) {
	raw, ok := top[name]
	if !ok || isNull(raw) {
		return "", fmt.Errorf("%w: %w: %s", ErrMalformed, ErrMissingField, name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, name)
	}
	if s == "" {
		return "", fmt.Errorf("%w: %w: %s is empty", ErrMalformed, ErrMissingField, name)
	}
	return s, nil
}

// validEventType accepts dotted lower-case names such as "permission.deleted".
func validEventType(s string) bool {
	if len(s) > maxEventTypeLen || !strings.Contains(s, ".") || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// validEventID accepts short ids of printable ASCII without spaces.
func validEventID(s string) bool {
	if len(s) > maxEventIDLen {
		return false
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// eventTime reads the event's time from "timestamp" (the name Kinde's webhook
// library's types use) or, when that is absent, from "event_timestamp" (the
// name in Kinde's documented payloads). Both are checked when both are sent:
// a malformed one refuses the event even if the other is good. Zero when
// neither is present (or both are null).
func eventTime(top map[string]json.RawMessage) (time.Time, error) {
	var at time.Time
	for _, name := range []string{"timestamp", "event_timestamp"} {
		raw, ok := top[name]
		if !ok || isNull(raw) {
			continue
		}
		t, err := parseTimestamp(name, raw)
		if err != nil {
			return time.Time{}, err
		}
		if at.IsZero() {
			at = t
		}
	}
	return at, nil
}

// parseTimestamp accepts an RFC 3339 string (Kinde's documented form) or a
// number of Unix seconds (the OpenAPI spec's type).
func parseTimestamp(name string, raw json.RawMessage) (time.Time, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s %.40q is not RFC 3339", ErrMalformed, name, s)
		}
		return t, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is neither a string nor a number", ErrMalformed, name)
	}
	secs, err := n.Int64()
	if err != nil || secs < 0 || secs > 1<<40 {
		return time.Time{}, fmt.Errorf("%w: %s %q out of range", ErrMalformed, name, n.String())
	}
	return time.Unix(secs, 0).UTC(), nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// dataField decodes data.<name> into v. It reports ErrMissingField when data
// or the field is absent.
func (e *Event) dataField(name string, v any) error {
	if len(e.Data) == 0 {
		return fmt.Errorf("%w: %w: data", ErrMalformed, ErrMissingField)
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &data); err != nil {
		return fmt.Errorf("%w: data: %w", ErrMalformed, err)
	}
	raw, ok := data[name]
	if !ok || isNull(raw) {
		return fmt.Errorf("%w: %w: data.%s", ErrMalformed, ErrMissingField, name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: data.%s: %w", ErrMalformed, name, err)
	}
	return nil
}

// Permission returns data.permission; its ID is required.
func (e *Event) Permission() (*EventPermission, error) {
	var p EventPermission
	if err := e.dataField("permission", &p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, fmt.Errorf("%w: %w: data.permission.id", ErrMalformed, ErrMissingField)
	}
	return &p, nil
}

// Role returns data.role; its ID is required.
func (e *Event) Role() (*EventRole, error) {
	var r EventRole
	if err := e.dataField("role", &r); err != nil {
		return nil, err
	}
	if r.ID == "" {
		return nil, fmt.Errorf("%w: %w: data.role.id", ErrMalformed, ErrMissingField)
	}
	return &r, nil
}

// User returns data.user with a normalised ID; the ID is required.
func (e *Event) User() (*EventUser, error) {
	var u EventUser
	if err := e.dataField("user", &u); err != nil {
		return nil, err
	}
	u.ID = NormalizeUserID(u.ID)
	if u.ID == "" {
		return nil, fmt.Errorf("%w: %w: data.user.id", ErrMalformed, ErrMissingField)
	}
	return &u, nil
}

// Organization returns the event's organization, read from data.organization
// or, failing that, from data itself; its Code is required.
func (e *Event) Organization() (*EventOrganization, error) {
	var o EventOrganization
	err := e.dataField("organization", &o)
	if errors.Is(err, ErrMissingField) && len(e.Data) > 0 {
		o = EventOrganization{}
		if uerr := json.Unmarshal(e.Data, &o); uerr != nil {
			return nil, fmt.Errorf("%w: data: %w", ErrMalformed, uerr)
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	if o.Code == "" {
		return nil, fmt.Errorf("%w: %w: organization code", ErrMalformed, ErrMissingField)
	}
	return &o, nil
}
