// Package auth signs users in with Kinde (OpenID Connect authorization code
// flow with PKCE), keeps their tokens in server-side sessions behind a small
// signed cookie, refreshes those tokens through one code path, and answers
// "may this request do X?" with the session's effective permissions.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"

	"permsync/apperr"
)

// flowTTL bounds how long a sign-in may take between /login and /callback.
const flowTTL = 10 * time.Minute

// defaultRefreshTTL is Kinde's default refresh-token lifetime, used when the
// token response does not say.
const defaultRefreshTTL = 15 * 24 * time.Hour

// flowCookiePrefix names the per-login flow cookies; the suffix comes from the
// state, so two tabs signing in at once do not overwrite each other.
const flowCookiePrefix = "permsync_flow_"

// Config configures the OIDC client.
type Config struct {
	IssuerURL    string
	ClientID     string
	ClientSecret string
	// SiteURL is this app's public URL; the callback is SiteURL + "/callback".
	SiteURL string
	// Audience is KINDE_AUDIENCE, space-separated; "" requests none and
	// skips the access-token audience check.
	Audience string
	// Scope is KINDE_SCOPE, space-separated.
	Scope string
	// PostLoginRedirect is the relative path users land on after sign-in.
	PostLoginRedirect string
	// PostLogoutRedirect is the absolute URL Kinde sends users to after logout.
	PostLogoutRedirect string
	// HTTPClient talks to the issuer; nil means one with a 15 s timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// OIDC is the OpenID Connect client: the provider's metadata and keys, the
// verifiers for ID and access tokens, and the OAuth 2 configuration.
type OIDC struct {
	cfg        Config
	hc         *http.Client
	log        *slog.Logger
	oauth      oauth2.Config
	idVerifier *oidc.IDTokenVerifier
	atVerifier *oidc.IDTokenVerifier
	audience   []string
	revokeURL  string
	logoutURL  string
	keys       *Keyring
	secure     bool
}

// NewOIDC reads the issuer's discovery document and builds the client.
func NewOIDC(ctx context.Context, cfg Config, keys *Keyring) (*OIDC, error) {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	o := &OIDC{cfg: cfg, hc: cfg.HTTPClient, log: cfg.Logger, keys: keys, audience: strings.Fields(cfg.Audience)}
	o.secure = secureCookies(cfg.SiteURL)
	provider, err := oidc.NewProvider(o.clientCtx(ctx), cfg.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery at %s: %w", cfg.IssuerURL, err)
	}
	var meta struct {
		Revocation string `json:"revocation_endpoint"`
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc discovery: %w", err)
	}
	o.revokeURL = firstNonEmpty(meta.Revocation, cfg.IssuerURL+"/oauth2/revoke")
	o.logoutURL = firstNonEmpty(meta.EndSession, cfg.IssuerURL+"/logout")

	endpoint := provider.Endpoint()
	// Explicit: left at AuthStyleAutoDetect, x/oauth2 retries a failed request
	// with the other style, which would spend a rotated refresh token twice.
	// Kinde documents client_secret in the token request body.
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	o.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     endpoint,
		RedirectURL:  cfg.SiteURL + "/callback",
		Scopes:       strings.Fields(cfg.Scope),
	}
	o.idVerifier = provider.Verifier(&oidc.Config{ClientID: cfg.ClientID})
	// Access tokens: signature, issuer and expiry by go-oidc; audience (an
	// array, empty unless one was requested) and azp checked by us.
	o.atVerifier = provider.Verifier(&oidc.Config{SkipClientIDCheck: true})
	o.log.Debug("oidc provider ready", "issuer", cfg.IssuerURL, "token_endpoint", endpoint.TokenURL)
	return o, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// clientCtx makes go-oidc and x/oauth2 use our HTTP client.
func (o *OIDC) clientCtx(ctx context.Context) context.Context {
	ctx = oidc.ClientContext(ctx, o.hc)
	return context.WithValue(ctx, oauth2.HTTPClient, o.hc)
}

// LoginOptions are what /login and /register accept.
type LoginOptions struct {
	ReturnTo string // relative path to land on after sign-in; anything else is ignored
	OrgCode  string // Kinde org_code to sign in to; ignored unless it looks like one
	Prompt   string // "" or "create" (sign-up) or "login"
}

// flowData is the one-shot state of a sign-in, kept in an encrypted cookie.
type flowData struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
}

var orgCodeRE = regexp.MustCompile(`^org_[A-Za-z0-9]{1,64}$`)

// BeginLogin starts a sign-in: it sets the flow cookie and returns the
// authorize URL to redirect to (state, nonce, PKCE S256; audience and
// org_code passed through).
func (o *OIDC) BeginLogin(w http.ResponseWriter, opts LoginOptions) (string, error) {
	f := flowData{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier()}
	f.ReturnTo, _ = RedirectPath(opts.ReturnTo, o.cfg.SiteURL)
	name := flowCookiePrefix + f.State[:16]
	enc, err := securecookie.EncodeMulti(name, f, o.keys.flow...)
	if err != nil {
		return "", fmt.Errorf("encode flow cookie: %w", err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: enc, Path: "/callback", MaxAge: int(flowTTL.Seconds()),
		// Lax, never Strict: the browser must send it on the redirect back
		// from the identity provider, a cross-site top-level navigation.
		HttpOnly: true, Secure: o.secure, SameSite: http.SameSiteLaxMode,
	})
	params := []oauth2.AuthCodeOption{oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)}

	if orgCodeRE.MatchString(opts.OrgCode) {
		params = append(params, oauth2.SetAuthURLParam("org_code", opts.OrgCode))
	}
	switch opts.Prompt {
	case "create", "login":
		params = append(params, oauth2.SetAuthURLParam("prompt", opts.Prompt))
	}
	u := o.oauth.AuthCodeURL(f.State, params...)
	// Several audiences go as repeated audience parameters, as Kinde's own
	// SDKs send them (SetAuthURLParam keeps one value).
	for _, aud := range o.audience {
		u += "&" + url.Values{"audience": {aud}}.Encode()
	}
	return u, nil
}

// Errors of the callback, safe to show.
var (
	errFlowMissing = apperr.E(apperr.Invalid,
		"This sign-in link has expired or was already used. Please sign in again.")
	errStateMismatch = apperr.E(apperr.Invalid,
		"This sign-in could not be matched to one you started here. Please sign in again.")
)

// CompleteLogin handles the redirect back from the issuer: it checks the state
// in constant time against the flow cookie (deleting it, so each flow is
// single use), exchanges the code with its PKCE verifier, and verifies the ID
// token (with nonce) and the access token. It returns the verified grant and
// the relative path to go to next.
func (o *OIDC) CompleteLogin(ctx context.Context, w http.ResponseWriter, r *http.Request) (*Grant, string, error) {
	q := r.URL.Query()
	state := q.Get("state")
	if len(state) < 16 {
		return nil, "", errFlowMissing
	}
	name := flowCookiePrefix + state[:16]
	c, err := r.Cookie(name)
	// Single use: the flow cookie goes whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: name, Path: "/callback", MaxAge: -1, HttpOnly: true,
		Secure: o.secure, SameSite: http.SameSiteLaxMode})
	if err != nil {
		return nil, "", errFlowMissing
	}
	var f flowData
	if err := securecookie.DecodeMulti(name, c.Value, &f, o.keys.flow...); err != nil {
		return nil, "", apperr.Wrap(err, apperr.Invalid, errFlowMissing.Message)
	}
	if subtle.ConstantTimeCompare([]byte(state), []byte(f.State)) != 1 {
		return nil, "", errStateMismatch
	}
	if e := q.Get("error"); e != "" {
		msg := "Sign-in did not complete at Kinde. Please try again."
		if e == "access_denied" {
			msg = "Sign-in was cancelled."
		}
		return nil, "", apperr.Wrap(fmt.Errorf("authorize error %q", e), apperr.Invalid, msg)
	}
	code := q.Get("code")
	if code == "" {
		return nil, "", apperr.E(apperr.Invalid, "The sign-in response had no code. Please sign in again.")
	}
	claimsAt := time.Now() // the claims Kinde puts in these tokens are at least this fresh
	tok, err := o.oauth.Exchange(o.clientCtx(ctx), code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, "", apperr.Wrap(err, apperr.Invalid, "This sign-in could not be completed (the code was rejected). Please sign in again.")
		}
		return nil, "", apperr.Wrap(err, apperr.Unavailable, "Kinde could not be reached to finish signing you in. Please try again.")
	}
	g, err := o.verify(ctx, tok, f.Nonce, nil)
	if err != nil {
		return nil, "", apperr.Wrap(err, apperr.Invalid, "The tokens from Kinde did not verify. Please sign in again.")
	}
	g.ClaimsAt = claimsAt
	returnTo := f.ReturnTo
	if returnTo == "" {
		returnTo = o.cfg.PostLoginRedirect
	}
	return g, returnTo, nil
}

// verify checks a token response and turns it into a Grant. nonce is checked
// when non-empty (sign-in); prev supplies profile fields a refresh response
// without an ID token does not carry.
func (o *OIDC) verify(ctx context.Context, tok *oauth2.Token, nonce string, prev *Grant) (*Grant, error) {
	ctx = o.clientCtx(ctx)
	g := &Grant{Tokens: Tokens{Access: tok.AccessToken, Refresh: tok.RefreshToken}}
	if prev != nil {
		g.Email, g.Name, g.Tokens.ID = prev.Email, prev.Name, prev.Tokens.ID
		if g.Tokens.Refresh == "" {
			g.Tokens.Refresh = prev.Tokens.Refresh
		}
	}

	at, err := o.atVerifier.Verify(ctx, tok.AccessToken)
	if err != nil {
		return nil, fmt.Errorf("verify access token: %w", err)
	}
	for _, want := range o.audience {
		if !slices.Contains(at.Audience, want) {
			return nil, fmt.Errorf("access token audience %q lacks %q", at.Audience, want)
		}
	}
	var ac accessClaims
	if err := at.Claims(&ac); err != nil {
		return nil, fmt.Errorf("access token claims: %w", err)
	}
	if ac.AuthParty != "" && ac.AuthParty != o.cfg.ClientID {
		return nil, fmt.Errorf("access token was issued to another client")
	}
	g.UserID = NormalizeUserID(at.Subject)
	g.OrgCode, g.Permissions, g.Roles = ac.read()
	g.AccessIssuedAt, g.AccessExpiresAt = at.IssuedAt, at.Expiry
	if g.Email == "" {
		g.Email = ac.Email
	}

	rawID, _ := tok.Extra("id_token").(string)
	switch {
	case rawID != "":
		idt, err := o.idVerifier.Verify(ctx, rawID)
		if err != nil {
			return nil, fmt.Errorf("verify id token: %w", err)
		}
		if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
			return nil, errors.New("id token nonce does not match")
		}
		if idt.AccessTokenHash != "" {
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				return nil, fmt.Errorf("id token at_hash: %w", err)
			}
		}
		if NormalizeUserID(idt.Subject) != g.UserID {
			return nil, errors.New("id token and access token name different users")
		}
		var ic idClaims
		if err := idt.Claims(&ic); err != nil {
			return nil, fmt.Errorf("id token claims: %w", err)
		}
		g.Tokens.ID = rawID
		g.Email = firstNonEmpty(ic.Email, g.Email)
		g.Name = firstNonEmpty(ic.displayName(), g.Name)
	case nonce != "":
		return nil, errors.New("token response has no id token (is openid in KINDE_SCOPE?)")
	}

	g.RefreshExpiresAt = time.Now().Add(defaultRefreshTTL)
	if secs := extraSeconds(tok, "refresh_token_expires_in", "refresh_expires_in"); secs > 0 {
		g.RefreshExpiresAt = time.Now().Add(time.Duration(secs) * time.Second)
	}
	return g, nil
}

// extraSeconds reads a numeric field of the token response.
func extraSeconds(tok *oauth2.Token, names ...string) int64 {
	for _, n := range names {
		switch v := tok.Extra(n).(type) {
		case float64:
			return int64(v)
		case string:
			var s int64
			if _, err := fmt.Sscan(v, &s); err == nil {
				return s
			}
		}
	}
	return 0
}

// refreshGrant runs one refresh_token grant at the token endpoint.
func (o *OIDC) refreshGrant(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	// An expired token forces the TokenSource to use the refresh token now.
	src := o.oauth.TokenSource(o.clientCtx(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)})
	return src.Token()
}

// Revoke asks the issuer to revoke a token (RFC 7009). The outcome is only
// logged by callers: signing out locally must not depend on it.
func (o *OIDC) Revoke(ctx context.Context, token, hint string) error {
	if token == "" {
		return nil
	}
	// Kinde documents client_id and client_secret as form fields here.
	form := url.Values{"token": {token}, "token_type_hint": {hint},
		"client_id": {o.cfg.ClientID}, "client_secret": {o.cfg.ClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.revokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := o.hc.Do(req)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("revoke: status %d", resp.StatusCode)
	}
	return nil
}

// LogoutURL is where the browser goes after a local sign-out, so that Kinde
// ends its own session too: <issuer>/logout?redirect=<PostLogoutRedirect>.
func (o *OIDC) LogoutURL() string {
	u := o.logoutURL
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "redirect=" + url.QueryEscape(o.cfg.PostLogoutRedirect)
}

// IssuerOrigin is the scheme://host[:port] of the issuer, for the CSP
// form-action list.
func (o *OIDC) IssuerOrigin() string { return originOf(o.cfg.IssuerURL) }

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// secureCookies reports whether cookies need Secure: always, except when the
// site is served over plain http on localhost or a loopback address.
func secureCookies(siteURL string) bool {
	u, err := url.Parse(siteURL)
	if err != nil {
		return true
	}
	if u.Scheme != "http" {
		return true
	}
	h := u.Hostname()
	return !(h == "localhost" || h == "127.0.0.1" || h == "::1")
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return base64.RawURLEncoding.EncodeToString(b)
}
