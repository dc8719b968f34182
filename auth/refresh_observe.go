package auth

import (
	"errors"
	"time"

	"permsync/apperr"
)

// RefreshOutcome is how a refresh ended, as reported to a RefreshObserver.
type RefreshOutcome string

// Refresh outcomes.
const (
	OutcomeRefreshed        RefreshOutcome = "refreshed"         // a grant was made and saved
	OutcomeAlreadyRefreshed RefreshOutcome = "already_refreshed" // someone else refreshed first; no grant
	OutcomeEnded            RefreshOutcome = "ended"             // Kinde refused the refresh token, or the session is gone
	OutcomeKindeUnavailable RefreshOutcome = "kinde_unavailable" // network or Kinde failure; the session is kept
	OutcomeFailed           RefreshOutcome = "failed"            // anything else (a bug or a database error)
)

// RefreshObserver is told about every refresh the Refresher runs, once per
// grant attempt: callers that share one in-flight refresh are reported once,
// under the reason of the caller that started it. Used for metrics.
type RefreshObserver interface {
	ObserveRefresh(reason Reason, outcome RefreshOutcome, took time.Duration)
}

// RefresherOption configures a Refresher.
type RefresherOption func(*Refresher)

// WithRefreshObserver reports every refresh to o.
func WithRefreshObserver(o RefreshObserver) RefresherOption {
	return func(rf *Refresher) { rf.obs = o }
}

// observe reports a finished refresh to the observer, if any.
func (rf *Refresher) observe(reason Reason, res *RefreshResult, err error, took time.Duration) {
	if rf.obs == nil {
		return
	}
	rf.obs.ObserveRefresh(reason, refreshOutcome(res, err), took)
}

// refreshOutcome classifies the result of Refresher.refresh.
func refreshOutcome(res *RefreshResult, err error) RefreshOutcome {
	switch {
	case err == nil && res != nil && res.Change.AlreadyRefreshed:
		return OutcomeAlreadyRefreshed
	case err == nil:
		return OutcomeRefreshed
	case errors.Is(err, ErrSessionEnded):
		return OutcomeEnded
	case apperr.CodeOf(err) == apperr.Unavailable:
		return OutcomeKindeUnavailable
	}
	return OutcomeFailed
}
