package devkinde

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Default seed constants. They are development credentials, published on
// purpose so that `make run`, demos and tests work without any setup. Never
// use them against a real Kinde business.
const (
	DefaultOrgCode = "org_acme"
	WebClientID    = "permsync_web" // confidential web app client
	M2MClientID    = "permsync_m2m" // holds every Management API scope devkinde serves
	DemoPassword   = "password"     // password of every default seed user
	// Client secrets are shaped like Kinde's (40 to 60 letters and digits):
	// Kinde's TypeScript SDK refuses any other shape.
	WebClientSecret = "DevkindeWebClientSecretForLocalDevelopmentOnly01" // secret of WebClientID
	M2MClientSecret = "DevkindeM2MClientSecretForLocalDevelopmentOnly01" // secret of M2MClientID
)

// legacySecrets are the default secrets of earlier versions, replaced in a
// saved state by the current ones when it is loaded.
var legacySecrets = map[string]string{
	"permsync_web_secret": WebClientSecret,
	"permsync_m2m_secret": M2MClientSecret,
}

// Client types, as Kinde names its application kinds.
const (
	ClientTypeRegular = "reg" // back-end web app: confidential, has a secret
	ClientTypeSPA     = "spa" // front-end app: public, no secret, PKCE only
	ClientTypeM2M     = "m2m" // machine to machine: client_credentials only
)

// Seed is the initial data devkinde starts from. It is loaded from a JSON file
// (LoadSeed) or built in (DefaultSeed). The JSON schema is documented in
// devkinde/README.md; field names follow Kinde's Management API where Kinde has
// a name for the thing.
type Seed struct {
	Organizations []SeedOrganization `json:"organizations"`
	Permissions   []SeedPermission   `json:"permissions"`
	Roles         []SeedRole         `json:"roles"`
	Users         []SeedUser         `json:"users"`
	Clients       []SeedClient       `json:"clients"`
	// FeatureFlags are environment-level flags put into every access token's
	// feature_flags claim, keyed by flag key.
	FeatureFlags map[string]SeedFeatureFlag `json:"feature_flags,omitempty"`
	// Webhooks registered at start, as if created through the Management API.
	Webhooks []SeedWebhook `json:"webhooks,omitempty"`
}

// SeedOrganization is one Kinde organization.
type SeedOrganization struct {
	Code      string `json:"code"` // org_<hex>; required
	Name      string `json:"name"`
	Handle    string `json:"handle,omitempty"`
	IsDefault bool   `json:"is_default,omitempty"`
}

// SeedPermission is one permission. ID is optional; when empty a stable id is
// derived from the key.
type SeedPermission struct {
	ID          string `json:"id,omitempty"`
	Key         string `json:"key"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// SeedRole is one role and the permission keys it grants.
type SeedRole struct {
	ID            string   `json:"id,omitempty"`
	Key           string   `json:"key"`
	Name          string   `json:"name,omitempty"`
	Description   string   `json:"description,omitempty"`
	IsDefaultRole bool     `json:"is_default_role,omitempty"`
	Permissions   []string `json:"permissions,omitempty"` // permission keys
}

// SeedUser is one user with a password and org memberships.
type SeedUser struct {
	ID        string `json:"id,omitempty"` // kp_<32 hex>; derived from the email when empty
	Email     string `json:"email"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Password  string `json:"password"`
	// Demo lists the account (email and password) on the sign-in page.
	Demo          bool             `json:"demo,omitempty"`
	IsSuspended   bool             `json:"is_suspended,omitempty"`
	Organizations []SeedMembership `json:"organizations,omitempty"`
}

// SeedMembership places a user in an organization with roles and direct
// permissions (both by key).
type SeedMembership struct {
	Code        string   `json:"code"`
	Roles       []string `json:"roles,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
}

// SeedClient is one application. Lifetimes are in seconds (Kinde's names);
// zero means Kinde's defaults: access 86400, ID 3600, refresh 1296000.
type SeedClient struct {
	ID           string   `json:"id"`
	Secret       string   `json:"secret,omitempty"` // required for reg and m2m clients
	Name         string   `json:"name,omitempty"`
	Type         string   `json:"type"` // reg, spa or m2m
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	LogoutURIs   []string `json:"logout_uris,omitempty"`
	// RolesClaim turns on the roles claim in access tokens ("Roles (array)"
	// in Kinde's token customization).
	RolesClaim           bool `json:"roles_claim,omitempty"`
	AccessTokenLifetime  int  `json:"access_token_lifetime,omitempty"`
	IDTokenLifetime      int  `json:"id_token_lifetime,omitempty"`
	RefreshTokenLifetime int  `json:"refresh_token_lifetime,omitempty"`
	// Scopes are the Management API scopes granted to an m2m client; empty
	// means every scope devkinde serves.
	Scopes []string `json:"scopes,omitempty"`
	// OrgCode makes an m2m client org-scoped (its tokens carry org_code).
	OrgCode string `json:"org_code,omitempty"`
}

// SeedFeatureFlag is a flag value; Type is Kinde's claim type letter:
// "b" (bool), "i" (integer), "s" (string) or "j" (JSON).
type SeedFeatureFlag struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// SeedWebhook is a webhook registered at start.
type SeedWebhook struct {
	ID          string   `json:"id,omitempty"`
	Name        string   `json:"name"`
	Endpoint    string   `json:"endpoint"`
	Description string   `json:"description,omitempty"`
	EventTypes  []string `json:"event_types"`
}

// Fixed ids of the default seed. They look like Kinde's (UUIDv7 for
// permissions and roles, kp_<32 hex> for users) and never change.
const (
	seedPermReadReports  = "01a2159f-6543-7c0a-9f7f-ecc5cc4e016f"
	seedPermExportReport = "01a2159f-6568-729f-9cba-82e61152b4fd"
	seedPermDeleteReport = "01a2159f-658d-7fba-94c1-06eefe345286"
	seedPermAdminPerms   = "01a2159f-65b2-74aa-a689-f12bdcb72110"
	seedRoleAdmin        = "01a2159f-65d7-76c9-a16e-c051541b1a18"
	seedRoleAnalyst      = "01a2159f-65fc-79ab-afec-49188e4bbff1"
	seedRoleViewer       = "01a2159f-6621-79b8-8d64-9f2d3b24a91e"
	seedUserAdmin        = "kp_3e2409e18f3cc636d40e9a42d1eb7de7"
	seedUserAlice        = "kp_e8a7b62305aed120a3bf55b8456f02f2"
	seedUserBob          = "kp_1d0d6561f77ac6844620ab1d769427da"
	seedUserCarol        = "kp_01eb092a7bd4acf29d17a930debf47e2"
)

// DefaultSeed returns the built-in seed described in devkinde/README.md: org
// org_acme "Acme"; permissions read:reports, export:reports, delete:reports,
// admin:permissions; roles admin (all four), analyst (read + export) and
// viewer (read); users admin@, alice@, bob@ and carol@acme.test (carol: viewer
// plus a direct export:reports), all with DemoPassword; the web client
// WebClientID (roles claim on, no redirect URIs: apps add theirs with
// AllowRedirect) and the M2M client M2MClientID with every scope.
// Each call returns a fresh copy.
func DefaultSeed() *Seed {
	member := func(roles []string, perms ...string) []SeedMembership {
		return []SeedMembership{{Code: DefaultOrgCode, Roles: roles, Permissions: perms}}
	}
	return &Seed{
		Organizations: []SeedOrganization{{Code: DefaultOrgCode, Name: "Acme", Handle: "acme", IsDefault: true}},
		Permissions: []SeedPermission{
			{ID: seedPermReadReports, Key: "read:reports", Name: "Read reports", Description: "View reports"},
			{ID: seedPermExportReport, Key: "export:reports", Name: "Export reports", Description: "Download reports as CSV"},
			{ID: seedPermDeleteReport, Key: "delete:reports", Name: "Delete reports", Description: "Delete reports"},
			{ID: seedPermAdminPerms, Key: "admin:permissions", Name: "Administer permissions", Description: "Manage permissions and roles"},
		},
		Roles: []SeedRole{
			{ID: seedRoleAdmin, Key: "admin", Name: "Admin", Description: "Full access",
				Permissions: []string{"read:reports", "export:reports", "delete:reports", "admin:permissions"}},
			{ID: seedRoleAnalyst, Key: "analyst", Name: "Analyst", Description: "Reads and exports reports",
				Permissions: []string{"read:reports", "export:reports"}},
			{ID: seedRoleViewer, Key: "viewer", Name: "Viewer", Description: "Reads reports",
				Permissions: []string{"read:reports"}},
		},
		Users: []SeedUser{
			{ID: seedUserAdmin, Email: "admin@acme.test", FirstName: "Ada", LastName: "Admin", Password: DemoPassword, Demo: true,
				Organizations: member([]string{"admin"})},
			{ID: seedUserAlice, Email: "alice@acme.test", FirstName: "Alice", LastName: "Analyst", Password: DemoPassword, Demo: true,
				Organizations: member([]string{"analyst"})},
			{ID: seedUserBob, Email: "bob@acme.test", FirstName: "Bob", LastName: "Viewer", Password: DemoPassword, Demo: true,
				Organizations: member([]string{"viewer"})},
			{ID: seedUserCarol, Email: "carol@acme.test", FirstName: "Carol", LastName: "Exporter", Password: DemoPassword, Demo: true,
				Organizations: member([]string{"viewer"}, "export:reports")},
		},
		Clients: []SeedClient{
			// The roles claim is off, as it is by default in Kinde.
			{ID: WebClientID, Secret: WebClientSecret, Name: "permsync", Type: ClientTypeRegular},
			{ID: M2MClientID, Secret: M2MClientSecret, Name: "permsync management", Type: ClientTypeM2M},
		},
		FeatureFlags: map[string]SeedFeatureFlag{},
	}
}

// LoadSeed reads and validates a seed JSON file (schema in devkinde/README.md).
func LoadSeed(path string) (*Seed, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devkinde: read seed: %w", err)
	}
	var sd Seed
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sd); err != nil {
		return nil, fmt.Errorf("devkinde: parse seed %s: %w", path, err)
	}
	if err := sd.normalize(); err != nil {
		return nil, fmt.Errorf("devkinde: seed %s: %w", path, err)
	}
	return &sd, nil
}

// UserIDByEmail returns the id of the seed user with that email
// (case-insensitive), or "" if there is none. Ids the file leaves out are
// derived from the email, so this works for every seed.
func (s *Seed) UserIDByEmail(email string) string {
	for _, u := range s.Users {
		if strings.EqualFold(u.Email, email) {
			if u.ID != "" {
				return u.ID
			}
			return derivedUserID(u.Email)
		}
	}
	return ""
}

// normalize fills derived ids and defaults and checks references.
func (s *Seed) normalize() error {
	var errs []error
	orgs := map[string]bool{}
	for _, o := range s.Organizations {
		if o.Code == "" {
			errs = append(errs, errors.New("organization without code"))
		}
		orgs[o.Code] = true
	}
	perms := map[string]bool{}
	for i := range s.Permissions {
		p := &s.Permissions[i]
		normalizeKeyed(&errs, perms, "permission", p.Key, &p.ID, &p.Name)
	}
	roles := map[string]bool{}
	for i := range s.Roles {
		r := &s.Roles[i]
		if !normalizeKeyed(&errs, roles, "role", r.Key, &r.ID, &r.Name) {
			continue
		}
		checkRefs(&errs, perms, r.Permissions, fmt.Sprintf("role %q", r.Key), "permission")
	}
	emails := map[string]bool{}
	for i := range s.Users {
		u := &s.Users[i]
		if u.Email == "" {
			errs = append(errs, errors.New("user without email"))
			continue
		}
		if emails[strings.ToLower(u.Email)] {
			errs = append(errs, fmt.Errorf("duplicate user email %q", u.Email))
		}
		emails[strings.ToLower(u.Email)] = true
		if u.ID == "" {
			u.ID = derivedUserID(u.Email)
		}
		owner := fmt.Sprintf("user %q", u.Email)
		for _, m := range u.Organizations {
			checkRefs(&errs, orgs, []string{m.Code}, owner, "organization")
			checkRefs(&errs, roles, m.Roles, owner, "role")
			checkRefs(&errs, perms, m.Permissions, owner, "permission")
		}
	}
	for i := range s.Clients {
		c := &s.Clients[i]
		if c.ID == "" {
			errs = append(errs, errors.New("client without id"))
		}
		switch c.Type {
		case ClientTypeRegular, ClientTypeM2M:
			if c.Secret == "" {
				errs = append(errs, fmt.Errorf("client %q: a %s client needs a secret", c.ID, c.Type))
			}
		case ClientTypeSPA:
		default:
			errs = append(errs, fmt.Errorf("client %q: type must be reg, spa or m2m", c.ID))
		}
		for _, sc := range c.Scopes {
			if !slices.Contains(managementScopes, sc) {
				errs = append(errs, fmt.Errorf("client %q: unknown scope %q", c.ID, sc))
			}
		}
	}
	for k, f := range s.FeatureFlags {
		if !slices.Contains([]string{"b", "i", "s", "j"}, f.Type) {
			errs = append(errs, fmt.Errorf("feature flag %q: type must be b, i, s or j", k))
		}
	}
	for _, w := range s.Webhooks {
		for _, et := range w.EventTypes {
			if !isEventType(et) {
				errs = append(errs, fmt.Errorf("webhook %q: unknown event type %q", w.Name, et))
			}
		}
	}
	return errors.Join(errs...)
}

// normalizeKeyed checks the key of a seed permission or role (kind names
// which) against the keys seen so far, fills in its derived id and default
// name, and records the key. It reports false, after recording the error,
// when the key is missing.
func normalizeKeyed(errs *[]error, seen map[string]bool, kind, key string, id, name *string) bool {
	if key == "" {
		*errs = append(*errs, fmt.Errorf("%s without key", kind))
		return false
	}
	if seen[key] {
		*errs = append(*errs, fmt.Errorf("duplicate %s key %q", kind, key))
	}
	seen[key] = true
	if *id == "" {
		*id = derivedUUID(kind + ":" + key)
	}
	if *name == "" {
		*name = key
	}
	return true
}

// checkRefs records an error for each of refs (keys or codes of kind what)
// that is not in known, naming the owner that refers to it.
func checkRefs(errs *[]error, known map[string]bool, refs []string, owner, what string) {
	for _, k := range refs {
		if !known[k] {
			*errs = append(*errs, fmt.Errorf("%s: unknown %s %q", owner, what, k))
		}
	}
}

// derivedUserID gives a stable kp_<32 hex> id for an email.
func derivedUserID(email string) string {
	sum := sha256.Sum256([]byte("user:" + strings.ToLower(email)))
	return "kp_" + hex.EncodeToString(sum[:16])
}

// derivedUUID gives a stable UUIDv7-shaped id for a name.
func derivedUUID(name string) string {
	sum := sha256.Sum256([]byte(name))
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x70
	b[8] = (b[8] & 0x3f) | 0x80
	return formatUUID(b)
}
