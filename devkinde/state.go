package devkinde

import (
	"cmp"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// state is everything devkinde knows. It lives in memory behind Server.mu and,
// when a data folder is configured, is saved as JSON after every change.
// Opaque secrets (refresh tokens) are stored as hashes only.
type state struct {
	Seq           int64                      `json:"seq"`
	Orgs          map[string]*organization   `json:"organizations"`
	Permissions   map[string]*permission     `json:"permissions"`
	Roles         map[string]*role           `json:"roles"`
	Users         map[string]*user           `json:"users"`
	Clients       map[string]*client         `json:"clients"`
	FeatureFlags  map[string]SeedFeatureFlag `json:"feature_flags"`
	Webhooks      map[string]*webhook        `json:"webhooks"`
	Events        []*event                   `json:"events"`
	Sessions      map[string]*ssoSession     `json:"sessions"`
	Families      map[string]*refreshFamily  `json:"refresh_families"`
	RefreshTokens map[string]*refreshToken   `json:"refresh_tokens"`
	ClaimCache    map[string]*cachedClaims   `json:"claim_cache"`
	CacheGen      uint64                     `json:"cache_gen"`
	RevokedJTIs   map[string]time.Time       `json:"revoked_jtis"` // jti → token expiry
}

type organization struct {
	Code       string    `json:"code"`
	Name       string    `json:"name"`
	Handle     string    `json:"handle,omitempty"`
	ExternalID string    `json:"external_id,omitempty"`
	IsDefault  bool      `json:"is_default"`
	CreatedOn  time.Time `json:"created_on"`
	Seq        int64     `json:"seq"`
}

type permission struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Seq         int64  `json:"seq"`
}

type role struct {
	ID            string   `json:"id"`
	Key           string   `json:"key"`
	Name          string   `json:"name"`
	Description   string   `json:"description"`
	IsDefaultRole bool     `json:"is_default_role"`
	Permissions   []string `json:"permissions"` // permission ids
	Seq           int64    `json:"seq"`
}

// membership is a user's place in one organization: roles and direct
// permission grants, both by id.
type membership struct {
	JoinedOn     time.Time  `json:"joined_on"`
	LastAccessed *time.Time `json:"last_accessed,omitempty"`
	Roles        []string   `json:"roles"`
	Permissions  []string   `json:"permissions"`
}

type user struct {
	ID                     string                 `json:"id"`
	Email                  string                 `json:"email"`
	FirstName              string                 `json:"first_name"`
	LastName               string                 `json:"last_name"`
	Picture                string                 `json:"picture,omitempty"`
	ProvidedID             string                 `json:"provided_id,omitempty"`
	PasswordHash           string                 `json:"password_hash,omitempty"`
	DemoPassword           string                 `json:"demo_password,omitempty"` // shown on the sign-in page
	IsSuspended            bool                   `json:"is_suspended"`
	PasswordResetRequested bool                   `json:"is_password_reset_requested"`
	CreatedOn              time.Time              `json:"created_on"`
	UpdatedAt              time.Time              `json:"updated_at"`
	LastSignedIn           *time.Time             `json:"last_signed_in,omitempty"`
	TotalSignIns           int                    `json:"total_sign_ins"`
	FailedSignIns          int                    `json:"failed_sign_ins"`
	Orgs                   map[string]*membership `json:"organizations"`
	OrgOrder               []string               `json:"organization_order"`
	Seq                    int64                  `json:"seq"`
}

type client struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret,omitempty"`
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	RedirectURIs []string `json:"redirect_uris"`
	LogoutURIs   []string `json:"logout_uris"`
	RolesClaim   bool     `json:"roles_claim"`
	AccessTTL    int      `json:"access_token_lifetime"`
	IDTTL        int      `json:"id_token_lifetime"`
	RefreshTTL   int      `json:"refresh_token_lifetime"`
	Scopes       []string `json:"scopes,omitempty"`
	OrgCode      string   `json:"org_code,omitempty"`
}

type webhook struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Endpoint    string    `json:"endpoint"`
	Description string    `json:"description"`
	EventTypes  []string  `json:"event_types"`
	CreatedOn   time.Time `json:"created_on"`
	Seq         int64     `json:"seq"`
}

// event is one Kinde event as sent to webhooks and served by /events/{id}.
type event struct {
	Type      string          `json:"type"`
	EventID   string          `json:"event_id"`
	Source    string          `json:"source"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
	Created   time.Time       `json:"created"`
}

// ssoSession is the provider (SSO) session behind the devkinde cookie.
type ssoSession struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	OrgCode   string    `json:"org_code"`
	ClientID  string    `json:"client_id"`
	AuthTime  time.Time `json:"auth_time"`
	StartedOn time.Time `json:"started_on"`
	UpdatedOn time.Time `json:"updated_on"`
	ExpiresOn time.Time `json:"expires_on"`
	InitialIP string    `json:"initial_ip"`
	InitialUA string    `json:"initial_ua"`
	LastIP    string    `json:"last_ip"`
	LastUA    string    `json:"last_ua"`
}

// refreshFamily is one chain of rotated refresh tokens, started by one code
// exchange. It also remembers the last access token handed out, because a
// refresh grant returns that same token while it is unexpired and the
// user's cached claims have not been invalidated since.
type refreshFamily struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	ClientID  string    `json:"client_id"`
	OrgCode   string    `json:"org_code"`
	SessionID string    `json:"session_id"`
	Scopes    []string  `json:"scopes"`
	Audience  []string  `json:"audience"`
	AuthTime  time.Time `json:"auth_time"`
	Created   time.Time `json:"created"`
	Revoked   bool      `json:"revoked"`

	// The last access token is kept in memory only (never written to disk).
	lastAccess    string
	lastAccessJTI string
	lastAccessExp time.Time
	lastAccessGen uint64
}

type refreshToken struct {
	FamilyID  string    `json:"family_id"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RotatedAt time.Time `json:"rotated_at,omitzero"` // zero while it is the family's newest token
}

// cachedClaims is one entry of Kinde's claim cache: the RBAC claims issued to a
// user in an org. Gen changes whenever the entry is rebuilt.
type cachedClaims struct {
	Gen          uint64               `json:"gen"`
	Permissions  []string             `json:"permissions"`
	Roles        []roleClaim          `json:"roles"`
	FeatureFlags map[string]flagClaim `json:"feature_flags"`
	CachedAt     time.Time            `json:"cached_at"`
}

type roleClaim struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Name string `json:"name"`
}

func toRoleClaim(r *role) roleClaim { return roleClaim{ID: r.ID, Key: r.Key, Name: r.Name} }

type flagClaim struct {
	T string `json:"t"`
	V any    `json:"v"`
}

// maxEvents bounds the event history kept for GET /api/v1/events/{id}.
const maxEvents = 1000

func newState() *state {
	return &state{
		Orgs:          map[string]*organization{},
		Permissions:   map[string]*permission{},
		Roles:         map[string]*role{},
		Users:         map[string]*user{},
		Clients:       map[string]*client{},
		FeatureFlags:  map[string]SeedFeatureFlag{},
		Webhooks:      map[string]*webhook{},
		Sessions:      map[string]*ssoSession{},
		Families:      map[string]*refreshFamily{},
		RefreshTokens: map[string]*refreshToken{},
		ClaimCache:    map[string]*cachedClaims{},
		RevokedJTIs:   map[string]time.Time{},
	}
}

// stateFromSeed builds a fresh state from a normalized seed.
func stateFromSeed(sd *Seed, now time.Time) (*state, error) {
	st := newState()
	for _, o := range sd.Organizations {
		st.Orgs[o.Code] = &organization{Code: o.Code, Name: o.Name, Handle: o.Handle, IsDefault: o.IsDefault,
			CreatedOn: now, Seq: st.next()}
	}
	for _, p := range sd.Permissions {
		st.Permissions[p.ID] = &permission{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description, Seq: st.next()}
	}
	for _, r := range sd.Roles {
		st.Roles[r.ID] = &role{ID: r.ID, Key: r.Key, Name: r.Name, Description: r.Description,
			IsDefaultRole: r.IsDefaultRole, Permissions: st.permIDs(r.Permissions), Seq: st.next()}
	}
	for _, su := range sd.Users {
		u := &user{ID: su.ID, Email: su.Email, FirstName: su.FirstName, LastName: su.LastName,
			IsSuspended: su.IsSuspended, CreatedOn: now, UpdatedAt: now, Orgs: map[string]*membership{}, Seq: st.next()}
		if su.Password != "" {
			u.PasswordHash = hashPassword(su.Password)
		}
		if su.Demo {
			u.DemoPassword = su.Password
		}
		for _, m := range su.Organizations {
			u.Orgs[m.Code] = &membership{JoinedOn: now, Roles: st.roleIDs(m.Roles), Permissions: st.permIDs(m.Permissions)}
			u.OrgOrder = append(u.OrgOrder, m.Code)
		}
		st.Users[u.ID] = u
	}
	for _, sc := range sd.Clients {
		c := &client{ID: sc.ID, Secret: sc.Secret, Name: sc.Name, Type: sc.Type,
			RedirectURIs: slices.Clone(sc.RedirectURIs), LogoutURIs: slices.Clone(sc.LogoutURIs), RolesClaim: sc.RolesClaim,
			AccessTTL: sc.AccessTokenLifetime, IDTTL: sc.IDTokenLifetime, RefreshTTL: sc.RefreshTokenLifetime,
			Scopes: slices.Clone(sc.Scopes), OrgCode: sc.OrgCode}
		if c.Type == ClientTypeM2M && len(c.Scopes) == 0 {
			c.Scopes = slices.Clone(managementScopes)
		}
		st.Clients[c.ID] = c
	}
	for k, f := range sd.FeatureFlags {
		st.FeatureFlags[k] = f
	}
	for _, w := range sd.Webhooks {
		id := w.ID
		if id == "" {
			id = newWebhookID()
		}
		st.Webhooks[id] = &webhook{ID: id, Name: w.Name, Endpoint: w.Endpoint, Description: w.Description,
			EventTypes: slices.Clone(w.EventTypes), CreatedOn: now, Seq: st.next()}
	}
	return st, nil
}

func (st *state) next() int64 { st.Seq++; return st.Seq }

// fullName is the user's display name: first and last name.
func (u *user) fullName() string { return strings.TrimSpace(u.FirstName + " " + u.LastName) }

func (st *state) permByKey(key string) *permission {
	for _, p := range st.Permissions {
		if p.Key == key {
			return p
		}
	}
	return nil
}

func (st *state) roleByKey(key string) *role {
	for _, r := range st.Roles {
		if r.Key == key {
			return r
		}
	}
	return nil
}

// permIDs returns the ids of the permissions with these keys, which must
// all exist (a normalized seed guarantees it). The result is never nil.
func (st *state) permIDs(keys []string) []string {
	return mapSlice(keys, func(k string) string { return st.permByKey(k).ID })
}

// roleIDs returns the ids of the roles with these keys, which must all exist.
// The result is never nil.
func (st *state) roleIDs(keys []string) []string {
	return mapSlice(keys, func(k string) string { return st.roleByKey(k).ID })
}

func (st *state) userByEmail(email string) *user {
	for _, u := range st.Users {
		if strings.EqualFold(u.Email, email) {
			return u
		}
	}
	return nil
}

// sorted returns the values of m ordered by their creation sequence.
func sorted[T any](m map[string]*T, seq func(*T) int64) []*T {
	out := make([]*T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *T) int { return cmp.Compare(seq(a), seq(b)) })
	return out
}

func (st *state) sortedPermissions() []*permission {
	return sorted(st.Permissions, func(p *permission) int64 { return p.Seq })
}
func (st *state) sortedRoles() []*role { return sorted(st.Roles, func(r *role) int64 { return r.Seq }) }
func (st *state) sortedUsers() []*user { return sorted(st.Users, func(u *user) int64 { return u.Seq }) }
func (st *state) sortedOrgs() []*organization {
	return sorted(st.Orgs, func(o *organization) int64 { return o.Seq })
}
func (st *state) sortedWebhooks() []*webhook {
	return sorted(st.Webhooks, func(w *webhook) int64 { return w.Seq })
}

// effectivePermissions returns the permissions a user holds in an org, from
// roles and direct grants, deduplicated, in creation order.
func (st *state) effectivePermissions(u *user, orgCode string) []*permission {
	m := u.Orgs[orgCode]
	if m == nil {
		return nil
	}
	ids := map[string]bool{}
	for _, rid := range m.Roles {
		if r := st.Roles[rid]; r != nil {
			for _, pid := range r.Permissions {
				ids[pid] = true
			}
		}
	}
	for _, pid := range m.Permissions {
		ids[pid] = true
	}
	var out []*permission
	for _, p := range st.sortedPermissions() {
		if ids[p.ID] {
			out = append(out, p)
		}
	}
	return out
}

// userRoles returns the user's roles in an org in creation order.
func (st *state) userRoles(u *user, orgCode string) []*role {
	m := u.Orgs[orgCode]
	if m == nil {
		return nil
	}
	var out []*role
	for _, r := range st.sortedRoles() {
		if slices.Contains(m.Roles, r.ID) {
			out = append(out, r)
		}
	}
	return out
}

// computeClaims builds current RBAC claims for a user in an org.
func (st *state) computeClaims(u *user, orgCode string, now time.Time) *cachedClaims {
	st.CacheGen++
	c := &cachedClaims{Gen: st.CacheGen, Permissions: []string{}, Roles: []roleClaim{},
		FeatureFlags: map[string]flagClaim{}, CachedAt: now}
	for _, p := range st.effectivePermissions(u, orgCode) {
		c.Permissions = append(c.Permissions, p.Key)
	}
	for _, r := range st.userRoles(u, orgCode) {
		c.Roles = append(c.Roles, toRoleClaim(r))
	}
	for k, f := range st.FeatureFlags {
		c.FeatureFlags[k] = flagClaim{T: f.Type, V: f.Value}
	}
	return c
}

func cacheKey(userID, orgCode string) string { return userID + "|" + orgCode }

// cachedClaimsFor implements Kinde's claim cache: it returns the cached entry
// for (user, org), building and caching it when there is none. With fresh set
// (a new sign-in) the entry is always rebuilt.
func (st *state) cachedClaimsFor(u *user, orgCode string, fresh bool, now time.Time) *cachedClaims {
	k := cacheKey(u.ID, orgCode)
	if c := st.ClaimCache[k]; c != nil && !fresh {
		return c
	}
	c := st.computeClaims(u, orgCode, now)
	st.ClaimCache[k] = c
	return c
}

// invalidateClaims drops every cached claim entry of a user, as Kinde does on
// refresh_claims and on direct changes to the user.
func (st *state) invalidateClaims(userID string) {
	prefix := userID + "|"
	for k := range st.ClaimCache {
		if strings.HasPrefix(k, prefix) {
			delete(st.ClaimCache, k)
		}
	}
}

// revoke ends the family: its refresh tokens stop working and its last
// access token is no longer handed out again.
func (fam *refreshFamily) revoke() {
	fam.Revoked = true
	fam.lastAccess = ""
}

// revokeFamiliesWhere revokes refresh-token families matching f.
func (st *state) revokeFamiliesWhere(f func(*refreshFamily) bool) {
	for _, fam := range st.Families {
		if f(fam) {
			fam.revoke()
		}
	}
}

// prune drops expired short-lived records so long runs do not grow forever.
func (st *state) prune(now time.Time) {
	for h, rt := range st.RefreshTokens {
		if now.After(rt.ExpiresAt) {
			delete(st.RefreshTokens, h)
		}
	}
	for id, s := range st.Sessions {
		if now.After(s.ExpiresOn) {
			delete(st.Sessions, id)
		}
	}
	for jti, exp := range st.RevokedJTIs {
		if now.After(exp) {
			delete(st.RevokedJTIs, jti)
		}
	}
	st.Events = keepLast(st.Events, maxEvents)
}

const (
	stateFile = "state.json"
	keysFile  = "keys.json"
)

// save writes the state atomically into dir.
func (st *state) save(dir string) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), raw)
}

// loadState reads a saved state; it returns (nil, nil) when none exists.
func loadState(dir string) (*state, error) {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := newState()
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("parse %s: %w", stateFile, err)
	}
	return st, nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Passwords are stored as PBKDF2-SHA256 hashes: "pbkdf2$<iter>$<salt>$<hash>".
const pbkdf2Iterations = 4096

func hashPassword(pw string) string {
	salt := randomBytes(16)
	key, _ := pbkdf2.Key(sha256.New, pw, salt, pbkdf2Iterations, 32)
	enc := base64.RawStdEncoding
	return "pbkdf2$" + strconv.Itoa(pbkdf2Iterations) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key)
}

func checkPassword(stored, pw string) bool {
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter <= 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, pw, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}
