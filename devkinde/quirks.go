package devkinde

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Quirks choose between behaviours of Kinde that its docs, its OpenAPI spec
// and its SDKs do not settle, or that its spec settles differently from what
// older notes said. permsync must be right under each of them, so devkinde
// can show each one. Config.Quirks nil means CautiousQuirks: the behaviour
// that is hardest on a client, or the one the spec declares.
type Quirks struct {
	// SameToken: a refresh returns the same access token until it expires,
	// even after refresh_claims (only revocation or logout forces a new
	// one). Kinde documents this for refreshes in general; whether
	// refresh_claims changes it is not documented.
	SameToken bool
	// Forbidden403: a missing, invalid or expired M2M token is answered 403
	// "Invalid credentials", as Kinde's spec declares (otherwise 401).
	Forbidden403 bool
	// BadRequest400: an unknown id is answered 400, as Kinde's spec declares
	// for most routes (otherwise 404). Routes whose spec declares 404
	// (user sessions, DELETE organization) keep 404.
	BadRequest400 bool
	// LastPageToken: the last page of a list still carries a next_token,
	// and so does the empty page it leads to.
	LastPageToken bool
	// NoRoleUpdated: adding or removing a role's permissions sends no
	// role.updated webhook.
	NoRoleUpdated bool
	// RolesAsStrings: user.updated lists organizations[].roles as role keys
	// (strings), as Kinde's webhook library types them, instead of
	// {id, key} objects.
	RolesAsStrings bool
	// CustomDomain: a second listener (Config.CustomDomainAddr) serves sign-in
	// as a custom domain: OIDC discovery, JWKS, sign-in, tokens, revocation
	// and logout with its own issuer, but no client_credentials grant and no
	// /api. As on Kinde, M2M tokens and the Management API live only on the
	// Kinde domain, and tokens of one host are not accepted by the other.
	CustomDomain bool
}

// quirkNames are the names --quirks accepts, in documentation order.
var quirkNames = []string{"same-token", "forbidden-403", "bad-request-400", "last-page-token",
	"no-role-updated", "roles-as-strings", "custom-domain"}

// QuirkNames returns the quirk names ParseQuirks accepts.
func QuirkNames() []string { return slices.Clone(quirkNames) }

// field returns the flag of q named name.
func (q *Quirks) field(name string) *bool {
	switch name {
	case "same-token":
		return &q.SameToken
	case "forbidden-403":
		return &q.Forbidden403
	case "bad-request-400":
		return &q.BadRequest400
	case "last-page-token":
		return &q.LastPageToken
	case "no-role-updated":
		return &q.NoRoleUpdated
	case "roles-as-strings":
		return &q.RolesAsStrings
	case "custom-domain":
		return &q.CustomDomain
	}
	return nil
}

// CautiousQuirks is the default: every quirk that makes Kinde harder to get
// right. CustomDomain is off: it needs a second listener and a client
// configured for two hosts.
func CautiousQuirks() Quirks {
	return Quirks{SameToken: true, Forbidden403: true, BadRequest400: true, LastPageToken: true,
		NoRoleUpdated: true, RolesAsStrings: true}
}

// AllQuirks turns every quirk on.
func AllQuirks() Quirks {
	q := Quirks{}
	for _, n := range quirkNames {
		*q.field(n) = true
	}
	return q
}

// ParseQuirks reads a --quirks value: "cautious" (the default), "none",
// "all", or a comma-separated list of names, each optionally prefixed with
// "-" to turn it off after a preset ("cautious,no-role-updated",
// "all,-custom-domain").
func ParseQuirks(s string) (Quirks, error) {
	q := CautiousQuirks()
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "" && i == 0, part == "cautious" && i == 0:
			continue
		case part == "none" && i == 0:
			q = Quirks{}
			continue
		case part == "all" && i == 0:
			q = AllQuirks()
			continue
		}
		if i == 0 {
			q = Quirks{} // a plain list names exactly the quirks wanted
		}
		name, on := strings.CutPrefix(part, "-")
		f := q.field(name)
		if f == nil {
			return q, fmt.Errorf("devkinde: unknown quirk %q (want cautious, none, all, or a list of %s)",
				part, strings.Join(quirkNames, ", "))
		}
		*f = !on
	}
	return q, nil
}

// String lists the quirks that are on.
func (q Quirks) String() string {
	var on []string
	for _, n := range quirkNames {
		if *q.field(n) {
			on = append(on, n)
		}
	}
	if len(on) == 0 {
		return "none"
	}
	return strings.Join(on, ",")
}

// hostKey marks a request that came in on the custom-domain listener; its
// value is that listener's issuer URL.
type hostKey struct{}

// CustomDomainHandler serves a custom domain whose issuer URL is issuer: the
// OIDC endpoints, without the client_credentials grant and the Management
// API. Start serves it on its own listener under Quirks.CustomDomain; tests
// that mount Handler themselves mount this one too.
func (s *Server) CustomDomainHandler(issuer string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeJSON(w, http.StatusNotFound, notFoundResponse{Errors: apiErrorItem{
				Code: "ROUTE_NOT_FOUND", Message: "The Management API is served on the Kinde domain, not on a custom domain"}})
			return
		}
		if r.Method == http.MethodPost && r.URL.Path == "/oauth2/token" {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err == nil && r.PostForm.Get("grant_type") == "client_credentials" {
				writeOAuthError(w, oauthErr(http.StatusBadRequest, "unauthorized_client",
					"Machine-to-machine tokens are issued on the Kinde domain, not on a custom domain."))
				return
			}
		}
		s.handler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), hostKey{}, issuer)))
	})
}

// declares404 are the Management API routes whose spec declares 404 for an
// unknown id; every other route answers 400 under BadRequest400.
var declares404 = map[string]bool{
	"GET /api/v1/users/{user_id}/sessions":    true,
	"DELETE /api/v1/users/{user_id}/sessions": true,
	"DELETE /api/v1/organization/{org_code}":  true,
}

// unknownAs400 turns a 404 into a 400 (Kinde's spec answer for an unknown
// id); the error body is unchanged.
type unknownAs400 struct{ http.ResponseWriter }

func (w unknownAs400) WriteHeader(code int) {
	if code == http.StatusNotFound {
		code = http.StatusBadRequest
	}
	w.ResponseWriter.WriteHeader(code)
}
