// Package logctx carries log attributes in a context, so that every record
// logged with that context gets them without each call passing them by hand:
// the HTTP middleware puts the request id in the request's context, and any
// *Context log call below it (handlers, auth, services) carries request_id.
package logctx

import (
	"context"
	"log/slog"
	"slices"
)

type key struct{}

// With returns a context whose log records get attrs too.
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(key{}).([]slog.Attr)
	return context.WithValue(ctx, key{}, append(slices.Clip(prev), attrs...))
}

// Wrap returns a logger that adds the attributes of each record's context
// (With). Wrapping twice changes nothing.
func Wrap(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(handler); ok {
		return l
	}
	return slog.New(handler{inner: l.Handler()})
}

// handler adds the context's attributes to each record.
type handler struct{ inner slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, _ := ctx.Value(key{}).([]slog.Attr); len(attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.inner.Handle(ctx, r)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return handler{inner: h.inner.WithAttrs(attrs)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{inner: h.inner.WithGroup(name)} }
