// Package fanout is permsync's job engine: it owns River (the client, its
// workers, queue and periodic maintenance) behind a small API. Callers
// start a fan-out (refresh_claims for every affected user) or enqueue a
// webhook job inside their own database transaction (Engine.StartTx,
// Engine.RequeueFailedTx, Engine.EnqueueWebhookTx), so a job exists exactly
// when the records it works on do.
//
// The fan-out pipeline: the users are cut into chunks (one River job per
// chunk of at most 50 users, at least one chunk per worker, inserted in one
// statement). A job calls refresh_claims at Kinde for its users still
// pending, several at a time (the kinde client's shared budget sets the
// pace and retries 429/5xx), and records the answers in batches as they
// come: in one transaction the users' claims epochs are bumped, their items
// marked done and counted; then claims-changed is published to each user's
// topic and fanout-progress to the admin topic. A job that has worked for
// half its timeout snoozes and takes up the rest in its next run. Permanent
// Kinde errors fail an item at once; a failure that may pass stops the
// chunk, which is retried with jittered exponential backoff, and on the
// last attempt whoever still fails is failed. A user is counted once
// however often its chunk runs (after a crash, say): only items still
// pending in the job's round are completed.
//
// The periodic maintenance job expires denials, lets the webhook handler
// prune old records, and fails items whose job ended without recording it
// (a process that died during the last attempt).
//
// River's driver and migrations live in package store; no other package
// imports River.
package fanout
