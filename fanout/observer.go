package fanout

// JobObserver is told how fan-out jobs end, for metrics (Deps.Observer;
// optional). fanout stays free of any metrics library: the app adapts it.
type JobObserver interface {
	// FanoutItemFinished reports a fan-out item counted as done or failed
	// (store.FanoutItemDone, store.FanoutItemFailed): once per item and
	// retry round, however many attempts it took.
	FanoutItemFinished(status string)
	// FanoutJobRetrying reports a failed attempt that River will retry
	// with backoff.
	FanoutJobRetrying()
}

// itemFinished and jobRetrying call o when there is one.
func itemFinished(o JobObserver, status string) {
	if o != nil {
		o.FanoutItemFinished(status)
	}
}

func jobRetrying(o JobObserver) {
	if o != nil {
		o.FanoutJobRetrying()
	}
}
