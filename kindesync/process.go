package kindesync

import (
	"context"
	"errors"
	"fmt"
	"time"

	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// errWebhookPermanent marks processing errors that retrying cannot fix.
var errWebhookPermanent = errors.New("permanent")

// ProcessWebhook acts on a recorded delivery once. A delivery
// no longer in status "received" is left alone, so a job that runs twice
// acts once. Errors wrapping errWebhookPermanent should not be retried.
func (s *Syncer) ProcessWebhook(ctx context.Context, webhookID string, attempt int) error {
	rec, err := s.db.WebhookEvent(ctx, webhookID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: webhook %s not recorded", errWebhookPermanent, webhookID)
	}
	if err != nil {
		return err
	}
	if rec.Status != store.WebhookReceived {
		return nil
	}
	ev, err := kinde.ParseEvent(rec.Payload)
	if err != nil {
		return fmt.Errorf("%w: %w", errWebhookPermanent, err)
	}
	log := s.log.With("webhook_id", webhookID, "event_id", ev.EventID, "event_type", ev.Type, "attempt", attempt)
	// The directory's update first: its reads (a role's permissions, a
	// membership the event leaves unsaid) happen here, its writes in the
	// transaction below. Plans read holders from the directory as it was
	// before the event.
	upd, err := s.dir.Prepare(ctx, s.kinde, ev)
	if errors.Is(err, kinde.ErrMalformed) {
		return fmt.Errorf("%w: %w", errWebhookPermanent, err)
	}
	if err != nil {
		return err
	}
	plan, err := s.planWebhook(ctx, ev, webhookNeed(ev, rec.ReceivedAt, time.Now()))
	if err != nil {
		return err
	}
	if upd != nil && plan.status == store.WebhookIgnored {
		plan = &webhookPlan{status: store.WebhookProcessed, outcome: "Directory: " + upd.Summary + "."}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	var finished bool
	err = s.db.InTx(rctx, func(tx *store.Tx) error {
		// What the event took away is enforced by the plan (it knows the
		// event); the directory just records it.
		if _, err := upd.ApplyTx(rctx, tx); err != nil {
			return err
		}
		if plan.inTx != nil {
			if err := plan.inTx(rctx, tx); err != nil {
				return err
			}
		}
		var err error
		finished, err = tx.FinishWebhookEvent(rctx, webhookID, plan.status, plan.outcome, plan.fanoutID, attempt)
		if err != nil {
			return err
		}
		if !finished {
			return errAlreadyFinished // roll the plan back: someone else acted
		}
		return nil
	})
	if errors.Is(err, errAlreadyFinished) {
		return nil
	}
	if err != nil {
		return err
	}
	log.InfoContext(rctx, "kindesync: webhook processed", "status", plan.status, "fanout_id", plan.fanoutID)
	for _, f := range plan.after {
		f(rctx)
	}
	return nil
}

var errAlreadyFinished = errors.New("webhook already finished")

// refreshNeed is when the change that makes a fan-out's refreshes needed
// was made at Kinde: a refresh_claims sent after it (or pending past its
// Kinde call) already meets the need (fanout.Engine.StartNeededTx).
type refreshNeed struct {
	since time.Time
	// wait: when a user's only cover is a Kinde call under way, plan again
	// once it is answered (the webhook job snoozes) rather than refresh.
	wait bool
}

// maxSettleWait is how long after the event a webhook still waits for a
// permsync Kinde call under way to be answered; past it (a call stuck in a
// crashed process, a late delivery) the users are refreshed without waiting.
const maxSettleWait = 2 * time.Minute

// webhookNeed dates a webhook's change: Kinde's event time, else when the
// delivery was received. A time given to the second only (Unix seconds) is
// read as the end of that second, so that a refresh sent earlier in the same
// second, perhaps before the change, never counts.
func webhookNeed(ev *kinde.Event, received, now time.Time) refreshNeed {
	at := ev.Timestamp
	if at.IsZero() {
		at = received
	} else if at.Nanosecond() == 0 {
		at = at.Add(time.Second - time.Millisecond)
	}
	return refreshNeed{since: at, wait: now.Sub(at) < maxSettleWait}
}

// startRefreshTx starts fan-out f for items, inside tx, calling again only
// the users whose need no other fan-out meets, and says so in the outcome.
func (s *Syncer) startRefreshTx(ctx context.Context, tx *store.Tx, f *store.Fanout, items []store.FanoutItem,
	need refreshNeed) (string, error) {
	covered, err := s.fanouts.StartNeededTx(ctx, tx, f, items, need.since, need.wait)
	if err != nil {
		return "", err
	}
	if covered == 0 {
		return fmt.Sprintf("%d user(s) queued for a claims refresh.", len(items)), nil
	}
	return fmt.Sprintf("%d user(s) queued for a claims refresh; %d already refreshed after the change by another fan-out.",
		len(items)-covered, covered), nil
}

// webhookPlan is what processing one event does: work inside the
// transaction that marks it finished, and publishing after the commit.
type webhookPlan struct {
	status   string // store.WebhookProcessed or store.WebhookIgnored
	outcome  string // readable, for the admin page
	fanoutID string
	inTx     func(ctx context.Context, tx *store.Tx) error
	after    []func(ctx context.Context)
}

func ignored(outcome string) *webhookPlan {
	return &webhookPlan{status: store.WebhookIgnored, outcome: outcome}
}

// planWebhook decides what an event does. Reads (Kinde, sessions) happen
// here; writes happen in the plan's transaction or, for session deletions,
// which are idempotent, here too.
func (s *Syncer) planWebhook(ctx context.Context, ev *kinde.Event, need refreshNeed) (*webhookPlan, error) {
	switch ev.Type {
	case kinde.EventPermissionCreated, kinde.EventPermissionUpdated:
		return s.planPermissionChanged(ctx, ev, need)
	case kinde.EventPermissionDeleted:
		return s.planPermissionDeleted(ctx, ev, need)
	case kinde.EventRoleUpdated, kinde.EventRoleDeleted:
		return s.planRoleChanged(ctx, ev, need)
	case kinde.EventUserUpdated:
		return s.planUserUpdated(ev)
	case kinde.EventUserDeleted:
		return s.planUserDeleted(ctx, ev)
	case kinde.EventOrganizationDeleted:
		return s.planOrganizationDeleted(ctx, ev)
	}
	return ignored("permsync does not act on " + ev.Type + " events."), nil
}

// planPermissionChanged keeps the id→key map current. When an update changed
// the key, the old key is handled like a deleted permission: tokens still
// carry it.
func (s *Syncer) planPermissionChanged(ctx context.Context, ev *kinde.Event, need refreshNeed) (*webhookPlan, error) {
	p, err := ev.Permission()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWebhookPermanent, err)
	}
	if p.Key == "" {
		return nil, fmt.Errorf("%w: %s without a key", errWebhookPermanent, ev.Type)
	}
	var oldKey string
	if prev, err := s.db.PermissionKeyByID(ctx, p.ID); err == nil {
		oldKey = prev.Key
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	s.keys.RememberPermissions(ctx, []kinde.Permission{{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}})
	// A key created again stays denied in tokens whose claims predate its
	// deletion (store.Denial): nothing to lift.
	if ev.Type == kinde.EventPermissionCreated || oldKey == "" || oldKey == p.Key {
		return &webhookPlan{status: store.WebhookProcessed, outcome: "Recorded permission " + p.Key + "."}, nil
	}
	// The key changed: holders at Kinde now get the new key on their next
	// token; sessions carrying the old one must lose it.
	affected, err := s.sessionHolders(ctx, oldKey)
	if err != nil {
		return nil, err
	}
	holders, err := s.dirHolders(ctx, oldKey)
	if err != nil {
		return nil, err
	}
	affected = fanout.MergeAffected(affected, holders)
	return s.revokeKeyPlan(p.ID, oldKey, "Permission "+oldKey+" was renamed to "+p.Key+" at Kinde.", affected, false, need), nil
}

// planPermissionDeleted denies the deleted permission's key to everyone (a
// tombstone) and fans out
// to its holders. The event carries only the id: the key comes from the map
// kept from listings and earlier events. Kinde no longer lists holders of a
// deleted permission, so holders come from the directory (every holder,
// signed in to permsync or not), plus any live session carrying the key.
func (s *Syncer) planPermissionDeleted(ctx context.Context, ev *kinde.Event, need refreshNeed) (*webhookPlan, error) {
	p, err := ev.Permission()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWebhookPermanent, err)
	}
	known, err := s.db.PermissionKeyByID(ctx, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		if dp, derr := s.dir.PermissionByID(ctx, p.ID); derr == nil {
			known = &store.PermissionKey{ID: dp.ID, Key: dp.Key}
			err = nil
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return ignored("Unknown permission id " + p.ID + ": permsync never listed it, so its key is unknown and there is nothing to revoke."), nil
	}
	if err != nil {
		return nil, err
	}
	// Deleted through permsync: its deletion denied the key to everyone at
	// the click, before Kinde was called, and its fan-out covers the
	// holders (Kinde's webhook may even arrive before that deletion's job
	// has recorded the delete).
	if s.tombstoned(ctx, known.Key, p.ID) {
		return ignored("Already handled: permission " + known.Key + " was deleted through permsync, which denied it to everyone and refreshed its holders."), nil
	}
	affected, err := s.sessionHolders(ctx, known.Key)
	if err != nil {
		return nil, err
	}
	holders, err := s.dirHolders(ctx, known.Key)
	if err != nil {
		return nil, err
	}
	affected = fanout.MergeAffected(affected, holders)
	return s.revokeKeyPlan(p.ID, known.Key, "Permission "+known.Key+" was deleted at Kinde.", affected, true, need), nil
}

// revokeKeyPlan denies key to everyone (a tombstone, settled now: Kinde made
// the change before it sent the webhook) and fans out to the affected users
// whose refresh no other fan-out makes (need). The denial is the same
// whoever refreshes.
func (s *Syncer) revokeKeyPlan(permID, key, reason string, affected []fanout.AffectedUser, markDeleted bool,
	need refreshNeed) *webhookPlan {
	now := time.Now()
	tomb := store.Denial{PermissionKey: key, PermissionID: permID, CreatedAt: now, SettledAt: now,
		ExpiresAt: now.Add(s.tombstoneTTL), Reason: "webhook: " + reason}
	f := &store.Fanout{ID: fanout.NewID(), Kind: fanout.KindWebhook, ActorEmail: "Kinde webhook", PermissionID: permID,
		PermissionKey: key, Reason: reason, CreatedAt: now}
	items := fanout.Items(affected)
	pl := &webhookPlan{status: store.WebhookProcessed, fanoutID: f.ID}
	pl.inTx = func(ctx context.Context, tx *store.Tx) error {
		tomb.FanoutID = f.ID
		if _, err := tx.AddDenial(ctx, tomb); err != nil {
			return err
		}
		if markDeleted {
			if err := tx.MarkPermissionDeleted(ctx, permID, key); err != nil {
				return err
			}
		}
		queued, err := s.startRefreshTx(ctx, tx, f, items, need)
		pl.outcome = "Denied " + key + " to everyone; " + queued
		return err
	}
	pl.after = append(pl.after, func(ctx context.Context) {
		events.NotifyTombstonesChanged(s.pub)
		for _, u := range affected {
			events.PublishJSON(s.pub, events.UserTopic(u.UserID), events.EventClaimsChanged, events.ClaimsChangedData{
				Stage: events.StageTombstoned, Reason: reason, PermissionKey: key, FanoutID: f.ID,
			})
		}
		s.publishProgress(ctx, f.ID)
	})
	return pl
}

// planRoleChanged fans out to the role's holders (a role's permissions
// changing does not clear Kinde's claim cache), found in the directory as it
// was before the event (Kinde no longer lists the holders of a deleted
// role), plus local sessions whose token carries the role.
func (s *Syncer) planRoleChanged(ctx context.Context, ev *kinde.Event, need refreshNeed) (*webhookPlan, error) {
	r, err := ev.Role()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWebhookPermanent, err)
	}
	key := r.Key
	if key == "" {
		if known, err := s.dir.RoleByID(ctx, r.ID); err == nil {
			key = known.Key
		}
	}
	label := key
	if label == "" {
		label = r.ID
	}
	byID := map[string]*fanout.AffectedUser{}
	add := func(id string, why fanout.Reason) {
		id = kinde.NormalizeUserID(id)
		if byID[id] == nil {
			byID[id] = &fanout.AffectedUser{UserID: id}
		}
		byID[id].Reasons = fanout.AddReason(byID[id].Reasons, why)
	}
	roleReason := fanout.Reason{Kind: fanout.ReasonRole, RoleKey: label}
	holders, err := s.dir.RoleHolderIDs(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	for _, id := range holders {
		add(id, roleReason)
	}
	local, err := s.db.UsersWithRole(ctx, r.ID, "")
	if err != nil {
		return nil, err
	}
	if key != "" {
		byKey, err := s.db.UsersWithRole(ctx, "", key)
		if err != nil {
			return nil, err
		}
		local = append(local, byKey...)
	}
	for _, id := range local {
		add(id, fanout.Reason{Kind: fanout.ReasonSession})
	}
	verb := "changed"
	if ev.Type == kinde.EventRoleDeleted {
		verb = "deleted"
	}
	reason := "Role " + label + " was " + verb + " at Kinde."
	affected := make([]fanout.AffectedUser, 0, len(byID))
	for _, u := range byID {
		affected = append(affected, *u)
	}
	if len(affected) == 0 {
		return &webhookPlan{status: store.WebhookProcessed, outcome: reason + " Nobody holds it; nothing to refresh."}, nil
	}
	now := time.Now()
	f := &store.Fanout{ID: fanout.NewID(), Kind: fanout.KindWebhook, ActorEmail: "Kinde webhook", Reason: reason, CreatedAt: now}
	items := fanout.Items(affected)
	pl := &webhookPlan{
		status:   store.WebhookProcessed,
		fanoutID: f.ID,
		after:    []func(context.Context){func(ctx context.Context) { s.publishProgress(ctx, f.ID) }},
	}
	pl.inTx = func(ctx context.Context, tx *store.Tx) error {
		queued, err := s.startRefreshTx(ctx, tx, f, items, need)
		pl.outcome = reason + " " + queued
		return err
	}
	return pl, nil
}

// planUserUpdated bumps the user's epoch: Kinde clears its claim cache on
// direct changes to a user, so no refresh_claims is needed; their sessions
// refresh on the next request, or in the background.
func (s *Syncer) planUserUpdated(ev *kinde.Event) (*webhookPlan, error) {
	u, err := ev.User()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWebhookPermanent, err)
	}
	const reason = "Your account was updated at Kinde."
	var epoch int64
	return &webhookPlan{
		status:  store.WebhookProcessed,
		outcome: "Bumped the claims epoch of " + u.ID + ".",
		inTx: func(ctx context.Context, tx *store.Tx) error {
			var err error
			epoch, err = tx.BumpUserEpoch(ctx, u.ID, reason)
			return err
		},
		after: []func(context.Context){func(context.Context) {
			events.NotifyEpochChanged(s.pub, u.ID)
			events.PublishJSON(s.pub, events.UserTopic(u.ID), events.EventClaimsChanged, events.ClaimsChangedData{
				Stage: events.StageRefreshed, Reason: reason, Epoch: epoch,
			})
		}},
	}, nil
}

// planUserDeleted ends the user's sessions.
func (s *Syncer) planUserDeleted(ctx context.Context, ev *kinde.Event) (*webhookPlan, error) {
	u, err := ev.User()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWebhookPermanent, err)
	}
	n, err := s.sessions.DeleteUserSessions(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &webhookPlan{
		status:  store.WebhookProcessed,
		outcome: fmt.Sprintf("User %s was deleted at Kinde; ended %d session(s).", u.ID, n),
		after: []func(context.Context){func(context.Context) {
			events.PublishJSON(s.pub, events.UserTopic(u.ID), events.EventSessionEnded,
				events.SessionEndedData{Reason: "Your account was deleted."})
		}},
	}, nil
}

// planOrganizationDeleted ends every session in the organization.
func (s *Syncer) planOrganizationDeleted(ctx context.Context, ev *kinde.Event) (*webhookPlan, error) {
	o, err := ev.Organization()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errWebhookPermanent, err)
	}
	users, err := s.db.DeleteOrgSessions(ctx, o.Code)
	if err != nil {
		return nil, err
	}
	return &webhookPlan{
		status:  store.WebhookProcessed,
		outcome: fmt.Sprintf("Organization %s was deleted at Kinde; ended the sessions of %d user(s).", o.Code, len(users)),
		after: []func(context.Context){func(context.Context) {
			for _, id := range users {
				events.PublishJSON(s.pub, events.UserTopic(id), events.EventSessionEnded,
					events.SessionEndedData{Reason: "Your organization was deleted."})
			}
		}},
	}, nil
}

// recordTimeout bounds the local bookkeeping of a processed webhook; it runs
// even if the job's context ends meanwhile.
const recordTimeout = 30 * time.Second
