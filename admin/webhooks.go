package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"permsync/kinde"
	"permsync/store"
)

// Receiving Kinde webhooks (DESIGN §4.4). The HTTP handler verifies the JWS
// and calls ReceiveWebhook, which records the delivery and enqueues its job
// in one transaction; the job (ProcessWebhook) acts on it once.

// JobKindWebhook is the River job kind that processes a received webhook.
const JobKindWebhook = "kinde_webhook"

// FanoutWebhook is the kind of a fan-out started by a Kinde webhook.
const FanoutWebhook = "webhook"

// DefaultMaxWebhookAge is how old a webhook's payload timestamp may be
// before the delivery is ignored. Kinde retries for about three days, and
// received deliveries are kept longer than this, so a replay of an old
// signed body can never be processed twice.
const DefaultMaxWebhookAge = 7 * 24 * time.Hour

// WebhookRetention is how long received webhooks are kept (for dedupe and
// the admin page); well beyond DefaultMaxWebhookAge, so an event old enough
// to be forgotten is also old enough to be ignored.
const WebhookRetention = 30 * 24 * time.Hour

// WebhookArgs is the job that processes one received webhook.
type WebhookArgs struct {
	WebhookID string `json:"webhook_id" river:"unique"`
}

// Kind implements river.JobArgs.
func (WebhookArgs) Kind() string { return JobKindWebhook }

// InsertOpts implements river.JobArgsWithInsertOpts: one job per delivery.
func (WebhookArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: river.QueueDefault, MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

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
func (s *Service) ReceiveWebhook(ctx context.Context, d WebhookDelivery) (ReceiveResult, error) {
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
		_, err = s.jobs.InsertManyTx(ctx, tx.Tx, []river.InsertManyParams{{Args: WebhookArgs{WebhookID: d.ID}}})
		if err != nil {
			return fmt.Errorf("enqueue webhook job: %w", err)
		}
		return nil
	})
	if err != nil {
		return ReceiveResult{}, err
	}
	return res, nil
}

// RejectWebhook records a delivery refused before it was recorded, for the
// admin page. Failures are logged, not returned: the caller answers anyway.
func (s *Service) RejectWebhook(ctx context.Context, status int, reason, webhookID string) {
	err := s.db.AddWebhookRejection(context.WithoutCancel(ctx), store.WebhookRejection{
		HTTPStatus: status, Reason: reason, WebhookID: webhookID,
	})
	if err != nil {
		s.log.WarnContext(ctx, "admin: could not record webhook rejection", "error", err)
	}
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

// webhookWorker works WebhookArgs through a WebhookProcessor.
type webhookWorker struct {
	river.WorkerDefaults[WebhookArgs]
	proc WebhookProcessor
	db   *store.DB
	log  interface {
		WarnContext(context.Context, string, ...any)
	}
}

// WebhookProcessor processes one recorded webhook (*Service does).
type WebhookProcessor interface {
	ProcessWebhook(ctx context.Context, webhookID string, attempt int) error
}

// Work implements river.Worker.
func (w *webhookWorker) Work(ctx context.Context, job *river.Job[WebhookArgs]) error {
	err := w.proc.ProcessWebhook(ctx, job.Args.WebhookID, job.Attempt)
	if err == nil {
		return nil
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
	defer cancel()
	permanent := errors.Is(err, errWebhookPermanent)
	msg := webhookErrorMessage(err)
	if permanent || job.Attempt >= job.MaxAttempts {
		w.log.WarnContext(bctx, "admin: webhook processing failed for good", "webhook_id", job.Args.WebhookID,
			"attempt", job.Attempt, "error", err)
		if ferr := w.db.FailWebhookEvent(bctx, job.Args.WebhookID, job.Attempt, msg); ferr != nil {
			w.log.WarnContext(bctx, "admin: could not mark webhook failed", "error", ferr)
		}
		if permanent {
			return river.JobCancel(err)
		}
		return err
	}
	w.log.WarnContext(bctx, "admin: webhook processing failed; will retry", "webhook_id", job.Args.WebhookID,
		"attempt", job.Attempt, "error", err)
	if nerr := w.db.NoteWebhookAttempt(bctx, job.Args.WebhookID, job.Attempt, msg+" Retrying."); nerr != nil {
		w.log.WarnContext(bctx, "admin: could not record webhook attempt", "error", nerr)
	}
	return err
}

// webhookErrorMessage describes a processing failure for the admin page.
func webhookErrorMessage(err error) string {
	switch {
	case errors.Is(err, errWebhookPermanent):
		msg := err.Error()
		msg = strings.TrimPrefix(msg, errWebhookPermanent.Error()+": ")
		return "Could not be processed: " + msg
	case kinde.StatusCode(err) != 0:
		return readableJobError(err)
	default:
		return "Processing failed (see the logs)."
	}
}

// newWebhookWorker returns the River worker for webhook jobs; NewRiverClient
// registers it when JobDeps.Webhooks is set.
func newWebhookWorker(db *store.DB, proc WebhookProcessor, log interface {
	WarnContext(context.Context, string, ...any)
}) *webhookWorker {
	return &webhookWorker{proc: proc, db: db, log: log}
}
