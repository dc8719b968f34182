// Package admin holds permsync's RBAC administration use cases, with no HTTP:
// listing permissions, roles and users from Kinde, resolving who a permission
// deletion affects, deleting it, and fanning claim refreshes out to every
// affected user through durable River jobs (DESIGN §4.3), plus the audit log.
//
// Every Service method takes the acting user (Actor) and checks the admin
// permission itself, behind the HTTP middleware that already did: a route
// registered in the wrong group still cannot leak data or change anything.
//
// Errors returned by Service methods are *apperr.Error values with a Code
// and a Message that is safe to show to the user; apperr.CodeOf and
// apperr.MessageOf read them from any error.
//
// The fan-out pipeline, per affected user: refresh_claims at Kinde (the kinde
// client rate-limits and retries 429/5xx), then, in one transaction, the
// user's claims epoch is bumped, the fan-out item is marked done, its
// counters move and the River job is completed; then claims-changed is
// published to the user's topic and fanout-progress to the admin topic.
package admin
