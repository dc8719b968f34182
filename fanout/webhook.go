package fanout

import (
	"context"
	"errors"
	"fmt"

	"github.com/riverqueue/river"

	"permsync/kinde"
	"permsync/store"
)

// JobKindWebhook is the River job kind that processes a received webhook.
const JobKindWebhook = "kinde_webhook"

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

// WebhookHandler processes received webhooks (*kindesync.Syncer does).
type WebhookHandler interface {
	// HandleWebhookJob acts on one recorded webhook. attempt counts from
	// 1; after attempt maxAttempts no retry follows. An error wrapped with
	// Cancel is not retried; a *SettlingError snoozes the job briefly
	// without spending an attempt.
	HandleWebhookJob(ctx context.Context, webhookID string, attempt, maxAttempts int) error
	// PruneWebhooks forgets old webhook records (periodic maintenance).
	PruneWebhooks(ctx context.Context)
}

// EnqueueWebhookTx enqueues the job that processes a recorded webhook,
// inside tx; a second enqueue for the same webhook id does nothing.
func (e *Engine) EnqueueWebhookTx(ctx context.Context, tx *store.Tx, webhookID string) error {
	_, err := e.client.InsertManyTx(ctx, tx.Tx, []river.InsertManyParams{{Args: WebhookArgs{WebhookID: webhookID}}})
	if err != nil {
		return fmt.Errorf("enqueue webhook job: %w", err)
	}
	return nil
}

// cancelError marks a job error that retrying cannot fix.
type cancelError struct{ err error }

func (e *cancelError) Error() string { return e.err.Error() }
func (e *cancelError) Unwrap() error { return e.err }

// Cancel marks err as permanent: the job is not retried.
func Cancel(err error) error { return &cancelError{err: err} }

// webhookWorker works WebhookArgs through the engine's WebhookHandler.
type webhookWorker struct {
	river.WorkerDefaults[WebhookArgs]
	engine *Engine
}

// Work implements river.Worker.
func (w *webhookWorker) Work(ctx context.Context, job *river.Job[WebhookArgs]) error {
	h := w.engine.webhooks
	if h == nil {
		return river.JobCancel(errors.New("no webhook handler configured"))
	}
	// Kinde calls made while processing a webhook (holders of a changed
	// role, say) wait behind interactive ones.
	ctx = kinde.WithPriority(ctx, kinde.PriorityFanout)
	err := h.HandleWebhookJob(ctx, job.Args.WebhookID, job.Attempt, job.MaxAttempts)
	if ce, ok := errors.AsType[*cancelError](err); ok {
		return river.JobCancel(ce.err)
	}
	if IsSettling(err) {
		// Not a failure: an attempt is not spent.
		return river.JobSnooze(settleSnooze)
	}
	return err
}
