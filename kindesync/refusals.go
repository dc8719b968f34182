package kindesync

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"permsync/store"
)

// Refused deliveries are sampled before they cost a database row: a burst
// of refusalBurst rows, then refusalRate a second. A refusal that is not
// written is counted, and the next row of the same status and reason
// stands for it too (store.WebhookRejection.Refusals); what is left over
// when a flood stops is written by the periodic maintenance (PruneWebhooks).
// Every refusal is still counted by the HTTP layer's Prometheus counter.
const (
	refusalRate  = 1
	refusalBurst = 20
)

type refusalKey struct {
	status int
	reason string
}

// refusalSampler decides which refusals get a row, and keeps count of the
// others.
type refusalSampler struct {
	mu      sync.Mutex
	lim     *rate.Limiter
	skipped map[refusalKey]int
}

func newRefusalSampler(perSecond rate.Limit, burst int) *refusalSampler {
	return &refusalSampler{lim: rate.NewLimiter(perSecond, burst), skipped: map[refusalKey]int{}}
}

// take reports whether this refusal gets a row, and how many refusals the
// row stands for (itself and those of its kind skipped since the last row).
func (r *refusalSampler) take(status int, reason string, now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := refusalKey{status, reason}
	if !r.lim.AllowN(now, 1) {
		r.skipped[k]++
		return false, 0
	}
	n := 1 + r.skipped[k]
	delete(r.skipped, k)
	return true, n
}

// drain returns the skipped counts and starts them over.
func (r *refusalSampler) drain() map[refusalKey]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.skipped
	r.skipped = map[refusalKey]int{}
	return out
}

// RejectWebhook records a delivery refused before it was recorded, for the
// admin page, if the sampler lets it through (the others are counted into
// a later row). Failures are logged, not returned: the caller answers
// anyway.
func (s *Syncer) RejectWebhook(ctx context.Context, status int, reason, webhookID string) {
	write, n := s.refusals.take(status, reason, time.Now())
	if !write {
		return
	}
	err := s.db.AddWebhookRejection(context.WithoutCancel(ctx), store.WebhookRejection{
		HTTPStatus: status, Reason: reason, WebhookID: webhookID, Refusals: n,
	})
	if err != nil {
		s.log.WarnContext(ctx, "kindesync: could not record webhook rejection", "error", err)
	}
}

// flushRefusals writes one row for each kind of refusal skipped since its
// last row.
func (s *Syncer) flushRefusals(ctx context.Context) {
	for k, n := range s.refusals.drain() {
		if err := s.db.AddWebhookRejection(ctx, store.WebhookRejection{HTTPStatus: k.status, Reason: k.reason, Refusals: n}); err != nil {
			s.log.WarnContext(ctx, "kindesync: could not record skipped webhook rejections", "error", err)
		}
	}
}
