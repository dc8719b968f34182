package admin

import (
	"context"
	"time"

	"permsync/events"
	"permsync/fanout"
	"permsync/kinde"
	"permsync/kindesync"
	"permsync/store"
)

// KindeAPI is what the admin service needs from Kinde's Management API.
// *kinde.Client satisfies it; its methods rate-limit and retry 429/5xx.
type KindeAPI interface {
	fanout.ClaimsRefresher
	AllPermissions(ctx context.Context) ([]kinde.Permission, error)
	DeletePermission(ctx context.Context, id string) error
	AllRoles(ctx context.Context) ([]kinde.Role, error)
	AllRolePermissions(ctx context.Context, roleID string) ([]kinde.Permission, error)
	AllRoleUsers(ctx context.Context, roleID string) ([]kinde.RoleUser, error)
	AllOrganizations(ctx context.Context) ([]kinde.Organization, error)
	AllOrganizationUsers(ctx context.Context, orgCode string, f kinde.OrgUserFilter) ([]kinde.OrganizationUser, error)
	OrganizationUserRoles(ctx context.Context, orgCode, userID string) ([]kinde.OrganizationUserRole, error)
	OrganizationUserPermissions(ctx context.Context, orgCode, userID string) ([]kinde.OrganizationUserPermission, error)
	User(ctx context.Context, id string) (*kinde.User, error)
	DeleteUserSessions(ctx context.Context, userID string) error
	KindeEditor
}

// KindeEditor is what RBAC edits change at Kinde. *kinde.Client satisfies
// it.
type KindeEditor interface {
	AddRolePermission(ctx context.Context, roleID, permissionID string) error
	RemoveRolePermission(ctx context.Context, roleID, permissionID string) error
	CreateRole(ctx context.Context, in kinde.RoleInput) (string, error)
	UpdateRole(ctx context.Context, id string, in kinde.RoleInput) error
	DeleteRole(ctx context.Context, id string) error
	AddOrganizationUserRole(ctx context.Context, orgCode, userID, roleID string) error
	RemoveOrganizationUserRole(ctx context.Context, orgCode, userID, roleID string) error
	AddOrganizationUserPermission(ctx context.Context, orgCode, userID, permissionID string) error
	RemoveOrganizationUserPermission(ctx context.Context, orgCode, userID, permissionID string) error
	RemoveOrganizationUser(ctx context.Context, orgCode, userID string) error
	CreatePermission(ctx context.Context, in kinde.PermissionInput) (string, error)
	UpdatePermission(ctx context.Context, id string, in kinde.PermissionInput) error
}

// SessionStore is what the admin service needs from permsync's own
// server-side sessions. *store.DB satisfies it.
type SessionStore interface {
	// UsersWithPermission returns the ids of users with a live session whose
	// access token carries the permission key.
	UsersWithPermission(ctx context.Context, key string) ([]string, error)
	// UserSessions lists a user's live sessions.
	UserSessions(ctx context.Context, userID string) ([]store.Session, error)
	// DeleteUserSessions deletes every session of a user and reports how many.
	DeleteUserSessions(ctx context.Context, userID string) (int64, error)
}

// Publisher sends server-sent events. *events.Broker satisfies it.
type Publisher = events.Publisher

// Fanouts starts and retries fan-outs, and schedules the Kinde call of a
// deletion or an RBAC edit, inside the caller's transaction. *fanout.Engine
// satisfies it.
type Fanouts interface {
	StartTx(ctx context.Context, tx *store.Tx, f *store.Fanout, items []store.FanoutItem) error
	ScheduleKindeCallTx(ctx context.Context, tx *store.Tx, fanoutID string, due time.Time) error
	RequeueFailedTx(ctx context.Context, tx *store.Tx, fanoutID string) (int, error)
}

// WebhookStats reports on received Kinde webhooks, for the overview. It is
// optional: without it the overview says webhook health is unknown.
type WebhookStats interface {
	WebhookHealth(ctx context.Context) (WebhookHealth, error)
}

// WebhookHealth summarises received webhooks.
type WebhookHealth = kindesync.WebhookHealth
