package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"permsync/store"
)

// Role is a role claim of a Kinde access token: {id, key, name}.
type Role = store.Role

// accessClaims are the Kinde access-token claims permsync reads. aud is an
// array, possibly empty; go-oidc parses it for us. roles is absent unless the
// app turns on "Roles (array)" in Kinde; it is read leniently. A business in
// Hasura mode gets the x-hasura-* names instead.
type accessClaims struct {
	Subject     string     `json:"sub"`
	AuthParty   string     `json:"azp"`
	OrgCode     string     `json:"org_code"`
	Permissions stringList `json:"permissions"`
	Roles       roleList   `json:"roles"`
	Email       string     `json:"email"`

	HasuraOrgCode     string     `json:"x-hasura-org-code"`
	HasuraPermissions stringList `json:"x-hasura-permissions"`
	HasuraRoles       roleList   `json:"x-hasura-roles"`
}

// read returns the org code, permission keys (sorted, unique) and roles of
// the token, from Kinde's claim names or the Hasura ones.
func (c accessClaims) read() (org string, perms []string, roles []Role) {
	return firstNonEmpty(c.OrgCode, c.HasuraOrgCode), sortedUnique(append(c.Permissions, c.HasuraPermissions...)),
		append(c.Roles, c.HasuraRoles...)
}

// roleList decodes a roles claim leniently: Kinde's [{id,key,name}], bare
// keys ["admin"], a mix, or null. An entry of another shape is skipped, so an
// unexpected roles claim never fails a sign-in (permsync decides on
// permissions, not roles).
type roleList []Role

func (l *roleList) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		*l = nil
		return nil
	}
	out := make(roleList, 0, len(raw))
	for _, r := range raw {
		var key string
		if json.Unmarshal(r, &key) == nil {
			if key != "" {
				out = append(out, Role{Key: key, Name: key})
			}
			continue
		}
		var role Role
		if json.Unmarshal(r, &role) == nil && (role.Key != "" || role.ID != "") {
			out = append(out, role)
		}
	}
	*l = out
	return nil
}

// stringList decodes a list of keys: a JSON array of strings, or one string
// holding a comma-separated list (Hasura's "{a,b}" array literal included).
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*l = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
			*l = nil
			return nil
		}
		return fmt.Errorf("want a list of strings: %w", err)
	}
	*l = strings.FieldsFunc(strings.Trim(s, "{}"), func(r rune) bool { return r == ',' || r == ' ' })
	return nil
}

// idClaims are the ID-token claims permsync reads (Kinde's ID token; devkinde/tokens.go issues the same).
type idClaims struct {
	Email      string `json:"email"`
	Name       string `json:"name"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
}

// displayName picks the best name an ID token offers.
func (c idClaims) displayName() string {
	if c.Name != "" {
		return c.Name
	}
	if n := strings.TrimSpace(c.GivenName + " " + c.FamilyName); n != "" {
		return n
	}
	return c.Email
}

// NormalizeUserID turns Kinde's two user id spellings, "kp:<hex>" (seen in
// tokens) and "kp_<hex>" (the Management API and webhooks), into the second.
func NormalizeUserID(id string) string {
	id = strings.TrimSpace(id)
	if rest, ok := strings.CutPrefix(id, "kp:"); ok {
		return "kp_" + rest
	}
	return id
}

// Tokens are the tokens of one session, kept only encrypted at rest.
type Tokens struct {
	Access  string `json:"access_token"`
	ID      string `json:"id_token,omitempty"`
	Refresh string `json:"refresh_token,omitempty"`
}

// Grant is what a verified token response tells us about the user.
type Grant struct {
	UserID      string
	OrgCode     string
	Email       string
	Name        string
	Permissions []string
	Roles       []Role

	AccessIssuedAt   time.Time
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
	Tokens           Tokens

	// ClaimsAt is when the claims are known to be current at Kinde: for a
	// sign-in, when the code exchange started (Kinde builds a sign-in's
	// claims afresh). Set by CompleteLogin; a refresh works it out itself.
	ClaimsAt time.Time
}

// sortedUnique returns the keys sorted with duplicates and blanks removed.
func sortedUnique(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// diffKeys reports which keys were added to and removed from old to get new.
func diffKeys(old, new []string) (added, removed []string) {
	in := func(list []string, k string) bool { _, ok := slices.BinarySearch(list, k); return ok }
	o, n := sortedUnique(old), sortedUnique(new)
	for _, k := range n {
		if !in(o, k) {
			added = append(added, k)
		}
	}
	for _, k := range o {
		if !in(n, k) {
			removed = append(removed, k)
		}
	}
	return added, removed
}
