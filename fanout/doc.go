// Package fanout is permsync's job engine: it owns River (the client, its
// workers, queue and periodic maintenance) behind a small API. Callers
// start a fan-out (one refresh_claims job per affected user) or enqueue a
// webhook job inside their own database transaction (Engine.StartTx,
// Engine.RequeueFailedTx, Engine.EnqueueWebhookTx), so a job exists exactly
// when the records it works on do.
//
// The fan-out pipeline, per affected user: refresh_claims at Kinde (the kinde
// client rate-limits and retries 429/5xx), then, in one transaction, the
// user's claims epoch is bumped, the fan-out item is marked done, its
// counters move and the River job is completed; then claims-changed is
// published to the user's topic and fanout-progress to the admin topic.
// Permanent Kinde errors fail the item at once; others are retried with
// jittered exponential backoff, and the last attempt fails the item.
//
// The periodic maintenance job expires denials, lets the webhook handler
// prune old records, and fails items whose job ended without recording it
// (a process that died during the last attempt).
//
// River's driver and migrations live in package store; no other package
// imports River.
package fanout
