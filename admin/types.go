package admin

import "permsync/fanout"

// Why a user holds a permission: the fan-out's shapes, shared.
type (
	ReasonKind   = fanout.ReasonKind
	Reason       = fanout.Reason
	AffectedUser = fanout.AffectedUser
)

// Reason kinds.
const (
	ReasonRole    = fanout.ReasonRole
	ReasonDirect  = fanout.ReasonDirect
	ReasonSession = fanout.ReasonSession
)

// RoleRef names a role.
type RoleRef struct {
	ID   string
	Key  string
	Name string
}

// PermissionRef names a permission.
type PermissionRef struct {
	ID   string
	Key  string
	Name string
}
