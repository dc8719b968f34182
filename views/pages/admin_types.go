package pages

import (
	"strconv"
	"time"

	"permsync/views/components"
)

// The admin pages' view models. Handlers build them from the admin service's
// results; the templates only lay them out.

// AdminRef names a role or a permission, with the page it links to.
type AdminRef struct {
	ID   string
	Key  string
	Name string
	// Href is the detail page, or "" when there is none.
	Href string
}

// AdminPermission is one permission as the admin pages show it.
type AdminPermission struct {
	ID          string
	Key         string
	Name        string
	Description string
	Href        string     // the detail page
	Roles       []AdminRef // roles that grant it
	Holders     int        // organization members holding it
	IsAdmin     bool       // it gates the admin panel and cannot be deleted here
	// Tombstoned means the key was deleted recently and no session honours
	// it any more.
	Tombstoned bool
}

// AdminTombstone is a deleted key still being removed from sessions.
type AdminTombstone struct {
	Key       string
	CreatedAt time.Time
	ExpiresAt time.Time
	Reason    string
}

// AdminReason says why a user holds or held a permission.
type AdminReason struct {
	Kind  string // "role", "direct" or "session": picks the badge colour
	Label string // e.g. "role analyst"
}

// AdminAffectedUser is one user a deletion would reach.
type AdminAffectedUser struct {
	UserID  string
	Email   string
	Name    string
	Href    string // the user's admin page
	Reasons []AdminReason
}

// AdminFanout is one fan-out in a list.
type AdminFanout struct {
	ID    string
	Href  string
	Title string // e.g. "Deleted export:reports"
	Kind  string // "permission_deleted", "user_refresh" or "webhook"
	// PermissionKey is the deleted key, for permission fan-outs.
	PermissionKey string
	Actor         string
	Reason        string
	Progress      components.Progress
	Created       time.Time
	Finished      time.Time // zero while running
}

// AdminAudit is one audit log line.
type AdminAudit struct {
	At      time.Time
	Actor   string
	Action  string
	Target  string
	Outcome string // "ok", "failed", "partial" or "denied"
	Detail  string
}

// AdminWebhookHealth summarises received Kinde webhooks.
type AdminWebhookHealth struct {
	Known          bool // false: webhook health is not tracked in this setup
	Received       int  // in the last 24 hours
	Failed         int
	LastReceivedAt time.Time
}

// AdminOverviewProps are the admin home page's data.
type AdminOverviewProps struct {
	Flashes []components.Alert
	// KindeOK is false when Kinde could not be read; KindeMessage says why
	// and the counts are unknown.
	KindeOK       bool
	KindeMessage  string
	Permissions   int
	Roles         int
	Users         int
	AsOf          time.Time
	Fanouts       int
	ActiveFanouts int
	Tombstones    []AdminTombstone
	RecentFanouts []AdminFanout
	RecentAudit   []AdminAudit
	Webhooks      AdminWebhookHealth
}

// AdminPermissionsProps are the permissions page's data.
type AdminPermissionsProps struct {
	Query       string
	Permissions []AdminPermission
	Total       int // at Kinde, before the search
	Tombstones  []AdminTombstone
	AsOf        time.Time
}

// AdminPermissionProps are the permission detail page's data.
type AdminPermissionProps struct {
	Flashes        []components.Alert
	Permission     AdminPermission
	Affected       []AdminAffectedUser
	RoleHolders    int
	DirectHolders  int
	SessionHolders int
	CanDelete      bool
	DeleteBlocked  string // why CanDelete is false
	// ConfirmError is shown in the danger zone after a wrong confirmation.
	ConfirmError string
	// DeleteURL is where the delete form posts.
	DeleteURL string
}

// AdminRole is one role with its permissions.
type AdminRole struct {
	ID          string
	Key         string
	Name        string
	Description string
	IsDefault   bool
	Permissions []AdminRef
	Holders     int
	UsersHref   string // the users page filtered by this role
}

// AdminRolesProps are the roles page's data.
type AdminRolesProps struct {
	Roles []AdminRole
}

// AdminUser is one user as the users page shows them.
type AdminUser struct {
	ID                 string
	Email              string
	Name               string
	Href               string
	Orgs               []string
	Roles              []string
	Permissions        []string // effective keys at Kinde
	LiveSessions       int
	ClaimsEpoch        int64
	LastClaimsRefresh  time.Time
	LastSessionRefresh time.Time
	RefreshURL         string // POST: refresh claims
	RevokeURL          string // POST: revoke sessions
}

// AdminUsersProps are the users page's data.
type AdminUsersProps struct {
	Flashes []components.Alert
	Query   string
	Users   []AdminUser
	Total   int
	AsOf    time.Time
}

// AdminGrant is one permission a user holds, and why.
type AdminGrant struct {
	Key        string
	Name       string
	OrgCode    string
	Reasons    []AdminReason
	Tombstoned bool
}

// AdminSession is one live permsync session of a user.
type AdminSession struct {
	OrgCode         string
	CreatedAt       time.Time
	LastSeenAt      time.Time
	RefreshedAt     time.Time
	AccessExpiresAt time.Time
	ClaimsEpoch     int64
	Stale           bool
	Permissions     []string
	UserAgent       string
}

// AdminUserProps are the user detail page's data.
type AdminUserProps struct {
	Flashes  []components.Alert
	User     AdminUser
	Grants   []AdminGrant
	Sessions []AdminSession
}

// AdminFanoutsProps are the fan-outs page's data.
type AdminFanoutsProps struct {
	Fanouts []AdminFanout
}

// AdminFanoutItem is one user's status in a fan-out.
type AdminFanoutItem struct {
	UserID    string
	Email     string
	Href      string
	Reasons   []AdminReason
	Status    string // "pending", "done" or "failed"
	Attempts  int
	LastError string
	UpdatedAt time.Time
}

// AdminFanoutProps are the fan-out page's data; the progress panel is also
// served alone to the page's live updates.
type AdminFanoutProps struct {
	Flashes []components.Alert
	Fanout  AdminFanout
	Rate    string // e.g. "3.2 users/s", or "—"
	ETA     string // e.g. "about 12 s", "done", or "—"
	Items   []AdminFanoutItem
	// PanelURL is what the live panel re-fetches.
	PanelURL string
	// RetryURL is where "Retry failed" posts.
	RetryURL string
}

// AdminProblemProps are an admin page that could not load its data: the
// sub-navigation stays usable and the message says what happened.
type AdminProblemProps struct {
	Section string
	Title   string
	Status  int
	Message string
	// Retry reloads the page.
	Retry string
}

// plural reads like "1 live session" or "3 live sessions".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
