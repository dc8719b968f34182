package layouts

import "context"

type freshnessKey struct{}

// WithFreshness returns a context whose admin pages say how fresh the data
// they show is, e.g. "synced 14 s ago" (the directory's state).
func WithFreshness(ctx context.Context, text string) context.Context {
	return context.WithValue(ctx, freshnessKey{}, text)
}

// freshness is the text WithFreshness put in ctx, or "".
func freshness(ctx context.Context) string {
	s, _ := ctx.Value(freshnessKey{}).(string)
	return s
}
