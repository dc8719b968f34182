package devkinde

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// GenerateOptions size a generated tenant. Zero fields take the defaults
// noted on each.
type GenerateOptions struct {
	// Seed picks the tenant: the same options always give the same tenant
	// (ids, names, roles and grants).
	Seed uint64
	// Organizations and Users to add to the default seed (at least 1 each).
	Organizations int
	Users         int
	// Roles and Permissions to add to the default seed's; defaults 8 and 20.
	Roles       int
	Permissions int
	// DirectGrants is the fraction of memberships that also get a direct
	// permission; default 0.05.
	DirectGrants float64
	// SecondOrg is the fraction of users who are members of a second
	// organization; default 0.1.
	SecondOrg float64
}

// generatedResources and generatedActions name generated permissions
// ("read:invoices", ...).
var (
	generatedResources = []string{"invoices", "projects", "tickets", "files", "billing", "teams", "audits", "dashboards"}
	generatedActions   = []string{"read", "write", "delete", "export", "approve"}
)

// GenerateSeed returns the default seed (its demo accounts, clients and
// roles) plus a generated tenant: o.Organizations organizations ("Customer
// 0001", ...), o.Users users spread over them (user0001@customer0001.test,
// ...; a fraction in a second organization), generated roles granting random
// subsets of generated permissions, and direct grants. Every generated
// membership holds the analyst role (read and export reports) or the viewer
// role, so export:reports has thousands of holders at the 1,000 × 5,000 size.
// Generated users have no password: they hold permissions, they do not sign
// in. The result is deterministic in o.
func GenerateSeed(o GenerateOptions) *Seed {
	o.Organizations, o.Users = max(o.Organizations, 1), max(o.Users, 1)
	if o.Roles <= 0 {
		o.Roles = 8
	}
	if o.Permissions <= 0 {
		o.Permissions = 20
	}
	if o.DirectGrants <= 0 {
		o.DirectGrants = 0.05
	}
	if o.SecondOrg <= 0 {
		o.SecondOrg = 0.1
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x7065726d73796e63)) // "permsync"
	sd := DefaultSeed()

	var permKeys []string
	for i := range o.Permissions {
		res := generatedResources[i%len(generatedResources)]
		act := generatedActions[(i/len(generatedResources))%len(generatedActions)]
		key := act + ":" + res
		if n := i / (len(generatedResources) * len(generatedActions)); n > 0 {
			key += strconv.Itoa(n + 1)
		}
		permKeys = append(permKeys, key)
		sd.Permissions = append(sd.Permissions, SeedPermission{Key: key,
			Name: strings.ToUpper(act[:1]) + act[1:] + " " + res})
	}
	var roleKeys []string
	for i := range o.Roles {
		key := fmt.Sprintf("role_%02d", i+1)
		n := 2 + rng.IntN(min(5, len(permKeys)-1)+1)
		perms := pick(rng, permKeys, min(n, len(permKeys)))
		roleKeys = append(roleKeys, key)
		sd.Roles = append(sd.Roles, SeedRole{Key: key, Name: fmt.Sprintf("Generated role %02d", i+1),
			Permissions: perms})
	}
	orgCodes := make([]string, o.Organizations)
	for i := range o.Organizations {
		sum := sha256.Sum256([]byte(fmt.Sprintf("org:%d:%d", o.Seed, i)))
		orgCodes[i] = "org_" + hex.EncodeToString(sum[:6])
		sd.Organizations = append(sd.Organizations, SeedOrganization{Code: orgCodes[i],
			Name: fmt.Sprintf("Customer %04d", i+1), Handle: fmt.Sprintf("customer%04d", i+1)})
	}
	membership := func(code string) SeedMembership {
		m := SeedMembership{Code: code, Roles: []string{"analyst"}}
		if rng.Float64() < 0.2 {
			m.Roles[0] = "viewer"
		}
		m.Roles = append(m.Roles, roleKeys[rng.IntN(len(roleKeys))])
		if rng.Float64() < o.DirectGrants {
			m.Permissions = append(m.Permissions, permKeys[rng.IntN(len(permKeys))])
		}
		return m
	}
	for i := range o.Users {
		home := i % o.Organizations
		u := SeedUser{
			Email:     fmt.Sprintf("user%04d@customer%04d.test", i+1, home+1),
			FirstName: "User", LastName: fmt.Sprintf("%04d", i+1),
		}
		u.Organizations = append(u.Organizations, membership(orgCodes[home]))
		if o.Organizations > 1 && rng.Float64() < o.SecondOrg {
			other := (home + 1 + rng.IntN(o.Organizations-1)) % o.Organizations
			u.Organizations = append(u.Organizations, membership(orgCodes[other]))
		}
		sd.Users = append(sd.Users, u)
	}
	if err := sd.normalize(); err != nil {
		panic("devkinde: generated seed is invalid: " + err.Error()) // a bug in this function
	}
	return sd
}

// pick returns n distinct elements of from, in from's order.
func pick(rng *rand.Rand, from []string, n int) []string {
	idx := rng.Perm(len(from))[:n]
	chosen := make([]bool, len(from))
	for _, i := range idx {
		chosen[i] = true
	}
	var out []string
	for i, s := range from {
		if chosen[i] {
			out = append(out, s)
		}
	}
	return out
}

// ParseGenerate reads a generated tenant's size as ORGSxUSERS, optionally
// followed by @SEED: "1000x5000", "100x500@7". The seed defaults to 1.
func ParseGenerate(s string) (GenerateOptions, error) {
	o := GenerateOptions{Seed: 1}
	size, seed, hasSeed := strings.Cut(strings.TrimSpace(s), "@")
	orgs, users, ok := strings.Cut(size, "x")
	var err1, err2 error
	o.Organizations, err1 = strconv.Atoi(orgs)
	o.Users, err2 = strconv.Atoi(users)
	if !ok || err1 != nil || err2 != nil || o.Organizations < 1 || o.Users < 1 ||
		o.Organizations > 100_000 || o.Users > 1_000_000 {
		return o, fmt.Errorf("devkinde: generate %q: want ORGSxUSERS[@SEED], e.g. 1000x5000 or 100x500@7", s)
	}
	if hasSeed {
		n, err := strconv.ParseUint(seed, 10, 64)
		if err != nil {
			return o, fmt.Errorf("devkinde: generate %q: the seed after @ must be a whole number", s)
		}
		o.Seed = n
	}
	return o, nil
}
