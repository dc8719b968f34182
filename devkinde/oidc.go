package devkinde

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// supportedScopes are the OIDC scopes devkinde grants to user tokens. Kinde
// wants "offline" (not offline_access) for a refresh token.
var supportedScopes = []string{"openid", "profile", "email", "offline"}

// sessionCookie names the provider (SSO) session cookie.
const sessionCookie = "devkinde_sso"

// authRequest is a validated /oauth2/auth request waiting for sign-in.
type authRequest struct {
	ID          string
	ClientID    string
	RedirectURI string
	State       string
	Nonce       string
	Challenge   string
	Scopes      []string
	Audience    []string
	OrgCode     string
	Prompt      string
	RequestedAt time.Time
}

// authCode is an issued authorization code (stored by hash).
type authCode struct {
	req       authRequest
	userID    string
	orgCode   string
	sessionID string
	authTime  time.Time
	expires   time.Time
	used      bool
	familyID  string // family issued from it, revoked on replay
}

// oauthError is an RFC 6749 error.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func oauthErr(status int, code, desc string) *oauthError {
	return &oauthError{status: status, code: code, desc: desc}
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	w.Header().Set("Cache-Control", "no-store")
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="devkinde"`)
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// handleDiscovery serves /.well-known/openid-configuration.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := s.issuerFor(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/oauth2/auth",
		"token_endpoint":                        iss + "/oauth2/token",
		"userinfo_endpoint":                     iss + "/oauth2/v2/user_profile",
		"jwks_uri":                              iss + "/.well-known/jwks",
		"end_session_endpoint":                  iss + "/logout",
		"revocation_endpoint":                   iss + "/oauth2/revoke",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      supportedScopes,
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported": []string{"aud", "auth_time", "azp", "email", "email_verified", "exp", "family_name",
			"given_name", "iat", "iss", "jti", "name", "nonce", "org_code", "org_codes", "permissions", "picture",
			"rat", "roles", "scp", "sub", "updated_at", "feature_flags"},
		"request_uri_parameter_supported": false,
	})
}

// handleJWKS serves the public signing key set.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.key.jwks())
}

// handleAuthorize is /oauth2/auth: it validates the request, then either
// completes it from the provider session (SSO), fails it (prompt=none), or
// shows the sign-in page.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	var c *client
	s.view(func(st *state) {
		if cl := st.Clients[clientID]; cl != nil && cl.Type != ClientTypeM2M {
			cp := *cl
			c = &cp
		}
	})
	if c == nil {
		s.renderError(w, http.StatusBadRequest, "Unknown or unsuitable client_id.")
		return
	}
	if redirectURI == "" || !slices.Contains(c.RedirectURIs, redirectURI) {
		s.renderError(w, http.StatusBadRequest, "The redirect_uri is not on this application's allowed callback URLs.")
		return
	}
	req := authRequest{
		ID: newOpaqueToken(), ClientID: c.ID, RedirectURI: redirectURI, State: q.Get("state"), Nonce: q.Get("nonce"),
		Challenge: q.Get("code_challenge"), Audience: audiences(q["audience"]),
		OrgCode: q.Get("org_code"), Prompt: q.Get("prompt"), RequestedAt: s.now(),
	}
	fail := func(code, desc string) { redirectError(w, r, req, code, desc) }
	if rt := q.Get("response_type"); rt != "code" {
		fail("unsupported_response_type", "Only response_type=code is supported.")
		return
	}
	switch method := q.Get("code_challenge_method"); {
	case req.Challenge == "" && c.Secret != "":
		// A confidential (back-end) client authenticates with its secret at
		// the token endpoint; Kinde's TypeScript SDK sends no PKCE for it.
	case req.Challenge == "":
		fail("invalid_request", "code_challenge is required (PKCE) for a public client.")
		return
	case method != "S256":
		fail("invalid_request", "code_challenge_method must be S256; plain is not supported.")
		return
	case len(req.Challenge) != 43:
		fail("invalid_request", "code_challenge must be a base64url SHA-256 digest.")
		return
	}
	for _, sc := range strings.Fields(q.Get("scope")) {
		if slices.Contains(supportedScopes, sc) && !slices.Contains(req.Scopes, sc) {
			req.Scopes = append(req.Scopes, sc)
		}
	}
	if q.Get("start_page") == "registration" && req.Prompt == "" {
		req.Prompt = "create" // how Kinde's SDKs ask for the sign-up page
	}
	switch req.Prompt {
	case "", "login", "create", "none":
	default:
		req.Prompt = "" // other OIDC prompts are accepted and ignored
	}
	if req.OrgCode != "" {
		known := false
		s.view(func(st *state) { known = st.Orgs[req.OrgCode] != nil })
		if !known {
			fail("invalid_request", "Unknown org_code.")
			return
		}
	}

	sess := s.currentSession(r)
	switch {
	case req.Prompt == "none" && sess == nil:
		fail("login_required", "User authentication is required")
		return
	case sess != nil && (req.Prompt == "" || req.Prompt == "none"):
		if err := s.completeFromSession(w, r, req, sess); err != nil {
			if req.Prompt == "none" {
				fail("login_required", "User authentication is required")
				return
			}
			s.showSignIn(w, r, req, err.Error())
		}
		return
	}
	s.showSignIn(w, r, req, "")
}

// audiences reads the audience parameter: repeated (as Kinde's SDKs send
// several) and each value space-separated, without duplicates.
func audiences(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, a := range strings.Fields(v) {
			addUnique(&out, a)
		}
	}
	return out
}

// redirectError sends an authorization error back to the client.
func redirectError(w http.ResponseWriter, r *http.Request, req authRequest, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	http.Redirect(w, r, appendQuery(req.RedirectURI, v), http.StatusFound)
}

func appendQuery(base string, v url.Values) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + v.Encode()
}

// showSignIn stores the pending request and renders the sign-in page.
func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request, req authRequest, errMsg string) {
	s.mu.Lock()
	now := s.now()
	for id, p := range s.authRequests {
		if now.Sub(p.RequestedAt) > authRequestTTL {
			delete(s.authRequests, id)
		}
	}
	cp := req
	s.authRequests[req.ID] = &cp
	demo := s.demoAccountsLocked()
	s.mu.Unlock()
	s.renderSignIn(w, http.StatusOK, signInPage{
		RequestID: req.ID, Create: req.Prompt == "create", Error: errMsg, Demo: demo,
	})
}

// currentSession returns the valid provider session behind the cookie.
func (s *Server) currentSession(r *http.Request) *ssoSession {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	var out *ssoSession
	s.view(func(st *state) {
		sess := st.Sessions[ck.Value]
		if sess == nil || s.now().After(sess.ExpiresOn) {
			return
		}
		if u := st.Users[sess.UserID]; u == nil || u.IsSuspended {
			return
		}
		cp := *sess
		out = &cp
	})
	return out
}

// completeFromSession issues a code for the session's user.
func (s *Server) completeFromSession(w http.ResponseWriter, r *http.Request, req authRequest, sess *ssoSession) error {
	var code string
	err := s.update(func(st *state, now time.Time) error {
		u := st.Users[sess.UserID]
		if u == nil {
			return errors.New("Please sign in again.")
		}
		org, err := pickOrg(u, req.OrgCode)
		if err != nil {
			return err
		}
		if ss := st.Sessions[sess.ID]; ss != nil {
			ss.UpdatedOn, ss.LastIP, ss.LastUA, ss.ClientID, ss.OrgCode = now, clientIP(r), r.UserAgent(), req.ClientID, org
		}
		code = s.newCodeLocked(req, u.ID, org, sess.ID, sess.AuthTime, now)
		return nil
	})
	if err != nil {
		return err
	}
	redirectCode(w, r, req, code)
	return nil
}

// Errors returned while signing in are shown on the sign-in page, so they
// are written as sentences for people.

// pickOrg chooses the org a sign-in is for: the requested one (the user must
// belong to it) or the user's first organization.
func pickOrg(u *user, requested string) (string, error) {
	if requested != "" {
		if u.Orgs[requested] == nil {
			return "", errors.New("This account is not a member of the requested organization.")
		}
		return requested, nil
	}
	if len(u.OrgOrder) > 0 {
		return u.OrgOrder[0], nil
	}
	return "", nil
}

func (s *Server) newCodeLocked(req authRequest, userID, org, sessionID string, authTime, now time.Time) string {
	for h, c := range s.codes {
		if now.After(c.expires.Add(time.Hour)) {
			delete(s.codes, h)
		}
	}
	code := newOpaqueToken()
	s.codes[tokenHash(code)] = &authCode{req: req, userID: userID, orgCode: org, sessionID: sessionID,
		authTime: authTime, expires: now.Add(authCodeTTL)}
	return code
}

func redirectCode(w http.ResponseWriter, r *http.Request, req authRequest, code string) {
	v := url.Values{"code": {code}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	http.Redirect(w, r, appendQuery(req.RedirectURI, v), http.StatusFound)
}

// handleSignIn handles the sign-in (and sign-up) form post.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, http.StatusBadRequest, "Malformed form.")
		return
	}
	reqID := r.PostForm.Get("auth_request")
	email := strings.TrimSpace(r.PostForm.Get("email"))
	password := r.PostForm.Get("password")

	s.mu.Lock()
	p := s.authRequests[reqID]
	var req authRequest
	if p != nil {
		req = *p
	}
	s.mu.Unlock()
	if p == nil || s.now().Sub(req.RequestedAt) > authRequestTTL {
		s.renderError(w, http.StatusBadRequest, "This sign-in request has expired. Go back to the application and start again.")
		return
	}

	var sessID, code string
	var authTime time.Time
	err := s.update(func(st *state, now time.Time) error {
		u := st.userByEmail(email)
		if u == nil && req.Prompt == "create" && email != "" && password != "" {
			u = s.signUpLocked(st, req, email, password, r.PostForm.Get("first_name"), r.PostForm.Get("last_name"), now)
		}
		if u == nil || u.PasswordHash == "" || !checkPassword(u.PasswordHash, password) {
			if u != nil {
				u.FailedSignIns++
				s.emitLocked(st, "user.authentication_failed", "user", map[string]any{
					"user": map[string]any{"id": u.ID}, "ip_address": clientIP(r)}, now)
			}
			return keep(errors.New("Incorrect email or password."))
		}
		if u.IsSuspended {
			return errors.New("This account is suspended.")
		}
		org, err := pickOrg(u, req.OrgCode)
		if err != nil {
			return err
		}
		u.FailedSignIns = 0
		u.TotalSignIns++
		t := now
		u.LastSignedIn = &t
		if m := u.Orgs[org]; m != nil {
			m.LastAccessed = &t
		}
		cl := st.Clients[req.ClientID]
		if cl == nil {
			return errors.New("This application no longer exists.")
		}
		_, _, refreshTTL := s.lifetimes(cl)
		sess := &ssoSession{ID: newSessionID(), UserID: u.ID, OrgCode: org, ClientID: req.ClientID, AuthTime: now,
			StartedOn: now, UpdatedOn: now, ExpiresOn: now.Add(refreshTTL), InitialIP: clientIP(r),
			InitialUA: r.UserAgent(), LastIP: clientIP(r), LastUA: r.UserAgent()}
		st.Sessions[sess.ID] = sess
		sessID, authTime = sess.ID, now
		code = s.newCodeLocked(req, u.ID, org, sess.ID, now, now)
		s.emitLocked(st, "user.authenticated", "user", map[string]any{
			"user": map[string]any{"id": u.ID}, "ip_address": clientIP(r)}, now)
		return nil
	})
	if err != nil {
		s.showSignIn(w, r, req, err.Error())
		return
	}
	s.mu.Lock()
	delete(s.authRequests, reqID)
	s.mu.Unlock()
	// Replace any previous provider session cookie (no fixation).
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sessID, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(s.issuerFor(r), "https://"),
		Expires: authTime.Add(defaultRefreshTTL)})
	redirectCode(w, r, req, code)
}

// signUpLocked creates a user from the sign-up page (prompt=create) in the
// requested org, or the default org.
func (s *Server) signUpLocked(st *state, req authRequest, email, password, first, last string, now time.Time) *user {
	u := &user{ID: newUserID(), Email: email, FirstName: first, LastName: last, PasswordHash: hashPassword(password),
		CreatedOn: now, UpdatedAt: now, Orgs: map[string]*membership{}, Seq: st.next()}
	org := req.OrgCode
	if org == "" {
		for _, o := range st.sortedOrgs() {
			if o.IsDefault {
				org = o.Code
				break
			}
		}
	}
	if org != "" {
		m := &membership{JoinedOn: now, Roles: []string{}, Permissions: []string{}}
		for _, r := range st.sortedRoles() {
			if r.IsDefaultRole {
				m.Roles = append(m.Roles, r.ID)
			}
		}
		u.Orgs[org] = m
		u.OrgOrder = []string{org}
	}
	st.Users[u.ID] = u
	s.emitLocked(st, "user.created", "user", map[string]any{"user": userEventData(st, u)}, now)
	return u
}

// clientIP is the caller's address without the port.
func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// authenticateClient reads the form body of the token and revocation
// endpoints and authenticates the client: client_secret_basic,
// client_secret_post, or none for public (spa) clients.
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request) (*client, *oauthError) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Malformed form body.")
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Get("client_secret") != "" {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Use one client authentication method.")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, oauthErr(http.StatusUnauthorized, "invalid_client", "Malformed client credentials.")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	var c *client
	s.view(func(st *state) {
		if cl := st.Clients[id]; cl != nil {
			cp := *cl
			c = &cp
		}
	})
	if c == nil {
		return nil, oauthErr(http.StatusUnauthorized, "invalid_client", "Unknown client.")
	}
	if c.Secret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		return nil, oauthErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
	}
	return c, nil
}

// handleToken is /oauth2/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	c, oe := s.authenticateClient(w, r)
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	var resp *tokenResponse
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		resp, oe = s.grantAuthorizationCode(r, c)
	case "refresh_token":
		resp, oe = s.grantRefreshToken(r, c)
	case "client_credentials":
		resp, oe = s.grantClientCredentials(r, c)
	case "":
		oe = oauthErr(http.StatusBadRequest, "invalid_request", "grant_type is required.")
	default:
		oe = oauthErr(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type.")
	}
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// errGrant carries an OAuth error out of an update function.
type errGrant struct{ e *oauthError }

func (e errGrant) Error() string { return e.e.Error() }

func invalidGrant(desc string) error {
	return errGrant{oauthErr(http.StatusBadRequest, "invalid_grant", desc)}
}

func asOAuth(err error) *oauthError {
	var eg errGrant
	if errors.As(err, &eg) {
		return eg.e
	}
	return oauthErr(http.StatusInternalServerError, "server_error", "Internal error.")
}

// runGrant runs a user token grant as one state update and turns its error
// into the OAuth error to answer with.
func (s *Server) runGrant(fn func(st *state, now time.Time) (*tokenResponse, error)) (*tokenResponse, *oauthError) {
	var resp *tokenResponse
	err := s.update(func(st *state, now time.Time) error {
		var err error
		resp, err = fn(st, now)
		return err
	})
	if err != nil {
		return nil, asOAuth(err)
	}
	return resp, nil
}

// grantAuthorizationCode exchanges a code: single use, short-lived, bound to
// client and redirect_uri, PKCE S256 verified. Replaying a code revokes the
// tokens issued from it.
func (s *Server) grantAuthorizationCode(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	f := r.PostForm
	issuer := s.issuerFor(r)
	return s.runGrant(func(st *state, now time.Time) (*tokenResponse, error) {
		ac := s.codes[tokenHash(f.Get("code"))]
		switch {
		case ac == nil:
			return nil, invalidGrant("Unknown authorization code.")
		case ac.used:
			if fam := st.Families[ac.familyID]; fam != nil {
				fam.revoke()
			}
			s.log.Warn("devkinde authorization code replayed; tokens revoked", "client_id", c.ID)
			return nil, keep(invalidGrant("Authorization code already used."))
		case now.After(ac.expires):
			return nil, invalidGrant("Authorization code expired.")
		case ac.req.ClientID != c.ID:
			return nil, invalidGrant("Authorization code was issued to another client.")
		case f.Get("redirect_uri") != ac.req.RedirectURI:
			return nil, invalidGrant("redirect_uri does not match the authorization request.")
		}
		verifier := f.Get("code_verifier")
		switch {
		case ac.req.Challenge == "" && verifier != "":
			return nil, invalidGrant("code_verifier sent, but the authorization request had no code_challenge.")
		case ac.req.Challenge == "":
			// A confidential client without PKCE; authenticateClient has
			// checked its secret.
		case verifier == "":
			return nil, invalidGrant("code_verifier is required.")
		default:
			sum := sha256.Sum256([]byte(verifier))
			if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(ac.req.Challenge)) != 1 {
				return nil, invalidGrant("PKCE verification failed.")
			}
		}
		ac.used = true
		u := st.Users[ac.userID]
		if u == nil || u.IsSuspended {
			return nil, invalidGrant("User is not allowed to sign in.")
		}
		fam := &refreshFamily{ID: newFamilyID(), UserID: u.ID, ClientID: c.ID, OrgCode: ac.orgCode,
			SessionID: ac.sessionID, Scopes: nonNil(ac.req.Scopes), Audience: nonNil(ac.req.Audience),
			AuthTime: ac.authTime, Created: now}
		st.Families[fam.ID] = fam
		ac.familyID = fam.ID
		return s.issueUserTokens(st, userGrant{issuer: issuer, client: st.Clients[c.ID], user: u, fam: fam,
			nonce: ac.req.Nonce, rat: ac.req.RequestedAt, signIn: true,
			refresh: slices.Contains(fam.Scopes, "offline")}, now)
	})
}

// grantRefreshToken rotates a refresh token. The claims come from the claim
// cache, and the previous access token is returned unchanged while it is
// unexpired and the cache entry it was built from is still current.
func (s *Server) grantRefreshToken(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	presented := r.PostForm.Get("refresh_token")
	issuer := s.issuerFor(r)
	return s.runGrant(func(st *state, now time.Time) (*tokenResponse, error) {
		rt := st.RefreshTokens[tokenHash(presented)]
		if rt == nil {
			return nil, invalidGrant("Unknown refresh token.")
		}
		fam := st.Families[rt.FamilyID]
		switch {
		case fam == nil || fam.Revoked:
			return nil, invalidGrant("Refresh token revoked.")
		case fam.ClientID != c.ID:
			return nil, invalidGrant("Refresh token was issued to another client.")
		case now.After(rt.ExpiresAt):
			return nil, invalidGrant("Refresh token expired.")
		case !rt.RotatedAt.IsZero() && now.Sub(rt.RotatedAt) > s.cfg.RefreshOverlap:
			fam.revoke()
			s.log.Warn("devkinde refresh token reused after rotation; family revoked",
				"client_id", c.ID, "user_id", fam.UserID)
			// The revocation must stick even though the grant fails.
			return nil, keep(invalidGrant("Refresh token reused; all tokens of this session are revoked."))
		}
		u := st.Users[fam.UserID]
		if u == nil || u.IsSuspended {
			return nil, invalidGrant("User is not allowed to refresh.")
		}
		return s.issueUserTokens(st, userGrant{issuer: issuer, client: st.Clients[c.ID], user: u, fam: fam,
			rat: fam.AuthTime, refresh: true}, now)
	})
}

// grantClientCredentials issues an M2M token. Audience <issuer>/api gives a
// Management API token whose scp lists the granted scopes (all of the
// client's scopes, or the requested subset).
func (s *Server) grantClientCredentials(r *http.Request, c *client) (*tokenResponse, *oauthError) {
	if c.Type != ClientTypeM2M {
		return nil, oauthErr(http.StatusBadRequest, "unauthorized_client", "Only machine-to-machine applications can use client_credentials.")
	}
	issuer := s.issuerFor(r)
	aud := strings.Fields(r.PostForm.Get("audience"))
	var scopes []string
	if slices.Contains(aud, issuer+"/api") {
		scopes = slices.Clone(c.Scopes)
		if req := strings.Fields(r.PostForm.Get("scope")); len(req) > 0 {
			for _, sc := range req {
				if !slices.Contains(c.Scopes, sc) {
					return nil, oauthErr(http.StatusBadRequest, "invalid_scope", "Scope not granted to this application: "+sc)
				}
			}
			scopes = req
		}
	}
	tok, exp, err := s.mintM2M(issuer, c, aud, scopes, s.now())
	if err != nil {
		return nil, oauthErr(http.StatusInternalServerError, "server_error", "Internal error.")
	}
	return &tokenResponse{AccessToken: tok, ExpiresIn: int64(time.Until(exp).Round(time.Second) / time.Second),
		Scope: strings.Join(scopes, " "), TokenType: "Bearer"}, nil
}

// bearerToken extracts the token from an Authorization: Bearer header.
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// handleUserProfile is /oauth2/v2/user_profile (Kinde's userinfo).
func (s *Server) handleUserProfile(w http.ResponseWriter, r *http.Request) {
	unauthorized := func(desc string) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+desc+`"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": desc})
	}
	claims, err := s.parseBearer(s.issuerFor(r), bearerToken(r), s.now())
	if err != nil || claims.Sub == "" || len(claims.Gty) > 0 {
		unauthorized("The access token is invalid or expired.")
		return
	}
	var out map[string]any
	s.view(func(st *state) {
		if !st.RevokedJTIs[claims.Jti].IsZero() {
			return
		}
		u := st.Users[claims.Sub]
		if u == nil {
			return
		}
		out = map[string]any{
			"id": u.ID, "sub": u.ID, "provided_id": u.ProvidedID,
			"name": u.fullName(), "given_name": u.FirstName,
			"family_name": u.LastName, "updated_at": u.UpdatedAt.Unix(), "email": u.Email, "picture": u.Picture,
		}
	})
	if out == nil {
		unauthorized("The access token is revoked or its user no longer exists.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRevoke is /oauth2/revoke (RFC 7009): refresh tokens revoke their whole
// family; access tokens are revoked by jti. Unknown tokens still get 200.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	c, oe := s.authenticateClient(w, r)
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeOAuthError(w, oauthErr(http.StatusBadRequest, "invalid_request", "token is required."))
		return
	}
	claims, jwtErr := s.parseBearer(s.issuerFor(r), tok, s.now())
	_ = s.update(func(st *state, now time.Time) error {
		if rt := st.RefreshTokens[tokenHash(tok)]; rt != nil {
			if fam := st.Families[rt.FamilyID]; fam != nil && fam.ClientID == c.ID {
				fam.revoke()
			}
			return nil
		}
		if jwtErr == nil && claims.Azp == c.ID && claims.Jti != "" {
			st.RevokedJTIs[claims.Jti] = time.Unix(claims.Exp, 0)
			for _, fam := range st.Families {
				if fam.lastAccessJTI == claims.Jti {
					fam.lastAccess = ""
				}
			}
		}
		return nil
	})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// handleLogout is /logout?redirect=: it ends the provider session and
// redirects to an allowed logout URL. Access tokens of that session are not
// handed out again by a refresh (Kinde issues new ones after logout).
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	redirect := r.URL.Query().Get("redirect")
	clientID := r.URL.Query().Get("client_id")
	if redirect != "" {
		allowed := false
		s.view(func(st *state) {
			for _, c := range st.Clients {
				if (clientID == "" || c.ID == clientID) && slices.Contains(c.LogoutURIs, redirect) {
					allowed = true
				}
			}
		})
		if !allowed {
			s.renderError(w, http.StatusBadRequest, "The redirect URL is not on the application's allowed logout redirect URLs.")
			return
		}
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		_ = s.update(func(st *state, now time.Time) error {
			delete(st.Sessions, ck.Value)
			for _, fam := range st.Families {
				if fam.SessionID == ck.Value {
					fam.lastAccess = ""
				}
			}
			return nil
		})
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode})
	if redirect != "" {
		http.Redirect(w, r, redirect, http.StatusFound)
		return
	}
	s.renderSignedOut(w)
}
