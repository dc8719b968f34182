package directory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"permsync/kinde"
	"permsync/store"
)

// Sync statuses and phases, as stored in dir_sync.
const (
	statusNever   = "never"
	statusRunning = "running"
	statusDone    = "done"

	phasePermissions   = "permissions"
	phaseRoles         = "roles"
	phaseOrganizations = "organizations"
	phaseMembers       = "members"
	phaseSweep         = "sweep"
)

// Defaults for SyncOptions.
const (
	DefaultInterval   = 15 * time.Minute
	DefaultRetryAfter = time.Minute
	leaseFor          = 2 * time.Minute
)

// Kinde is what the directory reads from Kinde's Management API.
// *kinde.Client satisfies it.
type Kinde interface {
	AllPermissions(ctx context.Context) ([]kinde.Permission, error)
	AllRoles(ctx context.Context) ([]kinde.Role, error)
	AllRolePermissions(ctx context.Context, roleID string) ([]kinde.Permission, error)
	AllOrganizations(ctx context.Context) ([]kinde.Organization, error)
	AllOrganizationUsers(ctx context.Context, orgCode string, f kinde.OrgUserFilter) ([]kinde.OrganizationUser, error)
	OrganizationUserRoles(ctx context.Context, orgCode, userID string) ([]kinde.OrganizationUserRole, error)
	OrganizationUserPermissions(ctx context.Context, orgCode, userID string) ([]kinde.OrganizationUserPermission, error)
}

// Loss is what a user no longer holds in an organization after a change.
type Loss struct {
	UserID  string
	OrgCode string
	Keys    []string // permission keys, sorted
	Reason  string   // e.g. "role analyst no longer grants export:reports"
}

// Removed is a permission that no longer exists at Kinde, with whoever held
// it just before.
type Removed struct {
	ID      string
	Key     string
	Holders []Holder
}

// Change is what one step of keeping the directory true took away.
type Change struct {
	Source             string // "sync", "reconciliation" or "webhook"
	Losses             []Loss
	DeletedPermissions []Removed
}

// Empty reports whether the change took nothing away.
func (c *Change) Empty() bool {
	return c == nil || len(c.Losses) == 0 && len(c.DeletedPermissions) == 0
}

// LossUsers returns the distinct users of c.Losses, sorted.
func (c *Change) LossUsers() []string {
	if c == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, l := range c.Losses {
		seen[l.UserID] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

func (c *Change) add(o *Change) {
	c.Losses = append(c.Losses, o.Losses...)
	c.DeletedPermissions = append(c.DeletedPermissions, o.DeletedPermissions...)
}

// Enforcer acts on what a change took away, inside the transaction that
// records the change in the directory: it makes the losers lose it (denials,
// refresh_claims fan-out). after, if not nil, runs once the transaction has
// committed (events).
type Enforcer interface {
	EnforceTx(ctx context.Context, tx *store.Tx, c *Change) (after func(context.Context), err error)
}

// SyncOptions configure a Syncer. Zero values take the defaults.
type SyncOptions struct {
	// Interval is the time between the end of one full run and the start of
	// the next: the reconciliation interval (PERMSYNC_RECONCILE_INTERVAL).
	Interval time.Duration
	// RetryAfter is the wait after a failed run before it resumes.
	RetryAfter time.Duration
	// Owner names this process in the lease that lets one replica at a time
	// run the sync; "" means a random name.
	Owner  string
	Logger *slog.Logger
}

// Syncer runs the full sync: at start, resuming a run a restart
// interrupted, then every Interval as the reconciliation.
type Syncer struct {
	db   *store.DB
	kc   Kinde
	enf  Enforcer
	opts SyncOptions
	log  *slog.Logger

	trigger chan struct{}
	mu      sync.Mutex // one run at a time in this process
}

// NewSyncer returns a Syncer. enf may be nil (nothing is enforced: tests of
// the copy alone).
func NewSyncer(db *store.DB, kc Kinde, enf Enforcer, opts SyncOptions) *Syncer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = DefaultRetryAfter
	}
	if opts.Owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.Owner = hex.EncodeToString(b[:])
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Syncer{db: db, kc: kc, enf: enf, opts: opts, log: opts.Logger, trigger: make(chan struct{}, 1)}
}

// Trigger asks Run for a run now (at most one is queued).
func (s *Syncer) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// Run syncs now, then every Interval (RetryAfter after a failure), until
// ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	for {
		wait := s.opts.Interval
		if err := s.RunOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.WarnContext(ctx, "directory: sync failed; it resumes later", "error", err, "retry_in", s.opts.RetryAfter)
			wait = s.opts.RetryAfter
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.trigger:
			t.Stop()
		}
	}
}

// ErrBusy is returned by RunOnce when another process holds the sync's
// lease.
var ErrBusy = errors.New("directory: another process is running the sync")

// RunOnce runs one full sync, or resumes the one a restart or failure
// interrupted, to the end. What it finds taken away since the last run is
// enforced as it goes.
func (s *Syncer) RunOnce(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, err := s.db.DirClaimSync(ctx, s.opts.Owner, time.Now(), time.Now().Add(leaseFor))
	if err != nil {
		return err
	}
	if !ok {
		return ErrBusy
	}
	defer func() { _ = s.db.DirReleaseSync(context.WithoutCancel(ctx), s.opts.Owner) }()

	st, err := s.db.DirSyncState(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	if st.Status != statusRunning {
		st.Run++
		st.Status, st.Phase, st.ResumeAfter = statusRunning, phasePermissions, ""
		st.OrgsTotal, st.OrgsDone, st.Calls, st.StartedAt = 0, 0, 0, now
	} else {
		s.log.InfoContext(ctx, "directory: resuming an interrupted sync", "run", st.Run, "phase", st.Phase,
			"resume_after", st.ResumeAfter, "orgs_done", st.OrgsDone)
	}
	st.UpdatedAt = now
	if err := s.db.PutDirSyncState(ctx, st); err != nil {
		return err
	}
	r := &run{s: s, st: st, source: "reconciliation"}
	if st.CompletedRun == 0 {
		r.source = "sync"
	}
	r.calls.Store(st.Calls)
	// The sync is the lowest priority on the shared Kinde budget: it gets
	// only the turns that interactive work and fan-outs leave.
	kctx := kinde.WithPriority(kinde.WithCallCounter(ctx, &r.calls), kinde.PrioritySync)
	if err := r.do(ctx, kctx); err != nil {
		// Record the failure on the state as last committed: progress made in
		// memory by the step that failed must not be kept.
		wctx := context.WithoutCancel(ctx)
		if saved, rerr := s.db.DirSyncState(wctx); rerr == nil {
			saved.Calls = r.calls.Load()
			saved.LastError, saved.LastErrorAt, saved.UpdatedAt = err.Error(), time.Now(), time.Now()
			if perr := s.db.PutDirSyncState(wctx, saved); perr != nil {
				s.log.WarnContext(ctx, "directory: could not record the sync's failure", "error", perr)
			}
		}
		return err
	}
	return nil
}

// run is one full sync run.
type run struct {
	s      *Syncer
	st     *store.DirSyncState
	source string
	calls  atomic.Int64

	perms     []kinde.Permission
	roleByKey map[string]kinde.Role
	rolePerms map[string][]string // role id → permission keys
}

func (r *run) do(ctx, kctx context.Context) error {
	s, st := r.s, r.st
	// Permissions and roles are few and cheap: a resumed run reads them again.
	if err := r.permissions(ctx, kctx); err != nil {
		return fmt.Errorf("sync permissions: %w", err)
	}
	if err := r.roles(ctx, kctx); err != nil {
		return fmt.Errorf("sync roles: %w", err)
	}
	st.Phase = phaseOrganizations
	orgs, err := s.kc.AllOrganizations(kctx)
	if err != nil {
		return fmt.Errorf("sync organizations: %w", err)
	}
	rows := make([]store.DirOrganization, len(orgs))
	for i, o := range orgs {
		rows[i] = store.DirOrganization{Code: o.Code, Name: o.Name}
	}
	slices.SortFunc(rows, func(a, b store.DirOrganization) int { return strings.Compare(a.Code, b.Code) })
	st.Phase, st.OrgsTotal = phaseMembers, len(rows)
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DirUpsertOrganizations(ctx, rows, st.Run); err != nil {
			return err
		}
		return r.saveTx(ctx, tx)
	})
	if err != nil {
		return err
	}
	for _, o := range rows {
		if o.Code <= st.ResumeAfter {
			continue
		}
		if err := r.organization(ctx, kctx, o.Code); err != nil {
			return fmt.Errorf("sync organization %s: %w", o.Code, err)
		}
	}
	return r.sweep(ctx)
}

// saveTx records progress inside tx (and extends the lease).
func (r *run) saveTx(ctx context.Context, tx *store.Tx) error {
	r.st.Calls = r.calls.Load()
	r.st.UpdatedAt = time.Now()
	if _, err := tx.DirClaimSync(ctx, r.s.opts.Owner, time.Now(), time.Now().Add(leaseFor)); err != nil {
		return err
	}
	return tx.PutDirSyncState(ctx, r.st)
}

// commit runs fn and enforces what it took away, in one transaction, then
// runs the enforcer's after-commit work.
func (r *run) commit(ctx context.Context, fn func(tx *store.Tx) (*Change, error)) error {
	var after func(context.Context)
	err := r.s.db.InTx(ctx, func(tx *store.Tx) error {
		c, err := fn(tx)
		if err != nil {
			return err
		}
		if !c.Empty() {
			c.Source = r.source
			r.s.log.InfoContext(ctx, "directory: Kinde took something away", "source", r.source,
				"users", len(c.LossUsers()), "deleted_permissions", len(c.DeletedPermissions))
			if r.s.enf != nil {
				if after, err = r.s.enf.EnforceTx(ctx, tx, c); err != nil {
					return fmt.Errorf("enforce: %w", err)
				}
			}
		}
		return r.saveTx(ctx, tx)
	})
	if err == nil && after != nil {
		after(ctx)
	}
	return err
}

func (r *run) permissions(ctx, kctx context.Context) error {
	r.st.Phase = phasePermissions
	perms, err := r.s.kc.AllPermissions(kctx)
	if err != nil {
		return err
	}
	r.perms = perms
	keys := make([]store.PermissionKey, len(perms))
	for i, p := range perms {
		keys[i] = store.PermissionKey{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}
	}
	// permission.deleted webhooks carry only the id: keep the id → key map.
	if err := r.s.db.UpsertPermissionKeys(ctx, keys); err != nil {
		return err
	}
	return r.commit(ctx, func(tx *store.Tx) (*Change, error) {
		if err := tx.DirUpsertPermissions(ctx, toDirPermissions(perms), r.st.Run); err != nil {
			return nil, err
		}
		gone, err := tx.DirPermissionsNotSeen(ctx, r.st.Run)
		if err != nil {
			return nil, err
		}
		c := &Change{}
		for _, p := range gone {
			rm, err := deletePermissionTx(ctx, tx, p.ID)
			if err != nil {
				return nil, err
			}
			if rm != nil {
				c.DeletedPermissions = append(c.DeletedPermissions, *rm)
			}
		}
		return c, nil
	})
}

// deletePermissionTx removes a permission from the directory and returns it
// with its holders just before.
func deletePermissionTx(ctx context.Context, tx *store.Tx, id string) (*Removed, error) {
	rows, err := tx.DirHolderRows(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := tx.DirDeletePermission(ctx, id)
	if err != nil || p == nil {
		return nil, err
	}
	return &Removed{ID: p.ID, Key: p.Key, Holders: groupHolders(rows)}, nil
}

func toDirPermissions(ps []kinde.Permission) []store.DirPermission {
	out := make([]store.DirPermission, len(ps))
	for i, p := range ps {
		out[i] = store.DirPermission{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}
	}
	return out
}

func (r *run) roles(ctx, kctx context.Context) error {
	r.st.Phase = phaseRoles
	roles, err := r.s.kc.AllRoles(kctx)
	if err != nil {
		return err
	}
	r.roleByKey = make(map[string]kinde.Role, len(roles))
	r.rolePerms = make(map[string][]string, len(roles))
	rolePermIDs := make(map[string][]string, len(roles))
	var extra []kinde.Permission
	known := map[string]bool{}
	for _, p := range r.perms {
		known[p.ID] = true
	}
	for _, rl := range roles {
		r.roleByKey[rl.Key] = rl
		perms, err := r.s.kc.AllRolePermissions(kctx, rl.ID)
		if err != nil {
			return err
		}
		for _, p := range perms {
			r.rolePerms[rl.ID] = append(r.rolePerms[rl.ID], p.Key)
			rolePermIDs[rl.ID] = append(rolePermIDs[rl.ID], p.ID)
			if !known[p.ID] {
				known[p.ID] = true
				extra = append(extra, p) // created since the permissions were listed
			}
		}
	}
	r.perms = append(r.perms, extra...)
	return r.commit(ctx, func(tx *store.Tx) (*Change, error) {
		if err := tx.DirUpsertPermissions(ctx, toDirPermissions(extra), r.st.Run); err != nil {
			return nil, err
		}
		rows := make([]store.DirRole, len(roles))
		for i, rl := range roles {
			rows[i] = store.DirRole{ID: rl.ID, Key: rl.Key, Name: rl.Name, Description: rl.Description, IsDefault: rl.IsDefaultRole}
		}
		if err := tx.DirUpsertRoles(ctx, rows, r.st.Run); err != nil {
			return nil, err
		}
		c := &Change{}
		for _, rl := range roles {
			lost, err := setRolePermissionsTx(ctx, tx, rl.ID, rl.Key, rolePermIDs[rl.ID])
			if err != nil {
				return nil, err
			}
			c.Losses = append(c.Losses, lost...)
		}
		gone, err := tx.DirRolesNotSeen(ctx, r.st.Run)
		if err != nil {
			return nil, err
		}
		for _, rl := range gone {
			lost, err := deleteRoleTx(ctx, tx, rl)
			if err != nil {
				return nil, err
			}
			c.Losses = append(c.Losses, lost...)
		}
		return c, nil
	})
}

// setRolePermissionsTx makes ids the role's permissions and returns what its
// holders lost (nothing when the set did not change).
func setRolePermissionsTx(ctx context.Context, tx *store.Tx, roleID, roleKey string, ids []string) ([]Loss, error) {
	old, err := tx.DirRolePermissionIDsOf(ctx, roleID)
	if err != nil {
		return nil, err
	}
	if sameSet(old, ids) {
		return nil, nil
	}
	before, err := tx.DirEffective(ctx, store.ScopeRoleHolders, roleID)
	if err != nil {
		return nil, err
	}
	if err := tx.DirSetRolePermissions(ctx, roleID, ids); err != nil {
		return nil, err
	}
	after, err := tx.DirEffective(ctx, store.ScopeRoleHolders, roleID)
	if err != nil {
		return nil, err
	}
	return diffGrants(before, after, "role "+roleKey+" no longer grants it"), nil
}

// deleteRoleTx removes a role and returns what its holders lost.
func deleteRoleTx(ctx context.Context, tx *store.Tx, rl store.DirRole) ([]Loss, error) {
	before, err := tx.DirEffective(ctx, store.ScopeRoleHolders, rl.ID)
	if err != nil {
		return nil, err
	}
	holders := map[string]bool{}
	for g := range before {
		holders[g.UserID] = true
	}
	if err := tx.DirDeleteRole(ctx, rl.ID); err != nil {
		return nil, err
	}
	after := map[store.DirGrant]bool{}
	for u := range holders {
		a, err := tx.DirEffective(ctx, store.ScopeUser, u)
		if err != nil {
			return nil, err
		}
		maps.Copy(after, a)
	}
	return diffGrants(before, after, "role "+rl.Key+" was deleted"), nil
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// diffGrants returns what is in before and not in after, per user and
// organization.
func diffGrants(before, after map[store.DirGrant]bool, reason string) []Loss {
	type uo struct{ user, org string }
	lost := map[uo][]string{}
	for g := range before {
		if !after[g] {
			k := uo{g.UserID, g.OrgCode}
			lost[k] = append(lost[k], g.Key)
		}
	}
	out := make([]Loss, 0, len(lost))
	for k, keys := range lost {
		slices.Sort(keys)
		out = append(out, Loss{UserID: k.user, OrgCode: k.org, Keys: keys, Reason: reason})
	}
	slices.SortFunc(out, func(a, b Loss) int {
		if c := strings.Compare(a.UserID, b.UserID); c != 0 {
			return c
		}
		return strings.Compare(a.OrgCode, b.OrgCode)
	})
	return out
}

// organization reads one organization's members, their roles and direct
// grants, and replaces the directory's copy of it.
func (r *run) organization(ctx, kctx context.Context, code string) error {
	users, members, err := readOrganization(kctx, r.s.kc, code, r.perms, r.roleByKey, r.rolePerms)
	if kinde.IsNotFound(err) {
		r.s.log.InfoContext(ctx, "directory: organization vanished during the sync; the next run removes it", "org_code", code)
		return r.commit(ctx, func(tx *store.Tx) (*Change, error) { r.advance(code); return &Change{}, nil })
	}
	if err != nil {
		return err
	}
	return r.commit(ctx, func(tx *store.Tx) (*Change, error) {
		if err := tx.DirUpsertUsers(ctx, users); err != nil {
			return nil, err
		}
		before, err := tx.DirEffective(ctx, store.ScopeOrganization, code)
		if err != nil {
			return nil, err
		}
		if err := tx.DirReplaceOrganizationMembers(ctx, code, members); err != nil {
			return nil, err
		}
		after, err := tx.DirEffective(ctx, store.ScopeOrganization, code)
		if err != nil {
			return nil, err
		}
		r.advance(code)
		return &Change{Losses: diffGrants(before, after, "Kinde no longer grants it in "+code)}, nil
	})
}

func (r *run) advance(code string) {
	r.st.ResumeAfter = code
	r.st.OrgsDone++
}

// readOrganization reads an organization's members with their roles, and
// finds their direct grants with whichever costs fewer calls: one filtered
// listing per permission not already held by every member through roles, or
// one permissions read per member whose roles do not already grant every
// permission. A permission held both through a role and directly is
// recorded as through the role (Kinde's listings cannot tell them apart).
func readOrganization(ctx context.Context, kc Kinde, code string, perms []kinde.Permission,
	roleByKey map[string]kinde.Role, rolePerms map[string][]string) ([]store.DirUser, []store.DirMember, error) {
	list, err := kc.AllOrganizationUsers(ctx, code, kinde.OrgUserFilter{})
	if err != nil {
		return nil, nil, err
	}
	users := make([]store.DirUser, 0, len(list))
	members := make([]store.DirMember, 0, len(list))
	viaRoles := make([]map[string]bool, len(list)) // per member: keys held through roles
	index := make(map[string]int, len(list))
	for i, m := range list {
		users = append(users, store.DirUser{ID: m.ID, Email: m.Email, Name: displayName(m), Suspended: m.IsSuspended})
		dm := store.DirMember{UserID: m.ID}
		viaRoles[i] = map[string]bool{}
		for _, rk := range m.Roles {
			rl, ok := roleByKey[rk]
			if !ok {
				continue // a role created since the roles were listed: the next run has it
			}
			dm.RoleIDs = append(dm.RoleIDs, rl.ID)
			for _, k := range rolePerms[rl.ID] {
				viaRoles[i][k] = true
			}
		}
		members = append(members, dm)
		index[m.ID] = i
	}
	permID := make(map[string]string, len(perms))
	var open []kinde.Permission // keys some member does not hold through roles
	for _, p := range perms {
		permID[p.Key] = p.ID
		for i := range list {
			if !viaRoles[i][p.Key] {
				open = append(open, p)
				break
			}
		}
	}
	var partial []int // members whose roles do not grant every permission
	for i := range list {
		if len(viaRoles[i]) < len(perms) {
			partial = append(partial, i)
		}
	}
	if len(open) <= len(partial) {
		for _, p := range open {
			holders, err := kc.AllOrganizationUsers(ctx, code, kinde.OrgUserFilter{Permissions: []string{p.Key}})
			if err != nil {
				return nil, nil, err
			}
			for _, h := range holders {
				i, ok := index[h.ID]
				if ok && !viaRoles[i][p.Key] {
					members[i].PermissionIDs = append(members[i].PermissionIDs, p.ID)
				}
			}
		}
		return users, members, nil
	}
	for _, i := range partial {
		ps, err := kc.OrganizationUserPermissions(ctx, code, list[i].ID)
		if kinde.IsNotFound(err) {
			continue // left the organization meanwhile
		}
		if err != nil {
			return nil, nil, err
		}
		for _, p := range ps {
			if len(p.Roles) == 0 && !viaRoles[i][p.Key] {
				id := p.ID
				if id == "" {
					id = permID[p.Key]
				}
				members[i].PermissionIDs = append(members[i].PermissionIDs, id)
			}
		}
	}
	return users, members, nil
}

func displayName(m kinde.OrganizationUser) string {
	if m.FullName != "" {
		return m.FullName
	}
	return strings.TrimSpace(m.FirstName + " " + m.LastName)
}

// sweep removes the organizations this run did not see and users who
// belong nowhere, then marks the run complete.
func (r *run) sweep(ctx context.Context) error {
	st := r.st
	st.Phase = phaseSweep
	defer func() {
		// The run rewrote much of the directory: let the planner see it.
		if err := r.s.db.DirAnalyze(ctx); err != nil {
			r.s.log.WarnContext(ctx, "directory: could not refresh the planner's statistics", "error", err)
		}
	}()
	return r.commit(ctx, func(tx *store.Tx) (*Change, error) {
		gone, err := tx.DirOrganizationsNotSeen(ctx, st.Run)
		if err != nil {
			return nil, err
		}
		c := &Change{}
		for _, code := range gone {
			before, err := tx.DirEffective(ctx, store.ScopeOrganization, code)
			if err != nil {
				return nil, err
			}
			if err := tx.DirDeleteOrganization(ctx, code); err != nil {
				return nil, err
			}
			c.Losses = append(c.Losses, diffGrants(before, nil, "organization "+code+" was deleted")...)
		}
		if _, err := tx.DirDeleteUsersWithoutMembership(ctx); err != nil {
			return nil, err
		}
		now := time.Now()
		st.Status, st.Phase, st.ResumeAfter = statusDone, "", ""
		st.CompletedAt, st.CompletedRun = now, st.Run
		st.LastCalls, st.LastDuration = r.calls.Load(), now.Sub(st.StartedAt)
		st.LastError, st.LastErrorAt = "", time.Time{}
		r.s.log.InfoContext(ctx, "directory: sync complete", "run", st.Run, "calls", st.LastCalls,
			"duration", st.LastDuration.Round(time.Millisecond), "organizations", st.OrgsTotal)
		return c, nil
	})
}
