// Package admin holds permsync's RBAC administration use cases, with no HTTP:
// listing permissions, roles and users from Kinde, resolving who a permission
// deletion affects, deleting it and starting the fan-out of claim refreshes
// to every affected user (package fanout runs it), plus the audit log.
//
// Every Service method takes the acting user (Actor) and checks the admin
// permission itself, behind the HTTP middleware that already did: a route
// registered in the wrong group still cannot leak data or change anything.
//
// Errors returned by Service methods are *apperr.Error values with a Code
// and a Message that is safe to show to the user; apperr.CodeOf and
// apperr.MessageOf read them from any error.
package admin
