package auth

import "context"

type ctxKey int

const (
	sessionKey ctxKey = iota
	noticeKey
)

// WithSession returns ctx carrying the request's session.
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey, s)
}

// SessionFrom returns the request's session, or nil when signed out.
func SessionFrom(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey).(*Session)
	return s
}

// Can reports whether the signed-in user may use permission key right now:
// the key is in their access token and no live tombstone hides it.
func Can(ctx context.Context, key string) bool {
	return SessionFrom(ctx).Can(key)
}

// withNotice records a message the request guard wants shown (for example
// "Kinde could not be reached; showing your last known permissions").
func withNotice(ctx context.Context, f Flash) context.Context {
	return context.WithValue(ctx, noticeKey, &f)
}

// NoticeFrom returns the guard's message for this request, if any.
func NoticeFrom(ctx context.Context) *Flash {
	f, _ := ctx.Value(noticeKey).(*Flash)
	return f
}
