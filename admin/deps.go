package admin

import (
	"context"
	"database/sql"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"permsync/events"
	"permsync/kinde"
	"permsync/store"
)

// ClaimsRefresher invalidates one user's claim cache at Kinde
// (POST /users/{id}/refresh_claims). The fan-out worker needs only this.
type ClaimsRefresher interface {
	RefreshUserClaims(ctx context.Context, userID string) error
}

// KindeAPI is what the admin service needs from Kinde's Management API.
// *kinde.Client satisfies it; its methods rate-limit and retry 429/5xx.
type KindeAPI interface {
	ClaimsRefresher
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
type Publisher interface {
	Publish(topic string, e events.Event)
}

// JobInserter enqueues River jobs inside a database transaction.
// *river.Client[*sql.Tx] satisfies it.
type JobInserter interface {
	InsertManyTx(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// WebhookStats reports on received Kinde webhooks, for the overview. It is
// optional: without it the overview says webhook health is unknown.
type WebhookStats interface {
	WebhookHealth(ctx context.Context) (WebhookHealth, error)
}

// WebhookHealth summarises received webhooks.
type WebhookHealth struct {
	Known          bool      // false when no WebhookStats is configured or it failed
	Received24h    int       // webhooks received in the last 24 hours
	Failed24h      int       // of those, how many could not be verified or processed
	LastReceivedAt time.Time // zero if none yet
}
