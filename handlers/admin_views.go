package handlers

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"permsync/admin"
	"permsync/views/components"
	"permsync/views/pages"
)

// Links between the admin pages (routes.go). Ids are path-escaped.

func permissionHref(id string) string { return "/admin/permissions/" + url.PathEscape(id) }
func userHref(id string) string       { return "/admin/users/" + url.PathEscape(id) }
func fanoutHref(id string) string     { return "/admin/fanouts/" + url.PathEscape(id) }

// The view models of the admin pages, shaped from admin.Service results.

func viewReasons(rs []admin.Reason) []pages.AdminReason {
	out := make([]pages.AdminReason, len(rs))
	for i, r := range rs {
		out[i] = pages.AdminReason{Kind: string(r.Kind), Label: r.Label()}
	}
	return out
}

func viewTombstones(ts []admin.Tombstone) []pages.AdminTombstone {
	out := make([]pages.AdminTombstone, len(ts))
	for i, t := range ts {
		out[i] = pages.AdminTombstone{Key: t.PermissionKey, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Reason: t.Reason}
	}
	return out
}

func viewPermission(p admin.PermissionSummary, tombstoned []string) pages.AdminPermission {
	out := pages.AdminPermission{
		ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description, Href: permissionHref(p.ID),
		Holders: p.Holders, IsAdmin: p.IsAdmin, Tombstoned: slices.Contains(tombstoned, p.Key),
	}
	for _, r := range p.Roles {
		out.Roles = append(out.Roles, pages.AdminRef{ID: r.ID, Key: r.Key, Name: r.Name})
	}
	return out
}

func tombstoneKeys(ts []admin.Tombstone) []string {
	keys := make([]string, len(ts))
	for i, t := range ts {
		keys[i] = t.PermissionKey
	}
	return keys
}

func viewProgress(f admin.FanoutSummary) components.Progress {
	return components.Progress{Total: f.Total, Done: f.Done, Failed: f.Failed, Pending: f.Pending,
		Percent: f.Percent, Finished: f.Finished}
}

// fanoutTitle names a fan-out by what started it.
func fanoutTitle(f admin.FanoutSummary) string {
	switch f.Kind {
	case admin.FanoutPermissionDeleted:
		return "Deleted " + f.PermissionKey
	case admin.FanoutUserRefresh:
		return "Claims refresh"
	case admin.FanoutWebhook:
		return "Kinde webhook"
	case admin.FanoutRBACEdit:
		return strings.TrimSuffix(f.Reason, ".") // the change, in plain words
	}
	return "Fan-out"
}

func viewFanout(f admin.FanoutSummary) pages.AdminFanout {
	// The stored reason is written for the affected user (their toast);
	// the admin pages say what the fan-out does.
	reason := f.Reason
	switch f.Kind {
	case admin.FanoutPermissionDeleted:
		reason = "Every user who held it gets their claims refreshed at Kinde; their sessions drop it on their next request."
	case admin.FanoutUserRefresh:
		reason = "Kinde's claim cache for this user is cleared; their sessions then refresh on their next request, with their current permissions."
	}
	return pages.AdminFanout{
		ID: f.ID, Href: fanoutHref(f.ID), Title: fanoutTitle(f), Kind: f.Kind, PermissionKey: f.PermissionKey,
		Actor: f.Actor, Reason: reason, Progress: viewProgress(f), Created: f.CreatedAt, Finished: f.FinishedAt,
		Phase: f.Phase, KindeDueAt: f.KindeDueAt, KindeAttempts: f.KindeAttempts, KindeError: f.KindeError,
		KindeDoneAt: f.KindeDoneAt, Undoable: f.Undoable,
	}
}

func viewFanouts(fs []admin.FanoutSummary) []pages.AdminFanout {
	out := make([]pages.AdminFanout, len(fs))
	for i, f := range fs {
		out[i] = viewFanout(f)
	}
	return out
}

func viewAudit(es []admin.AuditEntry) []pages.AdminAudit {
	out := make([]pages.AdminAudit, len(es))
	for i, e := range es {
		out[i] = pages.AdminAudit{At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Outcome: e.Outcome,
			Detail: e.Detail}
	}
	return out
}

func viewUser(u admin.UserSummary) pages.AdminUser {
	return pages.AdminUser{
		ID: u.ID, Email: u.Email, Name: u.Name, Href: userHref(u.ID), Orgs: u.Orgs, Roles: u.Roles,
		Permissions: u.Permissions, LiveSessions: u.LiveSessions, ClaimsEpoch: u.ClaimsEpoch,
		LastClaimsRefresh: u.LastClaimsRefresh, LastSessionRefresh: u.LastSessionRefresh,
		RefreshURL: userHref(u.ID) + "/refresh-claims", RevokeURL: userHref(u.ID) + "/sessions/revoke",
		ConfirmRevokeURL: userHref(u.ID) + "/sessions/revoke",
	}
}

// rateText reads like "3.4 users/s"; "—" before anyone finished.
func rateText(rate float64) string {
	switch {
	case rate <= 0:
		return "—"
	case rate >= 10:
		return fmt.Sprintf("%.0f users/s", rate)
	case rate >= 0.1:
		return fmt.Sprintf("%.1f users/s", rate)
	default:
		return fmt.Sprintf("%.1f users/min", rate*60)
	}
}

// etaText reads like "about 12 s"; "done" once finished, "—" when unknown.
func etaText(p *admin.FanoutProgress) string {
	switch {
	case p.Finished:
		return "done"
	case p.ETA <= 0:
		return "—"
	case p.ETA < time.Minute:
		return fmt.Sprintf("about %d s", int(p.ETA.Seconds()+0.5))
	case p.ETA < time.Hour:
		return fmt.Sprintf("about %d min", int(p.ETA.Minutes()+0.5))
	default:
		return fmt.Sprintf("about %.1f h", p.ETA.Hours())
	}
}

func viewFanoutProgress(p *admin.FanoutProgress) pages.AdminFanoutProps {
	out := pages.AdminFanoutProps{
		Fanout: viewFanout(p.FanoutSummary), Rate: rateText(p.Rate), ETA: etaText(p),
		PanelURL: fanoutHref(p.ID), RetryURL: fanoutHref(p.ID) + "/retry", UndoURL: fanoutHref(p.ID) + "/undo",
		Now: time.Now(), First: p.Offset + 1,
	}
	if p.Offset > 0 {
		out.PanelURL += "?offset=" + strconv.Itoa(p.Offset)
	}
	out.PrevHref, out.NextHref = pageHrefs(fanoutHref(p.ID), "", p.Offset, p.Limit, p.Total)
	if p.Kind == admin.FanoutUserRefresh && len(p.Items) == 1 && p.Items[0].Email != "" {
		out.Fanout.Title = "Claims refresh for " + p.Items[0].Email
	}
	for _, it := range p.Items {
		out.Items = append(out.Items, pages.AdminFanoutItem{
			UserID: it.UserID, Email: it.Email, Href: userHref(it.UserID), Reasons: viewReasons(it.Reasons),
			Status: it.Status, Attempts: it.Attempts, LastError: it.LastError, UpdatedAt: it.UpdatedAt,
		})
	}
	return out
}
