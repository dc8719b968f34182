// Package kinde is permsync's client for Kinde's Management API and its
// verifier for Kinde webhooks.
//
// The [Client] authenticates with an M2M (client_credentials) token that it
// caches until shortly before expiry, applies one shared client-side rate limit
// to every Management API request (retries included) and hands its turns out
// by priority (interactive, then fan-out, then sync: [WithPriority]), honours
// 429 responses
// and their RateLimit-Reset header, retries 5xx and network errors with bounded
// exponential backoff where that is safe, and turns Kinde error bodies into
// [*APIError]. Paginated endpoints are exposed as iter.Seq2 iterators.
//
// The [WebhookVerifier] decodes a webhook body (a compact JWS) after verifying
// it against the issuer's JWKS with RS256 only.
//
// The package imports nothing else from permsync and never logs tokens or
// secrets.
package kinde
