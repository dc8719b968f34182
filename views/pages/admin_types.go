package pages

import (
	"strconv"
	"time"

	"permsync/views/components"
)

// The view models several admin pages share. Each page's own props sit at
// the top of its .templ file; handlers build them from the admin service's
// results, and the templates only lay them out.

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

	// The Kinde call of a deletion or an access change: "" (none),
	// "waiting" (the undo window), "deleting" (the call under way, whatever
	// the change: callWords words it by Kind), "retrying" (Kinde refused;
	// KindeError says why), "failed", "refreshing" or "undone".
	Phase         string
	KindeDueAt    time.Time
	KindeAttempts int
	KindeError    string
	KindeDoneAt   time.Time
	Undoable      bool
}

// plural reads like "1 live session" or "3 live sessions".
func plural(n int, one, many string) string { return components.Plural(n, one, many) }

// countOf reads like "1 of 4 members" or "2 of 1 member".
func countOf(n, total int, one, many string) string {
	if total == 1 {
		return strconv.Itoa(n) + " of 1 " + one
	}
	return strconv.Itoa(n) + " of " + strconv.Itoa(total) + " " + many
}

// affectedUsers reads like "1 user" or "3 users".
func affectedUsers(n int) string { return plural(n, "user", "users") }

// joinWords reads like "role admin" or "role admin and a direct grant".
func joinWords(ws []string) string {
	switch len(ws) {
	case 0:
		return ""
	case 1:
		return ws[0]
	}
	out := ws[0]
	for _, w := range ws[1 : len(ws)-1] {
		out += ", " + w
	}
	return out + " and " + ws[len(ws)-1]
}

// kindeCallWords is how the fan-out page words its Kinde call.
type kindeCallWords struct{ due, refused, doing, meanwhile, noun, done, undone, nobody string }

// callWords words the Kinde call of a fan-out of kind: a deletion's, or an
// access change's (an RBAC edit, whose own page has the details).
func callWords(kind string) kindeCallWords {
	if kind == "rbac_edit" {
		return kindeCallWords{due: "Kinde is called when the window ends", refused: "What it takes away is already refused.",
			doing: "Making the change at Kinde.", meanwhile: "What it takes away stays refused meanwhile.",
			noun: "change", done: "Made at Kinde", undone: "Kinde was never called, and nothing it took away is refused any more.",
			nobody: "The change reaches no user, so nothing needed refreshing."}
	}
	return kindeCallWords{due: "Kinde deletes it when the window ends", refused: "It is already refused to every session.",
		doing: "Deleting at Kinde.", meanwhile: "It stays refused to every session meanwhile.", noun: "delete",
		done: "Deleted at Kinde", undone: "Kinde was never asked to delete it, and everyone who held it has it again.",
		nobody: "No user held the permission, so nothing needed refreshing."}
}
