package devkinde

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// managementScopes are the Management API scopes of every route devkinde
// serves (names from Kinde's spec, x-scope). The default M2M client holds
// all of them.
var managementScopes = []string{
	"read:permissions", "create:permissions", "update:permissions", "delete:permissions",
	"read:roles", "create:roles", "update:roles", "delete:roles",
	"read:role_permissions", "update:role_permissions", "delete:role_permissions",
	"read:users", "create:users", "update:users", "delete:users",
	"update:user_refresh_claims", "read:user_sessions", "delete:user_sessions",
	"read:organizations", "create:organizations", "update:organizations", "delete:organizations",
	"read:organization_users", "create:organization_users", "delete:organization_users",
	"read:organization_user_roles", "create:organization_user_roles", "delete:organization_user_roles",
	"read:organization_user_permissions", "create:organization_user_permissions",
	"delete:organization_user_permissions",
	"read:webhooks", "create:webhooks", "update:webhooks", "delete:webhooks",
	"read:event_types", "read:events",
}

// ManagementScopes returns the Management API scopes devkinde enforces.
func ManagementScopes() []string { return slices.Clone(managementScopes) }

// Pagination limits (Kinde: default 10, max 500).
const (
	defaultPageSize = 10
	maxPageSize     = 500
)

// registerManagementAPI mounts every /api/v1 route with its scope.
func (s *Server) registerManagementAPI(mux *http.ServeMux) {
	routes := []struct {
		pattern, scope string
		h              http.HandlerFunc
	}{
		{"GET /api/v1/permissions", "read:permissions", s.apiListPermissions},
		{"POST /api/v1/permissions", "create:permissions", s.apiCreatePermission},
		{"PATCH /api/v1/permissions/{permission_id}", "update:permissions", s.apiUpdatePermission},
		{"DELETE /api/v1/permissions/{permission_id}", "delete:permissions", s.apiDeletePermission},

		{"GET /api/v1/roles", "read:roles", s.apiListRoles},
		{"POST /api/v1/roles", "create:roles", s.apiCreateRole},
		{"GET /api/v1/roles/{role_id}", "read:roles", s.apiGetRole},
		{"PATCH /api/v1/roles/{role_id}", "update:roles", s.apiUpdateRole},
		{"DELETE /api/v1/roles/{role_id}", "delete:roles", s.apiDeleteRole},
		{"GET /api/v1/roles/{role_id}/permissions", "read:role_permissions", s.apiGetRolePermissions},
		{"PATCH /api/v1/roles/{role_id}/permissions", "update:role_permissions", s.apiPatchRolePermissions},
		{"DELETE /api/v1/roles/{role_id}/permissions/{permission_id}", "delete:role_permissions", s.apiDeleteRolePermission},
		{"GET /api/v1/roles/{role_id}/users", "read:organization_user_roles", s.apiGetRoleUsers},

		{"GET /api/v1/users", "read:users", s.apiListUsers},
		{"GET /api/v1/user", "read:users", s.apiGetUser},
		{"POST /api/v1/user", "create:users", s.apiCreateUser},
		{"PATCH /api/v1/user", "update:users", s.apiUpdateUser},
		{"DELETE /api/v1/user", "delete:users", s.apiDeleteUser},
		{"POST /api/v1/users/{user_id}/refresh_claims", "update:user_refresh_claims", s.apiRefreshClaims},
		{"GET /api/v1/users/{user_id}/sessions", "read:user_sessions", s.apiGetUserSessions},
		{"DELETE /api/v1/users/{user_id}/sessions", "delete:user_sessions", s.apiDeleteUserSessions},

		{"GET /api/v1/organizations", "read:organizations", s.apiListOrganizations},
		{"GET /api/v1/organization", "read:organizations", s.apiGetOrganization},
		{"POST /api/v1/organization", "create:organizations", s.apiCreateOrganization},
		{"PATCH /api/v1/organization/{org_code}", "update:organizations", s.apiUpdateOrganization},
		{"DELETE /api/v1/organization/{org_code}", "delete:organizations", s.apiDeleteOrganization},
		{"GET /api/v1/organizations/{org_code}/users", "read:organization_users", s.apiListOrgUsers},
		{"POST /api/v1/organizations/{org_code}/users", "create:organization_users", s.apiAddOrgUsers},
		{"DELETE /api/v1/organizations/{org_code}/users/{user_id}", "delete:organization_users", s.apiRemoveOrgUser},
		{"GET /api/v1/organizations/{org_code}/users/{user_id}/roles", "read:organization_user_roles", s.apiGetOrgUserRoles},
		{"POST /api/v1/organizations/{org_code}/users/{user_id}/roles", "create:organization_user_roles", s.apiAddOrgUserRole},
		{"DELETE /api/v1/organizations/{org_code}/users/{user_id}/roles/{role_id}", "delete:organization_user_roles", s.apiRemoveOrgUserRole},
		{"GET /api/v1/organizations/{org_code}/users/{user_id}/permissions", "read:organization_user_permissions", s.apiGetOrgUserPermissions},
		{"POST /api/v1/organizations/{org_code}/users/{user_id}/permissions", "create:organization_user_permissions", s.apiAddOrgUserPermission},
		{"DELETE /api/v1/organizations/{org_code}/users/{user_id}/permissions/{permission_id}", "delete:organization_user_permissions", s.apiRemoveOrgUserPermission},

		{"GET /api/v1/webhooks", "read:webhooks", s.apiListWebhooks},
		{"POST /api/v1/webhooks", "create:webhooks", s.apiCreateWebhook},
		{"PATCH /api/v1/webhooks/{webhook_id}", "update:webhooks", s.apiUpdateWebhook},
		{"DELETE /api/v1/webhooks/{webhook_id}", "delete:webhooks", s.apiDeleteWebhook},
		{"GET /api/v1/event_types", "read:event_types", s.apiListEventTypes},
		{"GET /api/v1/events/{event_id}", "read:events", s.apiGetEvent},
	}
	for _, rt := range routes {
		h := rt.h
		if s.quirks.BadRequest400 && !declares404[rt.pattern] {
			h = func(w http.ResponseWriter, r *http.Request) { rt.h(unknownAs400{w}, r) }
		}
		mux.Handle(rt.pattern, s.apiGuard(rt.scope, h))
	}
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, notFoundResponse{Errors: apiErrorItem{
			Code: "ROUTE_NOT_FOUND", Message: "The requested API route does not exist"}})
	})
}

// apiGuard applies, in order: the rate limit (429 + RateLimit-Reset), fault
// injection (500), the M2M bearer token (401) and the route's scope (403
// naming the missing scope).
func (s *Server) apiGuard(scope string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, limited := s.rateLimited(); limited {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			w.Header().Set("RateLimit-Reset", strconv.Itoa(secs))
			apiError(w, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "Request was throttled.")
			return
		}
		if s.injectFault() {
			w.Header().Set(faultHeader, "injected")
			apiError(w, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Injected fault (devkinde fault rate).")
			return
		}
		issuer := s.issuerFor(r)
		claims, err := s.parseBearer(issuer, bearerToken(r), s.now())
		if err == nil {
			s.mu.Lock()
			if claims.Iat < s.m2mNotBefore {
				err = errTokenInvalid
			}
			s.mu.Unlock()
		}
		if err != nil {
			msg := "Invalid credentials."
			if errors.Is(err, errTokenExpired) {
				msg = "Invalid credentials: token expired."
			}
			if s.quirks.Forbidden403 {
				apiError(w, http.StatusForbidden, "TOKEN_INVALID", msg) // Kinde's spec
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			apiError(w, http.StatusUnauthorized, "TOKEN_INVALID", msg)
			return
		}
		known := false
		s.view(func(st *state) { known = st.Clients[claims.Azp] != nil })
		if !known || !slices.Contains(claims.Aud, issuer+"/api") || !slices.Contains(claims.Gty, "client_credentials") {
			apiError(w, http.StatusForbidden, "TOKEN_INVALID",
				"Invalid credentials: a machine-to-machine token for audience "+issuer+"/api is required.")
			return
		}
		if !slices.Contains(claims.Scp, scope) {
			apiError(w, http.StatusForbidden, "INSUFFICIENT_SCOPE", "Missing required scope: "+scope)
			return
		}
		if s.quirks.LastPageToken {
			r = r.WithContext(context.WithValue(r.Context(), lastPageTokenKey{}, true))
		}
		h(w, r)
	})
}

// faultHeader marks a 500 that Config.FaultRate injected (not a Kinde
// header; the contract test lets these through).
const faultHeader = "X-Devkinde-Fault"

// lastPageTokenKey marks a request whose list pages all carry a next_token
// (Quirks.LastPageToken).
type lastPageTokenKey struct{}

// rateLimited consumes a request from the limiter; when over the limit it
// reports how long until the next request is allowed.
func (s *Server) rateLimited() (time.Duration, bool) {
	s.limMu.Lock()
	lim := s.limiter
	s.limMu.Unlock()
	if lim == nil {
		return 0, false
	}
	res := lim.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return d, true
	}
	return 0, false
}

func (s *Server) injectFault() bool {
	s.limMu.Lock()
	f := s.faultRate
	s.limMu.Unlock()
	return f > 0 && rand.Float64() < f
}

// Kinde's response envelopes (spec components).

type apiErrorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type errorResponse struct {
	Errors []apiErrorItem `json:"errors"`
}

// notFoundResponse is Kinde's not_found_response: errors is an object here.
type notFoundResponse struct {
	Errors apiErrorItem `json:"errors"`
}

type successResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func ok() successResponse { return successResponse{Code: "OK", Message: "Success"} }

func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorResponse{Errors: []apiErrorItem{{Code: code, Message: msg}}})
}

// apiErr is an error that knows its Management API response.
type apiErr struct {
	status int
	code   string
	msg    string
}

func (e *apiErr) Error() string { return e.code + ": " + e.msg }

func badRequest(code, msg string) error { return &apiErr{http.StatusBadRequest, code, msg} }
func notFound(code, msg string) error   { return &apiErr{http.StatusNotFound, code, msg} }

// writeAPIErr writes err as Kinde's error_response.
func (s *Server) writeAPIErr(w http.ResponseWriter, err error) {
	var ae *apiErr
	if errors.As(err, &ae) {
		apiError(w, ae.status, ae.code, ae.msg)
		return
	}
	s.log.Error("devkinde management API", "error", err)
	apiError(w, http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Internal error.")
}

// mutate runs an update and answers with err or with status + body.
func (s *Server) mutate(w http.ResponseWriter, fn func(st *state, now time.Time) (int, any, error)) {
	var status int
	var body any
	err := s.update(func(st *state, now time.Time) error {
		var err error
		status, body, err = fn(st, now)
		return err
	})
	if err != nil {
		s.writeAPIErr(w, err)
		return
	}
	writeJSON(w, status, body)
}

// read runs a read-only query and answers with err or 200 + body.
func (s *Server) read(w http.ResponseWriter, fn func(st *state) (any, error)) {
	var body any
	var err error
	s.view(func(st *state) { body, err = fn(st) })
	if err != nil {
		s.writeAPIErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// decodeBody reads a JSON request body into v. An empty body is allowed
// unless required.
func decodeBody(r *http.Request, v any, required bool) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return badRequest("INVALID_REQUEST", "Could not read the request body.")
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		if required {
			return badRequest("INVALID_REQUEST", "A JSON request body is required.")
		}
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return badRequest("INVALID_REQUEST", "The request body is not valid JSON for this endpoint.")
	}
	return nil
}

// page is a parsed page_size / next_token pair.
type page struct {
	size      int
	offset    int
	lastToken bool // every page, the last and empty ones too, carries a next_token
}

// parsePage reads Kinde's pagination parameters: page_size (default 10,
// capped at 500) and next_token (opaque; devkinde encodes an offset).
func parsePage(r *http.Request) (page, error) {
	p := page{size: defaultPageSize}
	p.lastToken, _ = r.Context().Value(lastPageTokenKey{}).(bool)
	q := r.URL.Query()
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, badRequest("INVALID_PAGE_SIZE", "page_size must be a positive integer.")
		}
		p.size = min(n, maxPageSize)
	}
	if v := q.Get("next_token"); v != "" {
		raw, err := base64.StdEncoding.DecodeString(v)
		var n int
		if err == nil {
			n, err = strconv.Atoi(strings.TrimSuffix(string(raw), ":::"))
		}
		if err != nil || n < 0 {
			return p, badRequest("INVALID_NEXT_TOKEN", "next_token is not valid.")
		}
		p.offset = n
	}
	return p, nil
}

// paginate returns the page of items and the next_token ("" on the last page).
// With p.lastToken the last page and the empty page after it carry one too.
func paginate[T any](items []T, p page) ([]T, string) {
	token := func(offset int) string {
		return base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(offset) + ":::"))
	}
	if p.offset >= len(items) {
		if p.lastToken {
			return []T{}, token(len(items))
		}
		return []T{}, ""
	}
	end := min(p.offset+p.size, len(items))
	next := ""
	if end < len(items) || p.lastToken {
		next = token(end)
	}
	return items[p.offset:end], next
}

// pageOf returns page p of items, each converted by conv (never nil, so an
// empty page encodes as []), and the next_token.
func pageOf[T, U any](items []T, p page, conv func(T) U) ([]U, string) {
	pageItems, next := paginate(items, p)
	return mapSlice(pageItems, conv), next
}

// sortKey is a field a list can be sorted by with Kinde's sort parameter:
// sort=<name>_asc or sort=<name>_desc.
type sortKey[T any] struct {
	name string
	of   func(T) string
}

// sortList applies Kinde's sort parameter to items with a stable sort; ""
// keeps creation order. Any other value is INVALID_SORT, listing the values
// the keys allow.
func sortList[T any](items []T, param string, keys ...sortKey[T]) error {
	if param == "" {
		return nil
	}
	allowed := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		switch param {
		case k.name + "_asc":
			slices.SortStableFunc(items, func(a, b T) int { return strings.Compare(k.of(a), k.of(b)) })
			return nil
		case k.name + "_desc":
			slices.SortStableFunc(items, func(a, b T) int { return strings.Compare(k.of(b), k.of(a)) })
			return nil
		}
		allowed = append(allowed, k.name+"_asc", k.name+"_desc")
	}
	return badRequest("INVALID_SORT", "sort must be one of "+strings.Join(allowed, ", ")+".")
}

// keyRule checks the key of a permission or role in a create or update body:
// trimmed, not empty, and not held by another item of the same kind.
type keyRule struct {
	holder     func(st *state, key string) (id string, found bool)
	existsCode string
	existsMsg  string
}

var (
	permissionKeys = keyRule{
		holder: func(st *state, key string) (string, bool) {
			if p := st.permByKey(key); p != nil {
				return p.ID, true
			}
			return "", false
		},
		existsCode: "PERMISSION_KEY_EXISTS", existsMsg: "A permission with this key already exists.",
	}
	roleKeys = keyRule{
		holder: func(st *state, key string) (string, bool) {
			if r := st.roleByKey(key); r != nil {
				return r.ID, true
			}
			return "", false
		},
		existsCode: "ROLE_KEY_EXISTS", existsMsg: "A role with this key already exists.",
	}
)

// createKey returns the key of a create body, which is required.
func (k keyRule) createKey(st *state, key *string) (string, error) {
	if key == nil || strings.TrimSpace(*key) == "" {
		return "", badRequest("KEY_REQUIRED", "key is required.")
	}
	trimmed := strings.TrimSpace(*key)
	if _, found := k.holder(st, trimmed); found {
		return "", badRequest(k.existsCode, k.existsMsg)
	}
	return trimmed, nil
}

// updateKey applies the key of an update body to *dst, the key of the item
// with id self; a nil key leaves it unchanged.
func (k keyRule) updateKey(st *state, key *string, self string, dst *string) error {
	if key == nil {
		return nil
	}
	trimmed := strings.TrimSpace(*key)
	if trimmed == "" {
		return badRequest("KEY_REQUIRED", "key cannot be empty.")
	}
	if id, found := k.holder(st, trimmed); found && id != self {
		return badRequest(k.existsCode, k.existsMsg)
	}
	*dst = trimmed
	return nil
}

// setIfPresent copies an optional body field into *dst when it was sent.
func setIfPresent[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// splitList splits a comma-separated filter value.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func isoTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := isoTime(*t)
	return &s
}
