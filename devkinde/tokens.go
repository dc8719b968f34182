package devkinde

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"
)

// accessClaims is a user access token, shaped as Kinde issues it
// (Kinde's access token). roles is present only when the client turns it on.
type accessClaims struct {
	Aud          []string             `json:"aud"`
	Azp          string               `json:"azp"`
	Exp          int64                `json:"exp"`
	FeatureFlags map[string]flagClaim `json:"feature_flags"`
	Iat          int64                `json:"iat"`
	Iss          string               `json:"iss"`
	Jti          string               `json:"jti"`
	OrgCode      string               `json:"org_code"`
	Permissions  []string             `json:"permissions"`
	Roles        []roleClaim          `json:"roles,omitempty"`
	Scp          []string             `json:"scp"`
	Sub          string               `json:"sub"`
}

// idClaims is an ID token.
type idClaims struct {
	AtHash        string   `json:"at_hash"`
	Aud           []string `json:"aud"`
	AuthTime      int64    `json:"auth_time"`
	Azp           string   `json:"azp"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Exp           int64    `json:"exp"`
	FamilyName    string   `json:"family_name"`
	GivenName     string   `json:"given_name"`
	Iat           int64    `json:"iat"`
	Iss           string   `json:"iss"`
	Jti           string   `json:"jti"`
	Name          string   `json:"name"`
	Nonce         string   `json:"nonce,omitempty"`
	OrgCodes      []string `json:"org_codes"`
	Picture       string   `json:"picture,omitempty"`
	Rat           int64    `json:"rat"`
	Sub           string   `json:"sub"`
	UpdatedAt     int64    `json:"updated_at"`
}

// m2mClaims is a client_credentials token.
type m2mClaims struct {
	Aud     []string `json:"aud"`
	Azp     string   `json:"azp"`
	Exp     int64    `json:"exp"`
	Gty     []string `json:"gty"`
	Iat     int64    `json:"iat"`
	Iss     string   `json:"iss"`
	Jti     string   `json:"jti"`
	OrgCode string   `json:"org_code,omitempty"`
	Scope   string   `json:"scope"`
	Scp     []string `json:"scp"`
	V       string   `json:"v"`
}

// presentedClaims is the union of claims devkinde reads back from bearer
// tokens it issued.
type presentedClaims struct {
	Aud     []string `json:"aud"`
	Iat     int64    `json:"iat"`
	Azp     string   `json:"azp"`
	Exp     int64    `json:"exp"`
	Gty     []string `json:"gty"`
	Iss     string   `json:"iss"`
	Jti     string   `json:"jti"`
	OrgCode string   `json:"org_code"`
	Scp     []string `json:"scp"`
	Sub     string   `json:"sub"`
}

// tokenResponse is the body of a successful /oauth2/token call.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

// atHash is the OIDC at_hash of an access token (left half of SHA-256).
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// userGrant is what user tokens are minted for: a code exchange (signIn) or
// a refresh grant.
type userGrant struct {
	issuer  string
	client  *client
	user    *user
	fam     *refreshFamily
	nonce   string
	rat     time.Time
	signIn  bool // a new sign-in: claims are rebuilt and the access token is always new
	refresh bool // mint a new refresh token in fam (rotating the current one)
}

// issueUserTokens takes the claims from the claim cache (rebuilt on a
// sign-in), mints the refresh token when asked, mints (or, on refresh, may
// reuse) the access token and mints a fresh ID token. Called with the state
// lock held.
func (s *Server) issueUserTokens(st *state, g userGrant, now time.Time) (*tokenResponse, error) {
	accessTTL, idTTL, refreshTTL := s.lifetimes(g.client)
	fam := g.fam
	claims := st.cachedClaimsFor(g.user, fam.OrgCode, g.signIn, now)
	var refreshT string
	if g.refresh {
		refreshT = s.newRefreshToken(st, fam, refreshTTL, now)
	}
	var access string
	var exp time.Time
	// The previous access token comes back while it is unexpired and not
	// revoked, and (unless Quirks.SameToken) was built from the current
	// cache entry, i.e. no refresh_claims since.
	reuse := !g.signIn && fam.lastAccess != "" && now.Before(fam.lastAccessExp) &&
		(fam.lastAccessGen == claims.Gen || s.quirks.SameToken) && st.RevokedJTIs[fam.lastAccessJTI].IsZero()
	if reuse {
		access, exp = fam.lastAccess, fam.lastAccessExp
	} else {
		exp = now.Add(accessTTL)
		ac := accessClaims{
			Aud: nonNil(fam.Audience), Azp: g.client.ID, Exp: exp.Unix(), FeatureFlags: claims.FeatureFlags,
			Iat: now.Unix(), Iss: g.issuer, Jti: newUUIDv4(), OrgCode: fam.OrgCode,
			Permissions: nonNil(claims.Permissions), Scp: nonNil(fam.Scopes), Sub: g.user.ID,
		}
		if g.client.RolesClaim {
			ac.Roles = claims.Roles
		}
		tok, err := s.key.sign(ac)
		if err != nil {
			return nil, err
		}
		access = tok
		fam.lastAccess, fam.lastAccessJTI, fam.lastAccessExp, fam.lastAccessGen = tok, ac.Jti, exp, claims.Gen
	}
	resp := &tokenResponse{
		AccessToken: access, ExpiresIn: max(int64(exp.Sub(now).Round(time.Second)/time.Second), 1),
		RefreshToken: refreshT, Scope: strings.Join(fam.Scopes, " "), TokenType: "Bearer",
	}
	if slices.Contains(fam.Scopes, "openid") {
		u := g.user
		ic := idClaims{
			AtHash: atHash(access), Aud: []string{g.client.ID}, AuthTime: fam.AuthTime.Unix(), Azp: g.client.ID,
			Email: u.Email, EmailVerified: true, Exp: now.Add(idTTL).Unix(), FamilyName: u.LastName,
			GivenName: u.FirstName, Iat: now.Unix(), Iss: g.issuer, Jti: newUUIDv4(),
			Name: u.fullName(), Nonce: g.nonce,
			OrgCodes: nonNil(slices.Clone(u.OrgOrder)), Picture: u.Picture, Rat: g.rat.Unix(), Sub: u.ID,
			UpdatedAt: u.UpdatedAt.Unix(),
		}
		tok, err := s.key.sign(ic)
		if err != nil {
			return nil, err
		}
		resp.IDToken = tok
	}
	return resp, nil
}

// newRefreshToken mints a refresh token in fam and makes it the family's only
// current token: the previous current token starts its overlap window.
func (s *Server) newRefreshToken(st *state, fam *refreshFamily, ttl time.Duration, now time.Time) string {
	for _, rt := range st.RefreshTokens {
		if rt.FamilyID == fam.ID && rt.RotatedAt.IsZero() {
			rt.RotatedAt = now
		}
	}
	tok := newOpaqueToken()
	st.RefreshTokens[tokenHash(tok)] = &refreshToken{FamilyID: fam.ID, IssuedAt: now, ExpiresAt: now.Add(ttl)}
	return tok
}

// mintM2M mints a client_credentials token.
func (s *Server) mintM2M(issuer string, c *client, aud, scopes []string, now time.Time) (string, time.Time, error) {
	access, _, _ := s.lifetimes(c)
	exp := now.Add(access)
	tok, err := s.key.sign(m2mClaims{
		Aud: nonNil(aud), Azp: c.ID, Exp: exp.Unix(), Gty: []string{"client_credentials"}, Iat: now.Unix(),
		Iss: issuer, Jti: newUUIDv4(), OrgCode: c.OrgCode, Scope: strings.Join(scopes, " "), Scp: nonNil(scopes), V: "2",
	})
	return tok, exp, err
}

var (
	errTokenInvalid = errors.New("invalid token")
	errTokenExpired = errors.New("token expired")
)

// parseBearer verifies a token devkinde issued: signature, issuer and expiry.
func (s *Server) parseBearer(issuer, tok string, now time.Time) (*presentedClaims, error) {
	var c presentedClaims
	if err := s.key.verify(tok, &c); err != nil {
		return nil, errTokenInvalid
	}
	if c.Iss != issuer {
		return nil, errTokenInvalid
	}
	if now.Unix() >= c.Exp {
		return nil, errTokenExpired
	}
	return &c, nil
}
