package kindesync

import (
	"context"
	"time"

	"permsync/apperr"
	"permsync/store"
)

// WebhookEvent is one received webhook on the admin page.
type WebhookEvent = store.WebhookEvent

// WebhookRejection is one refused delivery on the admin page.
type WebhookRejection = store.WebhookRejection

// WebhookLog is the webhooks page.
type WebhookLog struct {
	Events     []WebhookEvent
	Rejections []WebhookRejection
	Stats      store.WebhookStats // last 24 hours
}

// Webhooks lists the received webhooks and their outcomes, newest first,
// and the deliveries refused before they were recorded. It does not check
// who asks: the admin page's handler has (admin.Service.Authorize).
func (s *Syncer) Webhooks(ctx context.Context, limit int) (*WebhookLog, error) {
	evs, err := s.db.WebhookEvents(ctx, limit)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "Something went wrong. Please try again.")
	}
	rej, err := s.db.WebhookRejections(ctx, 50)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "Something went wrong. Please try again.")
	}
	st, err := s.db.WebhookStats(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "Something went wrong. Please try again.")
	}
	return &WebhookLog{Events: evs, Rejections: rej, Stats: st}, nil
}

// WebhookHealth summarises received webhooks.
type WebhookHealth struct {
	Known          bool      // false when no stats are configured or they failed
	Received24h    int       // webhooks received in the last 24 hours
	Failed24h      int       // of those, how many could not be verified or processed
	LastReceivedAt time.Time // zero if none yet
}

// Stats feeds the admin overview's webhook health from the database
// (admin.WebhookStats).
type Stats struct{ DB *store.DB }

// WebhookHealth summarises the webhooks received in the last 24 hours.
func (d Stats) WebhookHealth(ctx context.Context) (WebhookHealth, error) {
	st, err := d.DB.WebhookStats(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		return WebhookHealth{}, err
	}
	return WebhookHealth{Known: true, Received24h: st.Received + st.Rejected, Failed24h: st.Failed + st.Rejected,
		LastReceivedAt: st.LastReceivedAt}, nil
}

// SyncPermissionKeys records the id and key of every permission at Kinde,
// so that permission.deleted webhooks, which carry only the id, resolve. The
// app calls it at start; listings and permission.* webhooks keep it current.
func (s *Syncer) SyncPermissionKeys(ctx context.Context) error {
	perms, err := s.kinde.AllPermissions(ctx)
	if err != nil {
		return err
	}
	s.keys.RememberPermissions(ctx, perms)
	return nil
}
