package auth

import (
	"time"

	"permsync/store"
)

// Denials are the live denials (store.Denial) in the shape the request guard
// needs: for each scope and key, whether the change is still on its way to
// Kinde (denied to every session) and otherwise the latest time Kinde made
// it (denied to sessions whose claims are not newer). A Denials is never
// modified once built; a nil *Denials denies nothing.
type Denials struct {
	everyone map[string]denialRule
	scoped   map[denialScope]map[string]denialRule // nil when there is none
}

type denialScope struct{ user, org string }

// denialRule merges the denials of one key in one scope.
type denialRule struct {
	open    bool  // one of them is not settled at Kinde yet
	settled int64 // the latest settled time, unix ms
}

// denies reports whether the rule takes the key from claims dated claimsAt
// (unix ms).
func (r denialRule) denies(claimsAt int64) bool { return r.open || claimsAt <= r.settled }

// newDenials builds the guard's view of the denials live at now, and returns
// the earliest expiry among them (zero if none expires), after which it must
// be rebuilt.
func newDenials(ds []store.Denial, now time.Time) (*Denials, time.Time) {
	d := &Denials{everyone: map[string]denialRule{}}
	var next time.Time
	for _, x := range ds {
		settled := !x.SettledAt.IsZero()
		if settled && !now.Before(x.ExpiresAt) {
			continue
		}
		if settled && (next.IsZero() || x.ExpiresAt.Before(next)) {
			next = x.ExpiresAt
		}
		rules := d.everyone
		if !x.Everyone() {
			sc := denialScope{x.UserID, x.OrgCode}
			if d.scoped == nil {
				d.scoped = map[denialScope]map[string]denialRule{}
			}
			if rules = d.scoped[sc]; rules == nil {
				rules = map[string]denialRule{}
				d.scoped[sc] = rules
			}
		}
		r := rules[x.PermissionKey]
		if settled {
			r.settled = max(r.settled, x.SettledAt.UnixMilli())
		} else {
			r.open = true
		}
		rules[x.PermissionKey] = r
	}
	return d, next
}

// NewDenials builds the guard's view of the denials in force at now.
func NewDenials(ds []store.Denial, now time.Time) *Denials {
	d, _ := newDenials(ds, now)
	return d
}

// view is the denials that can apply to one session: the rules of its
// scopes and its claims time.
type view struct {
	at    int64 // claims time, unix ms; 0 when unknown (older than any change)
	rules [4]map[string]denialRule
}

func (d *Denials) view(userID, orgCode string, claimsAt time.Time) view {
	var v view
	if d == nil {
		return v
	}
	if !claimsAt.IsZero() {
		v.at = claimsAt.UnixMilli()
	}
	v.rules[0] = d.everyone
	if d.scoped != nil {
		v.rules[1] = d.scoped[denialScope{userID, ""}]
		if orgCode != "" {
			v.rules[2] = d.scoped[denialScope{userID, orgCode}]
			v.rules[3] = d.scoped[denialScope{"", orgCode}]
		}
	}
	return v
}

func (v *view) denies(key string) bool {
	for _, rules := range v.rules {
		if r, ok := rules[key]; ok && r.denies(v.at) {
			return true
		}
	}
	return false
}

// Denied returns the keys of perms that the denials take from a session of
// userID in orgCode whose claims date from claimsAt (nil when none is).
func (d *Denials) Denied(userID, orgCode string, claimsAt time.Time, perms []string) map[string]struct{} {
	v := d.view(userID, orgCode, claimsAt)
	var out map[string]struct{}
	for _, k := range perms {
		if v.denies(k) {
			if out == nil {
				out = map[string]struct{}{}
			}
			out[k] = struct{}{}
		}
	}
	return out
}

// Denies reports whether key is taken from such a session.
func (d *Denials) Denies(userID, orgCode string, claimsAt time.Time, key string) bool {
	v := d.view(userID, orgCode, claimsAt)
	return v.denies(key)
}
