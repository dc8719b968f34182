package kinde

import (
	"strings"
	"time"
)

// Observer is told about every Management API attempt and retry of a
// [Client], for metrics. The kinde package stays free of any metrics library:
// the app adapts an Observer to whatever it exports.
//
// Endpoint is the request path below /api/v1 with every id replaced by
// "{id}" ("/users/{id}/refresh_claims"), so it is safe as a low-cardinality
// label. Calls are made synchronously from the request path: keep them cheap.
type Observer interface {
	// ObserveRequest reports one HTTP attempt. status is 0 when no response
	// arrived (a network error); took is the time the exchange took.
	ObserveRequest(method, endpoint string, status int, took time.Duration)
	// ObserveRetry reports that an attempt is about to be repeated, and why.
	ObserveRetry(method, endpoint string, reason RetryReason)
}

// RetryReason says why a Management API request is sent again.
type RetryReason string

// Retry reasons passed to [Observer.ObserveRetry].
const (
	RetryRateLimited RetryReason = "rate_limited" // 429; waits for RateLimit-Reset
	RetryServerError RetryReason = "server_error" // 5xx on an idempotent request
	RetryNetwork     RetryReason = "network"      // no response on an idempotent request
)

// endpointPattern turns a Management API path (below /api/v1) into its
// pattern: Kinde's resource paths alternate collection names and ids
// (/organizations/{code}/users/{id}/roles), so every second segment is an
// id. The query string is not part of the path.
func endpointPattern(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 1; i < len(parts); i += 2 {
		parts[i] = "{id}"
	}
	return "/" + strings.Join(parts, "/")
}

// observeRequest and observeRetry call the Observer when there is one.
func (c *Client) observeRequest(method, endpoint string, status int, took time.Duration) {
	if c.obs != nil {
		c.obs.ObserveRequest(method, endpoint, status, took)
	}
}

func (c *Client) observeRetry(method, endpoint string, reason RetryReason) {
	if c.obs != nil {
		c.obs.ObserveRetry(method, endpoint, reason)
	}
}
