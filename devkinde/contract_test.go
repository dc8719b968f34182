package devkinde

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The contract test: every Management API response the suite receives is
// validated against Kinde's OpenAPI spec (testdata/management-api.yaml, MIT,
// see testdata/management-api.LICENSE) with kin-openapi. The Management API
// client of the tests (testEnv.api) records and checks each exchange.

// specHost replaces devkinde's random address so routes match the spec.
const specHost = "http://devkinde.test"

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error

	// validatedResponses counts responses checked against the spec.
	validatedResponses atomic.Int64
)

func loadSpec() (*openapi3.T, routers.Router, error) {
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile("testdata/management-api.yaml")
		if err != nil {
			specErr = err
			return
		}
		doc.Servers = openapi3.Servers{{URL: specHost}}
		specRouter, specErr = gorillamux.NewRouter(doc)
		specDoc = doc
	})
	return specDoc, specRouter, specErr
}

// contractClient returns an http.Client whose transport validates every
// /api/v1 response against the spec, failing t on a mismatch.
func contractClient(t *testing.T) *http.Client {
	return &http.Client{Transport: &contractTransport{t: t, next: http.DefaultTransport}}
}

type contractTransport struct {
	t    *testing.T
	next http.RoundTripper
}

func (c *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/") {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if verr := validateAgainstSpec(req, resp, body); verr != nil {
		c.t.Errorf("contract: %s %s → %d does not match Kinde's spec: %v\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, verr, body)
	}
	return resp, nil
}

// validateAgainstSpec checks one exchange. Statuses the operation declares
// are validated by kin-openapi; an undeclared one (401, 404 where the spec
// says 400, …) is an error, except a 500 that devkinde injected on purpose.
func validateAgainstSpec(req *http.Request, resp *http.Response, body []byte) error {
	doc, router, err := loadSpec()
	if err != nil {
		return err
	}
	specReq := req.Clone(context.Background())
	u := *req.URL
	u.Scheme, u.Host = "http", "devkinde.test"
	specReq.URL = &u
	specReq.Host = "devkinde.test"
	specReq.Body = http.NoBody
	route, params, err := router.FindRoute(specReq)
	if err != nil {
		// Only the deliberate unknown-route probe may miss; it must carry
		// not_found_response.
		if resp.StatusCode == http.StatusNotFound {
			return visitSchema(doc, "not_found_response", body)
		}
		return err
	}
	validatedResponses.Add(1)
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		// Kinde answers only what its spec declares; so must devkinde. The
		// one exception is a 500 injected on purpose (Config.FaultRate).
		if resp.StatusCode == http.StatusInternalServerError && resp.Header.Get(faultHeader) != "" {
			return visitSchema(doc, "error_response", body)
		}
		return fmt.Errorf("status %d is not declared by the spec for %s %s", resp.StatusCode, req.Method, route.Path)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: specReq, PathParams: params, Route: route, Options: opts},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if len(body) > 0 && route.Operation.Responses.Status(resp.StatusCode).Value.Content == nil {
		// Declared without a body (429 "Request was throttled."): devkinde
		// adds error_response, which must still be well formed.
		return visitSchema(doc, "error_response", body)
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

func visitSchema(doc *openapi3.T, name string, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	ref := doc.Components.Schemas[name]
	if ref == nil {
		return &json.UnsupportedValueError{Str: "no schema " + name}
	}
	return ref.Value.VisitJSON(v)
}

// TestContractCoversRoutes exercises every Management API route devkinde
// serves through the validating client, and checks that each one was
// matched in the spec.
func TestContractCoversRoutes(t *testing.T) {
	e := newEnv(t)
	perms := listPermissions(e)
	read := permByKeyIn(t, perms, "read:reports")

	// A role and a permission to edit, delete and rename.
	var cr createRoleResponse
	expectStatus(t, e.call("POST", "/api/v1/roles", map[string]any{"key": "c_edit", "name": "C edit"}, &cr), 201)
	expectStatus(t, e.call("POST", "/api/v1/permissions", map[string]string{"key": "c:edit"}, nil), 201)
	editPerm := permByKeyIn(t, listPermissions(e), "c:edit")
	member := "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserCarol

	before := validatedResponses.Load()
	steps := []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/api/v1/permissions?page_size=2", nil, 200},
		{"POST", "/api/v1/permissions", map[string]string{"key": "c:thing", "name": "Thing"}, 201},
		{"PATCH", "/api/v1/permissions/" + read.ID, map[string]string{"description": "Read all reports"}, 200},
		{"GET", "/api/v1/roles", nil, 200},
		{"GET", "/api/v1/roles/" + seedRoleViewer, nil, 200},
		{"POST", "/api/v1/roles", map[string]any{"key": "c_role", "name": "C role"}, 201},
		{"PATCH", "/api/v1/roles/" + seedRoleViewer, map[string]any{"key": "viewer", "name": "Viewer", "description": "Reads"}, 201},
		{"PATCH", "/api/v1/roles/" + seedRoleViewer, map[string]any{"description": "no key or name"}, 400},
		{"GET", "/api/v1/roles/" + seedRoleViewer + "/permissions", nil, 200},
		{"PATCH", "/api/v1/roles/" + seedRoleViewer + "/permissions", map[string]any{"permissions": []map[string]string{{"id": seedPermExportReport}}}, 200},
		{"DELETE", "/api/v1/roles/" + seedRoleViewer + "/permissions/" + seedPermExportReport, nil, 200},
		{"GET", "/api/v1/roles/" + seedRoleViewer + "/users", nil, 200},
		{"GET", "/api/v1/users?email=bob@acme.test", nil, 200},
		{"GET", "/api/v1/user?id=" + seedUserBob, nil, 200},
		{"GET", "/api/v1/organizations", nil, 200},
		{"GET", "/api/v1/organization?code=" + DefaultOrgCode, nil, 200},
		{"GET", "/api/v1/organizations/" + DefaultOrgCode + "/users?roles=viewer", nil, 200},
		{"GET", "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserBob + "/roles", nil, 200},
		{"POST", "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserBob + "/roles", map[string]string{"role_id": seedRoleAnalyst}, 200},
		{"DELETE", "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserBob + "/roles/" + seedRoleAnalyst, nil, 200},
		{"GET", "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserBob + "/permissions?expand=roles", nil, 200},
		{"POST", "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserBob + "/permissions", map[string]string{"permission_id": seedPermDeleteReport}, 200},
		{"DELETE", "/api/v1/organizations/" + DefaultOrgCode + "/users/" + seedUserBob + "/permissions/" + seedPermDeleteReport, nil, 200},
		{"POST", "/api/v1/users/" + seedUserBob + "/refresh_claims", nil, 200},
		{"GET", "/api/v1/users/" + seedUserBob + "/sessions", nil, 200},
		{"DELETE", "/api/v1/users/" + seedUserBob + "/sessions", nil, 200},
		{"GET", "/api/v1/webhooks", nil, 200},
		{"GET", "/api/v1/event_types", nil, 200},
		{"POST", "/api/v1/organization", map[string]string{"name": "Globex"}, 200},
		{"POST", "/api/v1/user", map[string]any{"profile": map[string]string{"given_name": "Dan"},
			"identities": []map[string]any{{"type": "email", "details": map[string]string{"email": "dan@acme.test"}}}}, 200},
		{"PATCH", "/api/v1/user?id=" + seedUserBob, map[string]any{"given_name": "Robert"}, 200},
		{"DELETE", "/api/v1/permissions/" + seedPermDeleteReport, nil, 200},

		// The RBAC edits of the admin panel, with their refusals.
		{"POST", "/api/v1/permissions", map[string]string{"key": "c:edit"}, 400},
		{"PATCH", "/api/v1/permissions/" + editPerm.ID, map[string]string{"key": "c:edited", "name": "Edited"}, 200},
		{"PATCH", "/api/v1/permissions/" + editPerm.ID, map[string]string{"key": "read:reports"}, 400},
		{"PATCH", "/api/v1/roles/" + cr.Role.ID, map[string]any{"key": "c_edited", "name": "C edited"}, 201},
		{"PATCH", "/api/v1/roles/" + cr.Role.ID + "/permissions", map[string]any{"permissions": []map[string]string{
			{"id": editPerm.ID}, {"id": seedPermReadReports}}}, 200},
		{"PATCH", "/api/v1/roles/" + cr.Role.ID + "/permissions", map[string]any{"permissions": []map[string]string{
			{"id": seedPermReadReports, "operation": "delete"}}}, 200},
		{"GET", "/api/v1/roles/" + cr.Role.ID + "/permissions", nil, 200},
		{"DELETE", "/api/v1/roles/" + cr.Role.ID + "/permissions/" + seedPermReadReports, nil, 400},
		{"POST", member + "/roles", map[string]string{"role_id": cr.Role.ID}, 200},
		{"DELETE", member + "/roles/" + cr.Role.ID, nil, 200},
		{"DELETE", member + "/roles/" + cr.Role.ID, nil, 400},
		{"POST", member + "/permissions", map[string]string{"permission_id": editPerm.ID}, 200},
		{"DELETE", member + "/permissions/" + editPerm.ID, nil, 200},
		{"DELETE", member + "/permissions/" + seedPermReadReports, nil, 400},
		{"DELETE", member, nil, 200},
		{"DELETE", member, nil, 400},
		{"DELETE", "/api/v1/roles/" + cr.Role.ID, nil, 200},

		{"GET", "/api/v1/roles/not-a-role", nil, 400},
		{"DELETE", "/api/v1/permissions/not-a-permission", nil, 400},
		{"GET", "/api/v1/roles/not-a-role/users", nil, 400},
		{"POST", "/api/v1/users/kp_00000000000000000000000000000000/refresh_claims", nil, 400},
		{"GET", "/api/v1/users/" + "kp_00000000000000000000000000000000" + "/sessions", nil, 404},
		{"GET", "/api/v1/roles?page_size=abc", nil, 400},
	}
	for _, s := range steps {
		resp := e.call(s.method, s.path, s.body, nil)
		if resp.StatusCode != s.want {
			t.Errorf("%s %s: status %d, want %d", s.method, s.path, resp.StatusCode, s.want)
		}
	}
	if got := validatedResponses.Load() - before; got < int64(len(steps)) {
		t.Errorf("validated %d responses, want at least %d", got, len(steps))
	}
	// Unknown routes answer Kinde's not_found_response (errors is an object).
	var nf map[string]map[string]string
	resp := e.call("GET", "/api/v1/no_such_thing", nil, &nf)
	expectStatus(t, resp, 404)
	if nf["errors"]["code"] != "ROUTE_NOT_FOUND" {
		t.Errorf("unknown route body %v", nf)
	}
}

// TestContractValidatorRejectsWrongShapes guards the guard: a response that
// does not match Kinde's schema must be reported.
func TestContractValidatorRejectsWrongShapes(t *testing.T) {
	cases := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/api/v1/permissions", 200, `{"code":"OK","permissions":[{"id":1,"key":"a"}]}`},
		{"GET", "/api/v1/roles/x", 200, `{"role":{"is_default_role":"no"}}`},
		{"POST", "/api/v1/users/kp_1/refresh_claims", 403, `{"errors":{"code":"X"}}`},
		{"GET", "/api/v1/users/kp_1/sessions", 401, `{"errors":"nope"}`},
		// Well formed, but a status the operation does not declare.
		{"GET", "/api/v1/roles/x", 404, `{"errors":[{"code":"ROLE_NOT_FOUND","message":"No role"}]}`},
		{"GET", "/api/v1/permissions", 401, `{"errors":[{"code":"TOKEN_INVALID","message":"Invalid credentials"}]}`},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, "http://127.0.0.1:1"+c.path, nil)
		resp := &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {"application/json"}}}
		if err := validateAgainstSpec(req, resp, []byte(c.body)); err == nil {
			t.Errorf("%s %s %d %s: accepted", c.method, c.path, c.status, c.body)
		}
	}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/api/v1/permissions", nil)
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}}
	if err := validateAgainstSpec(req, resp, []byte(`{"code":"OK","message":"Success","permissions":[]}`)); err != nil {
		t.Errorf("valid body rejected: %v", err)
	}
}
