package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"permsync/apperr"
	"permsync/events"
	"permsync/fanout"
	"permsync/store"
)

// FanoutRBACEdit is the fan-out kind of a confirmed RBAC edit.
const FanoutRBACEdit = fanout.KindRBACEdit

// RBAC edit states, as stored.
const (
	EditPending  = store.RBACEditPending
	EditApplying = store.RBACEditApplying
	EditApplied  = store.RBACEditApplied
	EditFailed   = store.RBACEditFailed
	EditUndone   = store.RBACEditUndone
)

// newEditID returns a random edit id, "ed_" and 16 hex digits.
func newEditID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "ed_" + hex.EncodeToString(b[:])
}

// UndoWindow is how long a confirmed change waits before Kinde is called.
func (s *Service) UndoWindow() time.Duration { return s.undoWindow }

// tenant is the RBAC edits' view of the directory.
func (s *Service) tenant() RBACDirectory { return tenantCopy{db: s.db, dir: s.dir} }

// PreviewEdit resolves an edit from its form and plans it from the
// directory: who loses, gains or keeps what, and why; nothing is changed.
// Errors (apperr codes): Forbidden; NotFound (unknown role, permission or
// user); Invalid (the edit changes nothing, or a bad key); Conflict (a key
// taken, or the edit would lock the actor out); Unavailable (the directory
// has not finished its first sync).
func (s *Service) PreviewEdit(ctx context.Context, a Actor, in EditInput) (*EditPreview, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	if err := s.requireSynced(ctx); err != nil {
		return nil, err
	}
	return planEdit(ctx, s.tenant(), s.adminKey, a, in)
}

// requireSynced refuses while the directory is on its first sync: until
// then it cannot say who holds what.
func (s *Service) requireSynced(ctx context.Context) error {
	_, st, err := s.directoryStatus(ctx)
	if err != nil {
		return err
	}
	if !st.Synced {
		return apperr.E(apperr.Unavailable, "The directory is still on its first sync ("+st.Summary+
			"); permsync cannot yet say who this change affects. Try again when it has finished.")
	}
	return nil
}

// EditResult is what ConfirmEdit did.
type EditResult struct {
	EditID   string
	FanoutID string
	Summary  string
	Denied   int       // (user, organization, key) denials recorded
	Affected int       // users whose claims are refreshed once Kinde made the change
	DueAt    time.Time // when the Kinde call runs; until then Undo cancels it
}

// ConfirmEdit makes an RBAC edit. confirm must equal the preview's
// ConfirmWord when it has one (edits that take something away).
//
// The click does not call Kinde. In one local transaction it records the
// edit, a denial of each key for each user who loses it by every path in
// that organization (unsettled: refused to their sessions there from the
// next request; once Kinde made the change, only to tokens whose claims
// predate it), the fan-out with exactly the users whose claims change, the
// durable job that makes the change at Kinde once the undo window has
// passed (fanout.ScheduleKindeCallTx), and the audit entry. Then the
// affected users' open pages are told. Users who keep a key by another path
// (another role, a direct grant) are not denied it.
//
// Errors: as PreviewEdit, plus Invalid for a wrong confirmation.
func (s *Service) ConfirmEdit(ctx context.Context, a Actor, in EditInput, confirm string) (*EditResult, error) {
	pv, err := s.PreviewEdit(ctx, a, in)
	if err != nil {
		return nil, err
	}
	if pv.ConfirmWord != "" && strings.TrimSpace(confirm) != pv.ConfirmWord {
		return nil, apperr.E(apperr.Invalid, fmt.Sprintf("Type %q exactly to confirm.", pv.ConfirmWord))
	}
	p := pv.Plan
	now := time.Now()
	due := now.Add(s.undoWindow)
	editID := newEditID()
	f := &store.Fanout{ID: fanout.NewID(), Kind: FanoutRBACEdit, ActorID: a.UserID, ActorEmail: a.Email,
		PermissionID: p.Edit.Permission.ID, PermissionKey: p.Edit.Permission.Key, Reason: p.Summary + ".",
		CreatedAt: now, Phase: store.FanoutPhaseWaiting, KindeDueAt: due}
	items := refreshItems(p)
	var denials []store.Denial
	for _, l := range p.Losers() {
		for _, k := range l.Lost {
			denials = append(denials, store.Denial{PermissionKey: k, UserID: l.UserID, OrgCode: l.OrgCode,
				PermissionID: permissionIDFor(p.Edit, k), CreatedAt: now, FanoutID: f.ID,
				Reason: l.Reason + " (by " + a.name() + ")"})
		}
	}
	payload, err := json.Marshal(p.Edit)
	if err != nil {
		return nil, errInternal(err)
	}
	planJSON, err := json.Marshal(p)
	if err != nil {
		return nil, errInternal(err)
	}
	rec := &store.RBACEdit{ID: editID, Kind: string(p.Edit.Kind), Payload: string(payload), Summary: p.Summary,
		Plan: string(planJSON), ActorID: a.UserID, ActorEmail: a.Email, FanoutID: f.ID, Affected: len(items),
		CreatedAt: now, DueAt: due}
	target := editTarget(p.Edit)
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateRBACEdit(ctx, rec); err != nil {
			return err
		}
		if err := tx.CreateFanout(ctx, f, items); err != nil {
			return err
		}
		if err := tx.AddDenials(ctx, denials); err != nil {
			return err
		}
		if err := s.fanouts.ScheduleKindeCallTx(ctx, tx, f.ID, due); err != nil {
			return err
		}
		return tx.AddAudit(ctx, store.AuditEntry{ActorID: a.UserID, Actor: a.name(), Action: "rbac." + string(p.Edit.Kind),
			Target: target, Outcome: store.AuditOK,
			Detail: fmt.Sprintf("%s. %d denial(s) in force at once; Kinde call due %s (undo until then); %d user(s) to refresh (edit %s, fan-out %s).",
				p.Summary, len(denials), due.UTC().Format(time.RFC3339), len(items), editID, f.ID)})
	})
	if err != nil {
		s.audit(context.WithoutCancel(ctx), a, "rbac."+string(p.Edit.Kind), target, store.AuditFailed,
			"Could not record the change; nothing was changed.")
		return nil, errInternal(err)
	}
	s.log.InfoContext(ctx, "admin: rbac edit recorded", "edit_id", editID, "kind", p.Edit.Kind, "actor_id", a.UserID,
		"denials", len(denials), "affected", len(items), "kinde_due_at", due)
	if len(denials) > 0 {
		events.NotifyTombstonesChanged(s.pub) // caches first, so the pages' next request sees it
	}
	for _, l := range p.Losers() {
		events.PublishJSON(s.pub, events.UserTopic(l.UserID), events.EventClaimsChanged, events.ClaimsChangedData{
			Stage: events.StageTombstoned, Reason: lossSentence(l), FanoutID: f.ID,
		})
	}
	s.publishProgress(ctx, f.ID, "", "")
	return &EditResult{EditID: editID, FanoutID: f.ID, Summary: p.Summary, Denied: len(denials),
		Affected: len(items), DueAt: due}, nil
}

// lossSentence says in plain words what a user lost and why.
func lossSentence(e UserEffect) string {
	return fmt.Sprintf("%s: you no longer have %s in %s.", upperFirst(e.Reason), strings.Join(e.Lost, ", "), e.OrgCode)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// permissionIDFor is the id of key when the edit names that permission.
func permissionIDFor(e Edit, key string) string {
	if e.Permission.Key == key {
		return e.Permission.ID
	}
	return ""
}

// refreshItems are the fan-out's users: the plan's Refresh list, each with
// how the edit reaches them.
func refreshItems(p *Plan) []store.FanoutItem {
	emails := map[string]string{}
	for _, e := range p.Effects {
		if emails[e.UserID] == "" {
			emails[e.UserID] = e.Email
		}
	}
	var r fanout.Reason
	switch {
	case p.Edit.Role.Key != "":
		r = fanout.Reason{Kind: fanout.ReasonRole, RoleKey: p.Edit.Role.Key}
	default:
		r = fanout.Reason{Kind: fanout.ReasonDirect}
	}
	items := make([]store.FanoutItem, len(p.Refresh))
	for i, id := range p.Refresh {
		items[i] = store.FanoutItem{UserID: id, Email: emails[id], Reasons: fanout.FormatReasons([]fanout.Reason{r})}
	}
	return items
}

// editTarget names what the edit changes, for the audit log.
func editTarget(e Edit) string {
	switch {
	case e.UserID != "":
		return e.UserEmail + " in " + e.OrgCode
	case e.Role.ID != "":
		return e.Role.ID + " (" + e.Role.Key + ")"
	case e.Permission.ID != "":
		return e.Permission.ID + " (" + e.Permission.Key + ")"
	}
	return e.NewKey
}

// UndoEdit cancels an edit Kinde has not made: in the undo window, or
// while Kinde refuses it. The job will not call Kinde, the denials are
// withdrawn, and the affected users' open pages are told. Errors:
// Forbidden; NotFound; Conflict when Kinde is making it now or already did.
func (s *Service) UndoEdit(ctx context.Context, a Actor, editID string) error {
	if err := s.authorize(ctx, a); err != nil {
		return err
	}
	rec, err := s.db.RBACEdit(ctx, editID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.E(apperr.NotFound, "No such change.")
	}
	if err != nil {
		return errInternal(err)
	}
	var undone bool
	now := time.Now()
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		// The fan-out's phase decides the race with the Kinde call.
		if undone, err = tx.UndoFanout(ctx, rec.FanoutID, now); err != nil || !undone {
			return err
		}
		if _, err := tx.UndoRBACEdit(ctx, rec.ID, now); err != nil {
			return err
		}
		if _, err := tx.WithdrawDenials(ctx, rec.FanoutID); err != nil {
			return err
		}
		return tx.AddAudit(ctx, store.AuditEntry{ActorID: a.UserID, Actor: a.name(), Action: "rbac." + rec.Kind + ".undo",
			Target: rec.ID, Outcome: store.AuditOK,
			Detail: rec.Summary + ": undone before Kinde made it; every denial withdrawn (fan-out " + rec.FanoutID + ")."})
	})
	if err != nil {
		return errInternal(err)
	}
	if !undone {
		return apperr.E(apperr.Conflict, "Too late to undo: Kinde is making this change now, or already has.")
	}
	s.log.InfoContext(ctx, "admin: rbac edit undone", "edit_id", rec.ID, "actor_id", a.UserID)
	events.NotifyTombstonesChanged(s.pub)
	if items, err := s.db.FanoutItems(ctx, rec.FanoutID); err == nil {
		for _, it := range items {
			events.PublishJSON(s.pub, events.UserTopic(it.UserID), events.EventClaimsChanged, events.ClaimsChangedData{
				Stage: events.StageRestored, Reason: "This change was undone: " + rec.Summary + ".", FanoutID: rec.FanoutID,
			})
		}
	}
	s.publishProgress(ctx, rec.FanoutID, "", "")
	return nil
}

// EditView is one confirmed edit, for its page.
type EditView struct {
	store.RBACEdit
	Plan     *Plan
	Fanout   FanoutSummary
	Undoable bool
}

// Edit returns a confirmed edit with its preview and the fan-out's progress.
func (s *Service) Edit(ctx context.Context, a Actor, id string) (*EditView, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	rec, err := s.db.RBACEdit(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apperr.E(apperr.NotFound, "No such change.")
	}
	if err != nil {
		return nil, errInternal(err)
	}
	v := &EditView{RBACEdit: *rec, Plan: &Plan{}}
	if err := json.Unmarshal([]byte(rec.Plan), v.Plan); err != nil {
		return nil, errInternal(err)
	}
	f, err := s.db.Fanout(ctx, rec.FanoutID)
	if err != nil {
		return nil, errInternal(err)
	}
	v.Fanout = summarize(*f)
	v.Undoable = f.Undoable()
	return v, nil
}

// EditPage is a page of confirmed edits, newest first.
type EditPage struct {
	Edits  []store.RBACEdit
	Total  int
	Offset int
	Limit  int
}

// Edits lists confirmed edits, newest first.
func (s *Service) Edits(ctx context.Context, a Actor, offset, limit int) (*EditPage, error) {
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	es, total, err := s.db.RBACEdits(ctx, max(offset, 0), limit)
	if err != nil {
		return nil, errInternal(err)
	}
	return &EditPage{Edits: es, Total: total, Offset: max(offset, 0), Limit: limit}, nil
}
