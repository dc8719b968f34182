package kinde

import (
	"context"
	"sync/atomic"
)

type callCounterKey struct{}

// WithCallCounter returns a context whose Management API requests, made
// through any Client, each add one to n (every attempt, retries included).
// The directory sync uses it to measure what a run costs.
func WithCallCounter(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, callCounterKey{}, n)
}

// countCall adds one to the context's call counter, if it has one.
func countCall(ctx context.Context) {
	if n, ok := ctx.Value(callCounterKey{}).(*atomic.Int64); ok && n != nil {
		n.Add(1)
	}
}
