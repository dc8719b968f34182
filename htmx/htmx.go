// Package htmx names the htmx request and response headers permsync reads
// and sets, so handlers and auth share one spelling of each. It imports no
// web framework: requests are *http.Request, responses are http.Header.
package htmx

import (
	"net/http"
	"net/url"
)

// Request headers htmx sends.
const (
	HeaderRequest        = "HX-Request"                 // "true" on every htmx request
	HeaderTrigger        = "HX-Trigger"                 // the id of the element that sent it
	HeaderCurrentURL     = "HX-Current-URL"             // the browser's current URL
	HeaderBoosted        = "HX-Boosted"                 // set on a boosted navigation
	HeaderHistoryRestore = "HX-History-Restore-Request" // "true" when htmx restores history
)

// Response headers htmx obeys.
const (
	HeaderRedirect = "HX-Redirect" // a full-page redirect
	HeaderRetarget = "HX-Retarget" // a CSS selector to swap into instead of the request's target
	HeaderReswap   = "HX-Reswap"   // the swap style to use instead of the request's
)

// IsRequest reports a request sent by htmx.
func IsRequest(r *http.Request) bool { return r.Header.Get(HeaderRequest) == "true" }

// IsFragment reports an htmx request that wants a fragment: not a boosted
// navigation and not a history restore (which needs the whole page).
func IsFragment(r *http.Request) bool {
	return IsRequest(r) && r.Header.Get(HeaderBoosted) == "" && r.Header.Get(HeaderHistoryRestore) != "true"
}

// TriggeredBy reports an htmx request sent by the element with the given id.
func TriggeredBy(r *http.Request, id string) bool {
	return IsRequest(r) && r.Header.Get(HeaderTrigger) == id
}

// CurrentURL is the URL of the page that sent an htmx request, or nil when
// it is missing or unreadable.
func CurrentURL(r *http.Request) *url.URL {
	if !IsRequest(r) {
		return nil
	}
	u, err := url.Parse(r.Header.Get(HeaderCurrentURL))
	if err != nil {
		return nil
	}
	return u
}

// Redirect tells htmx to load the page at to.
func Redirect(h http.Header, to string) { h.Set(HeaderRedirect, to) }

// Retarget tells htmx to swap the answer into target with the given swap
// style (e.g. "innerHTML").
func Retarget(h http.Header, target, swap string) {
	h.Set(HeaderRetarget, target)
	h.Set(HeaderReswap, swap)
}
