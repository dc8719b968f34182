package devkinde

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"permsync/internal/testsupport"
)

// receivedHook is one webhook POST as the receiver saw it.
type receivedHook struct {
	contentType string
	webhookID   string
	body        string
}

// hookReceiver is a local webhook endpoint that fails the first failFirst
// deliveries with a 500.
type hookReceiver struct {
	*httptest.Server
	mu        sync.Mutex
	got       []receivedHook
	failFirst int
}

func newReceiver(t *testing.T, failFirst int) *hookReceiver {
	r := &hookReceiver{failFirst: failFirst}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, receivedHook{req.Header.Get("Content-Type"), req.Header.Get("webhook-id"), string(b)})
		fail := len(r.got) <= r.failFirst
		r.mu.Unlock()
		if fail {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) hooks() []receivedHook {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedHook(nil), r.got...)
}

// fetchJWKS reads the published key set.
func fetchJWKS(t *testing.T, e *testEnv) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	_, body := get(t, http.DefaultClient, e.srv.URL()+"/.well-known/jwks.json")
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// verifyHook verifies a webhook JWS against the JWKS (RS256, by kid) and
// decodes its payload.
func verifyHook(t *testing.T, set jose.JSONWebKeySet, body string) map[string]any {
	t.Helper()
	obj, err := jose.ParseSigned(body, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse JWS: %v", err)
	}
	kid := obj.Signatures[0].Header.KeyID
	keys := set.Key(kid)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in JWKS", kid)
	}
	payload, err := obj.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func registerHook(t *testing.T, e *testEnv, endpoint string, types ...string) string {
	t.Helper()
	var created struct {
		Webhook struct {
			ID       string `json:"id"`
			Endpoint string `json:"endpoint"`
		} `json:"webhook"`
	}
	expectStatus(t, e.call("POST", "/api/v1/webhooks", map[string]any{"name": "test", "endpoint": endpoint,
		"event_types": types}, &created), 200)
	if created.Webhook.Endpoint != endpoint || len(created.Webhook.ID) < 9 || created.Webhook.ID[:8] != "webhook_" {
		t.Fatalf("created %+v", created)
	}
	return created.Webhook.ID
}

func TestWebhooksSignedAndShaped(t *testing.T) {
	e := newEnv(t, roleUpdatedSent)
	rcv := newReceiver(t, 0)
	registerHook(t, e, rcv.URL, "permission.created", "permission.deleted", "role.updated", "user.updated",
		"user.authenticated")

	expectStatus(t, e.call("POST", "/api/v1/permissions", map[string]string{"key": "x:y", "name": "XY"}, nil), 201)
	expectStatus(t, e.call("DELETE", "/api/v1/permissions/"+seedPermDeleteReport, nil, nil), 200)
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+seedRoleViewer+"/permissions", map[string]any{
		"permissions": []map[string]string{{"id": seedPermExportReport}}}, nil), 200)
	expectStatus(t, e.call("POST", "/api/v1/organizations/"+DefaultOrgCode+"/users/"+seedUserBob+"/roles",
		map[string]string{"role_id": seedRoleAdmin}, nil), 200)
	e.login("alice@acme.test")
	// Not subscribed: never delivered.
	expectStatus(t, e.call("POST", "/api/v1/roles", map[string]string{"key": "r2"}, nil), 201)

	testsupport.Eventually(t, 10*time.Second, "5 webhooks", func() bool { return len(rcv.hooks()) >= 5 })
	set := fetchJWKS(t, e)
	byType := map[string]map[string]any{}
	for _, h := range rcv.hooks() {
		if h.contentType != "application/jwt" || h.webhookID == "" {
			t.Errorf("headers: content-type %q webhook-id %q", h.contentType, h.webhookID)
		}
		p := verifyHook(t, set, h.body)
		for _, banned := range []string{"iss", "aud", "exp"} {
			if _, ok := p[banned]; ok {
				t.Errorf("payload has %s", banned)
			}
		}
		if p["source"] == "" || p["timestamp"] == "" || len(p["event_id"].(string)) < 7 || p["event_id"].(string)[:6] != "event_" {
			t.Errorf("envelope %v", p)
		}
		byType[p["type"].(string)] = p
	}
	if len(byType) != 5 || byType["role.created"] != nil {
		t.Fatalf("event types %v", keysOf(byType))
	}
	created := byType["permission.created"]["data"].(map[string]any)["permission"].(map[string]any)
	if created["key"] != "x:y" || created["name"] != "XY" || created["id"] == "" {
		t.Errorf("permission.created data %v", created)
	}
	deleted := byType["permission.deleted"]["data"].(map[string]any)["permission"].(map[string]any)
	if len(deleted) != 1 || deleted["id"] != seedPermDeleteReport {
		t.Errorf("permission.deleted must carry only the id: %v", deleted)
	}
	role := byType["role.updated"]["data"].(map[string]any)["role"].(map[string]any)
	if role["key"] != "viewer" {
		t.Errorf("role.updated %v", role)
	}
	u := byType["user.updated"]["data"].(map[string]any)["user"].(map[string]any)
	orgs := u["organizations"].([]any)
	if u["id"] != seedUserBob || len(orgs) != 1 || len(orgs[0].(map[string]any)["roles"].([]any)) != 2 {
		t.Errorf("user.updated %v", u)
	}
	if byType["user.authenticated"]["data"].(map[string]any)["user"].(map[string]any)["id"] != seedUserAlice {
		t.Errorf("user.authenticated %v", byType["user.authenticated"])
	}

	// The event can be fetched back by id.
	id := byType["permission.deleted"]["event_id"].(string)
	var ev struct {
		Event struct {
			Type    string `json:"type"`
			EventID string `json:"event_id"`
		} `json:"event"`
	}
	expectStatus(t, e.call("GET", "/api/v1/events/"+id, nil, &ev), 200)
	if ev.Event.Type != "permission.deleted" || ev.Event.EventID != id {
		t.Errorf("event %+v", ev)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestWebhookRetriedUntil200WithSameID(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, 2)
	hookID := registerHook(t, e, rcv.URL, "permission.updated")
	expectStatus(t, e.call("PATCH", "/api/v1/permissions/"+seedPermReadReports, map[string]string{"name": "Read"}, nil), 200)

	testsupport.Eventually(t, 10*time.Second, "3 attempts", func() bool { return len(rcv.hooks()) >= 3 })
	hooks := rcv.hooks()
	for _, h := range hooks[1:] {
		if h.webhookID != hooks[0].webhookID || h.body != hooks[0].body {
			t.Errorf("retry changed webhook-id or body: %q vs %q", h.webhookID, hooks[0].webhookID)
		}
	}
	testsupport.Eventually(t, 10*time.Second, "delivery log", func() bool {
		d := e.srv.Deliveries()
		return len(d) == 3 && d[2].Delivered
	})
	resp, body := get(t, http.DefaultClient, e.srv.URL()+"/_devkinde/deliveries")
	expectStatus(t, resp, 200)
	var log []DeliveryRecord
	if err := json.Unmarshal([]byte(body), &log); err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 || log[0].Status != 500 || log[0].Delivered || log[2].Attempt != 3 || log[2].Status != 200 ||
		log[2].WebhookID != hookID || log[2].MessageID != hooks[0].webhookID || log[2].EventType != "permission.updated" {
		t.Errorf("delivery log %+v", log)
	}
}

func TestWebhooksAPI(t *testing.T) {
	e := newEnv(t)
	id := registerHook(t, e, "http://127.0.0.1:1/hook", "user.updated")
	expectStatus(t, e.call("POST", "/api/v1/webhooks", map[string]any{"name": "bad", "endpoint": "http://127.0.0.1:1/",
		"event_types": []string{"no.such_event"}}, nil), 400)
	expectStatus(t, e.call("PATCH", "/api/v1/webhooks/"+id, map[string]any{"event_types": []string{"user.deleted", "role.deleted"}}, nil), 200)
	var list webhooksResponse
	e.call("GET", "/api/v1/webhooks", nil, &list)
	if len(list.Webhooks) != 1 || len(list.Webhooks[0].EventTypes) != 2 || list.Webhooks[0].CreatedOn == "" {
		t.Errorf("webhooks %+v", list)
	}
	var types struct {
		EventTypes []struct {
			Code string `json:"code"`
		} `json:"event_types"`
	}
	e.call("GET", "/api/v1/event_types", nil, &types)
	if len(types.EventTypes) != len(eventTypes) {
		t.Errorf("event types %d", len(types.EventTypes))
	}
	expectStatus(t, e.call("DELETE", "/api/v1/webhooks/"+id, nil, nil), 200)
	expectStatus(t, e.call("DELETE", "/api/v1/webhooks/"+id, nil, nil), 400)
}

// TestCloseStopsDeliveries: a receiver that never answers 200 does not keep
// Close waiting.
func TestCloseStopsDeliveries(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, 1000)
	registerHook(t, e, rcv.URL, "permission.created")
	expectStatus(t, e.call("POST", "/api/v1/permissions", map[string]string{"key": "a:b"}, nil), 201)
	testsupport.Eventually(t, 10*time.Second, "first attempt", func() bool { return len(rcv.hooks()) >= 1 })
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	n := len(rcv.hooks())
	if len(e.srv.Deliveries()) < n {
		t.Errorf("deliveries %d < attempts %d", len(e.srv.Deliveries()), n)
	}
}

// hookTypes waits until n webhooks arrived and returns their types in order
// of arrival, with the user id of each user.* event appended after a colon.
func hookTypes(t *testing.T, e *testEnv, rcv *hookReceiver, n int) []string {
	t.Helper()
	testsupport.Eventually(t, 10*time.Second, "webhooks", func() bool { return len(rcv.hooks()) >= n })
	set := fetchJWKS(t, e)
	var out []string
	for _, h := range rcv.hooks() {
		p := verifyHook(t, set, h.body)
		typ := p["type"].(string)
		if u, ok := p["data"].(map[string]any)["user"].(map[string]any); ok {
			typ += ":" + u["id"].(string)
		}
		out = append(out, typ)
	}
	return out
}

// TestRBACEditWebhooks: each RBAC edit of the admin panel sends the event
// Kinde documents for it; a change to a role's permissions sends none unless
// Quirks.NoRoleUpdated is off.
func TestRBACEditWebhooks(t *testing.T) {
	all := []string{"role.created", "role.updated", "role.deleted", "permission.created", "permission.updated",
		"user.updated"}
	member := "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserBob

	e := newEnv(t)
	rcv := newReceiver(t, 0)
	registerHook(t, e, rcv.URL, all...)
	var cr createRoleResponse
	expectStatus(t, e.call("POST", "/api/v1/roles", map[string]any{"key": "auditor", "name": "Auditor"}, &cr), 201)
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+cr.Role.ID+"/permissions", map[string]any{
		"permissions": []map[string]string{{"id": seedPermReadReports}}}, nil), 200)
	expectStatus(t, e.call("DELETE", "/api/v1/roles/"+seedRoleAnalyst+"/permissions/"+seedPermExportReport, nil, nil), 200)
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+cr.Role.ID, map[string]any{"key": "auditor", "name": "Auditors"}, nil), 201)
	expectStatus(t, e.call("POST", "/api/v1/permissions", map[string]string{"key": "audit:read"}, nil), 201)
	expectStatus(t, e.call("PATCH", "/api/v1/permissions/"+seedPermDeleteReport, map[string]string{"key": "remove:reports"}, nil), 200)
	expectStatus(t, e.call("POST", member+"/roles", map[string]string{"role_id": cr.Role.ID}, nil), 200)
	expectStatus(t, e.call("DELETE", member+"/roles/"+cr.Role.ID, nil, nil), 200)
	expectStatus(t, e.call("POST", member+"/permissions", map[string]string{"permission_id": seedPermExportReport}, nil), 200)
	expectStatus(t, e.call("DELETE", member+"/permissions/"+seedPermExportReport, nil, nil), 200)
	expectStatus(t, e.call("DELETE", member, nil, nil), 200)
	expectStatus(t, e.call("DELETE", "/api/v1/roles/"+cr.Role.ID, nil, nil), 200)

	want := []string{"role.created", "role.updated", "permission.created", "permission.updated",
		"user.updated:" + seedUserBob, "user.updated:" + seedUserBob, "user.updated:" + seedUserBob,
		"user.updated:" + seedUserBob, "user.updated:" + seedUserBob, "role.deleted"}
	got := hookTypes(t, e, rcv, len(want))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("webhooks\n got %v\nwant %v", got, want)
	}

	// With the flag, both kinds of role-permission edit send role.updated.
	e = newEnv(t, roleUpdatedSent)
	rcv = newReceiver(t, 0)
	registerHook(t, e, rcv.URL, all...)
	expectStatus(t, e.call("PATCH", "/api/v1/roles/"+seedRoleViewer+"/permissions", map[string]any{
		"permissions": []map[string]string{{"id": seedPermExportReport}}}, nil), 200)
	expectStatus(t, e.call("DELETE", "/api/v1/roles/"+seedRoleAnalyst+"/permissions/"+seedPermExportReport, nil, nil), 200)
	if got := hookTypes(t, e, rcv, 2); !slices.Equal(got, []string{"role.updated", "role.updated"}) {
		t.Errorf("with role.updated on permission edits: %v", got)
	}
}
