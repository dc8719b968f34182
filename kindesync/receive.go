package kindesync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"permsync/fanout"
	"permsync/kinde"
	"permsync/store"
)

// Receiving Kinde webhooks (handlers/webhooks.go verifies the JWS and calls
// ReceiveWebhook, which records the delivery and enqueues its job in one
// transaction; the job (ProcessWebhook) acts on it once.

// DefaultMaxWebhookAge is how old a webhook's payload timestamp may be
// before the delivery is ignored. Kinde retries for about three days, and
// received deliveries are kept longer than this, so a replay of an old
// signed body can never be processed twice.
const DefaultMaxWebhookAge = 7 * 24 * time.Hour

// WebhookRetention is how long received webhooks are kept (for dedupe and
// the admin page); well beyond DefaultMaxWebhookAge, so an event old enough
// to be forgotten is also old enough to be ignored.
const WebhookRetention = 30 * 24 * time.Hour

// WebhookDelivery is a verified webhook, ready to record.
type WebhookDelivery struct {
	// ID is the webhook-id header, or the event id when it was missing.
	ID    string
	Event *kinde.Event
}

// ReceiveResult says what ReceiveWebhook did.
type ReceiveResult struct {
	Duplicate bool // already recorded (same webhook id or event id); nothing was done
	Stale     bool // recorded as ignored: older than DefaultMaxWebhookAge
}

// ReceiveWebhook records a verified delivery durably and, in the same
// transaction, enqueues the job that processes it. A delivery whose webhook
// id or event id is already recorded is a duplicate and changes nothing.
// Only an error means the sender should deliver again.
func (s *Syncer) ReceiveWebhook(ctx context.Context, d WebhookDelivery) (ReceiveResult, error) {
	ev := d.Event
	payload, err := json.Marshal(eventJSON(ev))
	if err != nil {
		return ReceiveResult{}, fmt.Errorf("encode webhook payload: %w", err)
	}
	now := time.Now()
	rec := &store.WebhookEvent{
		WebhookID: d.ID, EventID: ev.EventID, Type: ev.Type, Source: ev.Source, EventAt: ev.Timestamp,
		ReceivedAt: now, Status: store.WebhookReceived, Payload: payload,
	}
	var res ReceiveResult
	if !ev.Timestamp.IsZero() && now.Sub(ev.Timestamp) > DefaultMaxWebhookAge {
		res.Stale = true
		rec.Status, rec.ProcessedAt = store.WebhookIgnored, now
		rec.Outcome = fmt.Sprintf("Ignored: the event is from %s, older than %s.",
			ev.Timestamp.UTC().Format(time.RFC3339), DefaultMaxWebhookAge)
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		inserted, err := tx.InsertWebhookEvent(ctx, rec)
		if err != nil || !inserted || res.Stale {
			res.Duplicate = !inserted
			return err
		}
		return s.fanouts.EnqueueWebhookTx(ctx, tx, d.ID)
	})
	if err != nil {
		return ReceiveResult{}, err
	}
	return res, nil
}

// eventJSON is the stored form of a verified event: the payload's fields.
func eventJSON(ev *kinde.Event) any {
	type stored struct {
		Type      string          `json:"type"`
		EventID   string          `json:"event_id"`
		Source    string          `json:"source,omitempty"`
		Timestamp string          `json:"timestamp,omitempty"`
		Data      json.RawMessage `json:"data"`
	}
	out := stored{Type: ev.Type, EventID: ev.EventID, Source: ev.Source, Data: ev.Data}
	if !ev.Timestamp.IsZero() {
		out.Timestamp = ev.Timestamp.Format(time.RFC3339Nano)
	}
	if len(out.Data) == 0 {
		out.Data = json.RawMessage("null")
	}
	return out
}

// HandleWebhookJob processes a recorded webhook for its job (it
// implements fanout.WebhookHandler) and records a failed attempt on the
// webhook for the admin page.
func (s *Syncer) HandleWebhookJob(ctx context.Context, webhookID string, attempt, maxAttempts int) error {
	err := s.ProcessWebhook(ctx, webhookID, attempt)
	if err == nil {
		return nil
	}
	if fanout.IsSettling(err) {
		// Not a failure: planned again once that Kinde call is answered.
		s.log.InfoContext(ctx, "kindesync: webhook waits for a Kinde call under way", "webhook_id", webhookID,
			"reason", err)
		return err
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	permanent := errors.Is(err, errWebhookPermanent)
	msg := webhookErrorMessage(err)
	if permanent || attempt >= maxAttempts {
		s.log.WarnContext(bctx, "kindesync: webhook processing failed for good", "webhook_id", webhookID,
			"attempt", attempt, "error", err)
		if ferr := s.db.FailWebhookEvent(bctx, webhookID, attempt, msg); ferr != nil {
			s.log.WarnContext(bctx, "kindesync: could not mark webhook failed", "error", ferr)
		}
		if permanent {
			return fanout.Cancel(err)
		}
		return err
	}
	s.log.WarnContext(bctx, "kindesync: webhook processing failed; will retry", "webhook_id", webhookID,
		"attempt", attempt, "error", err)
	if nerr := s.db.NoteWebhookAttempt(bctx, webhookID, attempt, msg+" Retrying."); nerr != nil {
		s.log.WarnContext(bctx, "kindesync: could not record webhook attempt", "error", nerr)
	}
	return err
}

// bookkeepingTimeout bounds recording a failed attempt, which runs even if
// the job's context was cancelled meanwhile.
const bookkeepingTimeout = 30 * time.Second

// PruneWebhooks forgets webhook records older than WebhookRetention (it
// implements fanout.WebhookHandler; the engine's maintenance calls it).
func (s *Syncer) PruneWebhooks(ctx context.Context) {
	s.flushRefusals(ctx)
	if n, err := s.db.PruneWebhookEvents(ctx, time.Now().Add(-WebhookRetention)); err != nil {
		s.log.WarnContext(ctx, "kindesync: could not prune old webhook records", "error", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "kindesync: pruned old webhook records", "count", n)
	}
}

// webhookErrorMessage describes a processing failure for the admin page.
func webhookErrorMessage(err error) string {
	switch {
	case errors.Is(err, errWebhookPermanent):
		msg := err.Error()
		msg = strings.TrimPrefix(msg, errWebhookPermanent.Error()+": ")
		return "Could not be processed: " + msg
	case kinde.StatusCode(err) != 0:
		return fanout.ReadableError(err)
	default:
		return "Processing failed (see the logs)."
	}
}
