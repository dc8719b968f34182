package kinde

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

// kindeUserUpdated is the decoded payload of Kinde's published test token.
const kindeUserUpdated = `{
  "data": { "user": {
    "email": "daniel@kinde.com", "first_name": "Daniel", "id": "kp_65b28d71bba14fa380d56d2d8d3503da",
    "is_password_reset_requested": false, "is_suspended": false, "last_name": "Rivers",
    "organizations": [ { "code": "org_590d7f1a86a", "permissions": null, "roles": null } ],
    "phone": null, "username": "daniel" } },
  "event_id": "event_018f331a3178f7fef284b95fe6770384",
  "source": "admin",
  "timestamp": "2024-05-01T17:41:45.592145+10:00",
  "type": "user.updated"
}`

func TestParseEventValid(t *testing.T) {
	ev, err := ParseEvent([]byte(kindeUserUpdated))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != EventUserUpdated || ev.EventID != "event_018f331a3178f7fef284b95fe6770384" || ev.Source != "admin" {
		t.Fatalf("unexpected event %+v", ev)
	}
	want := time.Date(2024, 5, 1, 7, 41, 45, 592145000, time.UTC)
	if !ev.Timestamp.Equal(want) {
		t.Errorf("Timestamp = %v, want %v", ev.Timestamp, want)
	}
	u, err := ev.User()
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "kp_65b28d71bba14fa380d56d2d8d3503da" || u.Email != "daniel@kinde.com" ||
		len(u.Organizations) != 1 || u.Organizations[0].Code != "org_590d7f1a86a" {
		t.Errorf("unexpected user %+v", u)
	}
	if _, err := ev.Permission(); !errors.Is(err, ErrMissingField) {
		t.Errorf("Permission() on a user event: err = %v, want ErrMissingField", err)
	}
}

func TestParseEventHelpers(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		check   func(*testing.T, *Event)
	}{
		{"permission deleted carries only the id",
			`{"data":{"permission":{"id":"0190a1b2"}},"event_id":"event_1","source":"api","timestamp":"2026-02-03T12:00:00.000000+00:00","type":"permission.deleted"}`,
			func(t *testing.T, ev *Event) {
				p, err := ev.Permission()
				if err != nil || p.ID != "0190a1b2" || p.Key != "" {
					t.Fatalf("Permission() = %+v, %v", p, err)
				}
			}},
		{"permission updated",
			`{"data":{"permission":{"id":"p1","key":"read:reports","name":"Read","description":"d"}},"event_id":"event_2","type":"permission.updated"}`,
			func(t *testing.T, ev *Event) {
				p, err := ev.Permission()
				if err != nil || p.Key != "read:reports" || p.Name != "Read" {
					t.Fatalf("Permission() = %+v, %v", p, err)
				}
			}},
		{"role updated",
			`{"data":{"role":{"id":"r1","key":"analyst","name":"Analyst","is_default_role":true}},"event_id":"event_3","type":"role.updated"}`,
			func(t *testing.T, ev *Event) {
				r, err := ev.Role()
				if err != nil || r.Key != "analyst" || !r.IsDefaultRole {
					t.Fatalf("Role() = %+v, %v", r, err)
				}
			}},
		{"user updated with roles as strings or objects, and event_timestamp",
			`{"data":{"user":{"id":"kp_1","organizations":[{"code":"org_a","roles":["admin",{"id":"r2","key":"viewer"}],"permissions":null}]}},"event_id":"event_9","event_timestamp":"2026-02-03T12:00:00Z","type":"user.updated"}`,
			func(t *testing.T, ev *Event) {
				u, err := ev.User()
				if err != nil || len(u.Organizations) != 1 {
					t.Fatalf("User() = %+v, %v", u, err)
				}
				if !ev.Timestamp.Equal(time.Date(2026, 2, 3, 12, 0, 0, 0, time.UTC)) {
					t.Fatalf("Timestamp = %v, want event_timestamp's", ev.Timestamp)
				}
				roles := u.Organizations[0].Roles
				if len(roles) != 2 || roles[0] != (EventRef{Key: "admin"}) || roles[1] != (EventRef{ID: "r2", Key: "viewer"}) {
					t.Fatalf("roles = %+v", roles)
				}
			}},
		{"user deleted with colon id",
			`{"data":{"user":{"id":"kp:abc"}},"event_id":"event_4","type":"user.deleted"}`,
			func(t *testing.T, ev *Event) {
				u, err := ev.User()
				if err != nil || u.ID != "kp_abc" {
					t.Fatalf("User() = %+v, %v", u, err)
				}
			}},
		{"organization deleted, nested",
			`{"data":{"organization":{"code":"org_acme"}},"event_id":"event_5","type":"organization.deleted"}`,
			func(t *testing.T, ev *Event) {
				o, err := ev.Organization()
				if err != nil || o.Code != "org_acme" {
					t.Fatalf("Organization() = %+v, %v", o, err)
				}
			}},
		{"organization deleted, flat",
			`{"data":{"code":"org_acme"},"event_id":"event_6","type":"organization.deleted"}`,
			func(t *testing.T, ev *Event) {
				o, err := ev.Organization()
				if err != nil || o.Code != "org_acme" {
					t.Fatalf("Organization() = %+v, %v", o, err)
				}
			}},
		{"numeric timestamp",
			`{"event_id":"event_7","type":"role.created","timestamp":1724626727}`,
			func(t *testing.T, ev *Event) {
				if ev.Timestamp.Unix() != 1724626727 {
					t.Fatalf("Timestamp = %v", ev.Timestamp)
				}
				if ev.Data != nil {
					t.Fatalf("Data = %s, want nil", ev.Data)
				}
			}},
		{"unknown top-level fields tolerated",
			`{"event_id":"event_8","type":"user.authenticated","ip_address":"127.0.0.1","data":null}`,
			func(t *testing.T, ev *Event) {
				if _, err := ev.User(); !errors.Is(err, ErrMissingField) {
					t.Fatalf("User() err = %v, want ErrMissingField", err)
				}
			}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(test.payload))
			if err != nil {
				t.Fatal(err)
			}
			test.check(t, ev)
		})
	}
}

func TestParseEventRejects(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		missing bool // also ErrMissingField
	}{
		{"empty", ``, false},
		{"null", `null`, false},
		{"array", `[]`, false},
		{"not json", `hello`, false},
		{"trailing data", `{"type":"user.updated","event_id":"e"} {}`, false},
		{"missing type", `{"event_id":"e"}`, true},
		{"missing event_id", `{"type":"user.updated"}`, true},
		{"empty type", `{"type":"","event_id":"e"}`, true},
		{"null event_id", `{"type":"user.updated","event_id":null}`, true},
		{"type not a string", `{"type":1,"event_id":"e"}`, false},
		{"type case differs", `{"Type":"user.updated","event_id":"e"}`, true},
		{"type bad form", `{"type":"User Updated","event_id":"e"}`, false},
		{"type no dot", `{"type":"user","event_id":"e"}`, false},
		{"event_id with space", `{"type":"user.updated","event_id":"a b"}`, false},
		{"source not a string", `{"type":"user.updated","event_id":"e","source":{}}`, false},
		{"bad timestamp", `{"type":"user.updated","event_id":"e","timestamp":"yesterday"}`, false},
		{"negative timestamp", `{"type":"user.updated","event_id":"e","timestamp":-5}`, false},
		{"fractional timestamp", `{"type":"user.updated","event_id":"e","timestamp":1.5}`, false},
		{"data is a string", `{"type":"user.updated","event_id":"e","data":"x"}`, false},
		{"data is an array", `{"type":"user.updated","event_id":"e","data":[1]}`, false},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(test.payload))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseEvent = %+v, %v; want ErrMalformed", ev, err)
			}
			if test.missing != errors.Is(err, ErrMissingField) {
				t.Fatalf("ErrMissingField = %v, want %v (err %v)", !test.missing, test.missing, err)
			}
		})
	}
}

// TestParseEventTime: the event's time comes from "timestamp", else from
// "event_timestamp", in either form; a malformed one of either refuses the
// event, and neither leaves it zero (the webhook handler refuses that).
func TestParseEventTime(t *testing.T) {
	at := time.Date(2026, 2, 3, 12, 0, 0, 0, time.UTC)
	later := at.Add(time.Hour)
	tests := []struct {
		name   string
		fields string
		want   time.Time // zero: no time
	}{
		{"timestamp string", `"timestamp":"2026-02-03T12:00:00Z"`, at},
		{"timestamp seconds", `"timestamp":` + strconv.FormatInt(at.Unix(), 10), at},
		{"event_timestamp string", `"event_timestamp":"2026-02-03T14:00:00+02:00"`, at},
		{"event_timestamp seconds", `"event_timestamp":` + strconv.FormatInt(at.Unix(), 10), at},
		{"timestamp first", `"event_timestamp":"2026-02-03T13:00:00Z","timestamp":"2026-02-03T12:00:00Z"`, at},
		{"event_timestamp when timestamp is null", `"timestamp":null,"event_timestamp":"2026-02-03T13:00:00Z"`, later},
		{"neither", `"source":"api"`, time.Time{}},
		{"both null", `"timestamp":null,"event_timestamp":null`, time.Time{}},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(`{"type":"user.updated","event_id":"e",` + test.fields + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Timestamp.Equal(test.want) || ev.Timestamp.IsZero() != test.want.IsZero() {
				t.Fatalf("Timestamp = %v, want %v", ev.Timestamp, test.want)
			}
		})
	}

	bad := []struct{ name, fields string }{
		{"event_timestamp not RFC 3339", `"event_timestamp":"yesterday"`},
		{"event_timestamp negative", `"event_timestamp":-5`},
		{"event_timestamp fractional", `"event_timestamp":1.5`},
		{"event_timestamp an object", `"event_timestamp":{}`},
		{"good timestamp, bad event_timestamp", `"timestamp":"2026-02-03T12:00:00Z","event_timestamp":"x"`},
		{"bad timestamp, good event_timestamp", `"timestamp":"x","event_timestamp":"2026-02-03T12:00:00Z"`},
	}
	for _, test := range bad {
		t.Run(test.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(`{"type":"user.updated","event_id":"e",` + test.fields + `}`))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseEvent = %+v, %v; want ErrMalformed", ev, err)
			}
		})
	}
}

func TestEventHelpersRejectMissingIDs(t *testing.T) {
	ev, err := ParseEvent([]byte(`{"type":"permission.deleted","event_id":"e","data":{"permission":{},"role":{"key":"x"},"user":{"id":""},"organization":{"name":"n"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Permission(); !errors.Is(err, ErrMissingField) {
		t.Errorf("Permission: %v", err)
	}
	if _, err := ev.Role(); !errors.Is(err, ErrMissingField) {
		t.Errorf("Role: %v", err)
	}
	if _, err := ev.User(); !errors.Is(err, ErrMissingField) {
		t.Errorf("User: %v", err)
	}
	if _, err := ev.Organization(); !errors.Is(err, ErrMissingField) {
		t.Errorf("Organization: %v", err)
	}
	bad, err := ParseEvent([]byte(`{"type":"role.deleted","event_id":"e","data":{"role":"r1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Role(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Role with a string: %v", err)
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(kindeUserUpdated))
	f.Add([]byte(`{"type":"organization.deleted","event_id":"e","data":{"code":"x"}}`))
	f.Add([]byte(`{"type":"a.b","event_id":"e","timestamp":99999999999999999999}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := ParseEvent(payload)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if ev.Type == "" || ev.EventID == "" {
			t.Fatalf("accepted event without type or id: %+v", ev)
		}
		_, _ = ev.Permission()
		_, _ = ev.Role()
		_, _ = ev.User()
		_, _ = ev.Organization()
	})
}
