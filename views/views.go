// Package views holds permsync's templ views: layouts/ (the HTML shell),
// pages/ (one per page, each with a typed Props struct) and components/ (pure
// pieces). Views import no store, service or Echo: handlers shape the data.
// Request-wide values (CSRF token, the signed-in user for the nav, the asset
// version) travel in the context behind the typed getters of this package.
//
// The recipe for an admin page (pages/admin_*.templ):
//   - its Props struct, and the row types only it uses, sit at the top of
//     its .templ file; view models several pages share sit in
//     pages/admin_types.go;
//   - it renders through layouts.Admin (which renders through layouts.Base),
//     with adminHeader for its title, components.Alerts for flashes;
//   - lists use components.Table with components.Cell for every cell (the
//     cell's label is what a phone shows beside the value, where the table
//     becomes stacked cards) and components.EmptyState when there is
//     nothing to list; list pages search through searchBox;
//   - people read words, not keys: components.PermissionName and
//     components.Plural.
package views

import (
	"context"
	"net/url"
)

// Request holds the request-wide values every page may need.
type Request struct {
	CSRF         string   // CSRF token for forms and the meta tag
	AssetVersion string   // cache-busting version of /static
	Path         string   // the request path, for marking the current nav item
	User         *NavUser // nil when signed out
}

// NavUser is the signed-in user as the navigation shows them.
type NavUser struct {
	Name       string
	Email      string
	OrgCode    string
	CanReports bool
	CanAdmin   bool
	// Permissions are the effective keys the page was rendered with; a
	// live update sends them back so the server can say what changed.
	Permissions []string
}

// Initials returns up to two initials for the avatar.
func (u *NavUser) Initials() string {
	out := []rune{}
	prevSpace := true
	src := u.Name
	if src == "" {
		src = u.Email
	}
	for _, r := range src {
		if r == ' ' || r == '.' || r == '@' {
			if r == '@' {
				break
			}
			prevSpace = true
			continue
		}
		if prevSpace {
			out = append(out, r)
			prevSpace = false
			if len(out) == 2 {
				break
			}
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out)
}

type ctxKey struct{}

// WithRequest returns ctx carrying r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// RequestFrom returns the request values, or zero values outside a request.
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(ctxKey{}).(Request)
	return r
}

// CSRF returns the request's CSRF token.
func CSRF(ctx context.Context) string { return RequestFrom(ctx).CSRF }

// Asset returns the URL of a static file with its cache-busting version,
// e.g. Asset(ctx, "css/app.css") = "/static/css/app.css?v=1a2b3c".
func Asset(ctx context.Context, path string) string {
	u := "/static/" + path
	if v := RequestFrom(ctx).AssetVersion; v != "" {
		u += "?v=" + url.QueryEscape(v)
	}
	return u
}
