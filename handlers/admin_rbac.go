package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/apperr"
	"permsync/views/components"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// rbacService is what the RBAC panel's pages need.
type rbacService interface {
	RBAC(ctx context.Context, a admin.Actor, editsOffset int) (*admin.RBACOverview, error)
	RoleDetail(ctx context.Context, a admin.Actor, id string, offset int) (*admin.RoleDetail, error)
	UserAccess(ctx context.Context, a admin.Actor, userID string) (*admin.UserAccess, error)
	PreviewEdit(ctx context.Context, a admin.Actor, in admin.EditInput) (*admin.EditPreview, error)
	ConfirmEdit(ctx context.Context, a admin.Actor, in admin.EditInput, confirm string) (*admin.EditResult, error)
	UndoEdit(ctx context.Context, a admin.Actor, id string) error
	Edit(ctx context.Context, a admin.Actor, id string) (*admin.EditView, error)
	UndoWindow() time.Duration
}

// AdminRBAC serves the RBAC panel: the overview, a role's page, a user's
// access page, the preview of an edit and its confirmation, and the edit's
// page with Undo. Every change is a GET preview first (forms and links carry
// the edit in the query), then a POST with the CSRF token.
type AdminRBAC struct {
	adminBase
	svc rbacService
}

const (
	previewPath = "/admin/edits/preview"
	editsPath   = "/admin/edits"
	previewPage = 50 // users per preview table page
)

func roleHref(id string) string       { return "/admin/roles/" + url.PathEscape(id) }
func accessHref(userID string) string { return userHref(userID) + "/access" }
func editHref(id string) string       { return editsPath + "/" + url.PathEscape(id) }

// editQuery is the preview address of an edit.
func editQuery(in admin.EditInput) string {
	v := url.Values{"kind": {string(in.Kind)}}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("role_id", in.RoleID)
	set("permission_id", in.PermissionID)
	set("user_id", in.UserID)
	set("org_code", in.OrgCode)
	set("key", in.Key)
	set("name", in.Name)
	set("description", in.Description)
	return previewPath + "?" + v.Encode()
}

// editInput reads an edit from a query (preview) or a form (confirm).
func editInput(c echo.Context) admin.EditInput {
	return admin.EditInput{Kind: admin.EditKind(c.FormValue("kind")), RoleID: c.FormValue("role_id"),
		PermissionID: c.FormValue("permission_id"), UserID: c.FormValue("user_id"), OrgCode: c.FormValue("org_code"),
		Key: c.FormValue("key"), Name: c.FormValue("name"), Description: c.FormValue("description")}
}

// Overview is GET /admin/rbac?offset=: roles, permissions, the create and
// rename forms, and a page of the changes made here.
func (h *AdminRBAC) Overview(c echo.Context) error {
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	o, err := asActor(c, h.svc.RBAC, max(offset, 0))
	if err != nil {
		return h.failPage(c, layouts.AdminRBAC, "Access", err)
	}
	p := pages.AdminRBACProps{Flashes: h.takeFlashes(c), PreviewURL: previewPath, EditsTotal: o.Edits.Total}
	for _, r := range o.Roles {
		p.Roles = append(p.Roles, pages.AdminRBACRole{ID: r.ID, Key: r.Key, Name: r.Name, Href: roleHref(r.ID),
			Permissions: len(r.Permissions), Holders: r.Holders})
	}
	for _, perm := range o.Permissions {
		row := pages.AdminRBACPermission{ID: perm.ID, Key: perm.Key, Name: perm.Name, Href: permissionHref(perm.ID),
			Holders: perm.Holders}
		for _, r := range perm.Roles {
			row.Roles = append(row.Roles, r.Key)
		}
		p.Permissions = append(p.Permissions, row)
	}
	for _, e := range o.Edits.Edits {
		p.Edits = append(p.Edits, pages.AdminEditRow{ID: e.ID, Href: editHref(e.ID), Summary: e.Summary, State: e.State,
			Actor: e.ActorEmail, Affected: e.Affected, CreatedAt: e.CreatedAt})
	}
	p.PrevHref, p.NextHref = pageHrefs("/admin/rbac", "", o.Edits.Offset, o.Edits.Limit, o.Edits.Total)
	return h.page(c, pages.AdminRBAC(p))
}

// Role is GET /admin/roles/{id}?offset=: the role's grants with their
// Remove previews, the add, rename and delete forms, a page of members.
func (h *AdminRBAC) Role(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	d, err := h.svc.RoleDetail(c.Request().Context(), a, c.Param("id"), max(offset, 0))
	if err != nil {
		return h.failPage(c, layouts.AdminRBAC, "Role", err)
	}
	p := pages.AdminRoleProps{Flashes: h.takeFlashes(c), ID: d.Role.ID, Key: d.Role.Key, Name: d.Role.Name,
		Description: d.Description, MemberTotal: d.MemberTotal, PreviewURL: previewPath,
		DeleteHref: editQuery(admin.EditInput{Kind: admin.EditRoleDelete, RoleID: d.Role.ID})}
	for _, perm := range d.Permissions {
		p.Permissions = append(p.Permissions, pages.AdminEditLink{
			AdminRef: pages.AdminRef{ID: perm.ID, Key: perm.Key, Name: perm.Name, Href: permissionHref(perm.ID)},
			PreviewHref: editQuery(admin.EditInput{Kind: admin.EditRoleRemovePermission, RoleID: d.Role.ID,
				PermissionID: perm.ID}),
		})
	}
	for _, perm := range d.Addable {
		p.Addable = append(p.Addable, pages.AdminRef{ID: perm.ID, Key: perm.Key, Name: perm.Name})
	}
	for _, m := range d.Members {
		p.Members = append(p.Members, pages.AdminRoleMember{UserID: m.UserID, Email: m.Email, OrgCode: m.OrgCode,
			Href: accessHref(m.UserID)})
	}
	if len(d.Members) > 0 {
		p.First, p.Last = d.Offset+1, d.Offset+len(d.Members)
	}
	p.PrevHref, p.NextHref = pageHrefs(roleHref(d.Role.ID), "", d.Offset, d.Limit, d.MemberTotal)
	return h.page(c, pages.AdminRolePage(p))
}

// Access is GET /admin/users/{id}/access: per organization, the user's
// roles and direct grants with their Remove previews, and the forms that
// give more.
func (h *AdminRBAC) Access(c echo.Context) error {
	u, err := asActor(c, h.svc.UserAccess, c.Param("id"))
	if err != nil {
		return h.failPage(c, layouts.AdminUsers, "Access", err)
	}
	p := pages.AdminUserAccessProps{Flashes: h.takeFlashes(c), UserID: u.UserID, Email: u.Email, Name: u.Name,
		UserHref: userHref(u.UserID), PreviewURL: previewPath}
	for _, o := range u.Orgs {
		vo := pages.AdminOrgAccess{OrgCode: o.OrgCode, RemoveHref: editQuery(admin.EditInput{Kind: admin.EditMemberRemove,
			UserID: u.UserID, OrgCode: o.OrgCode})}
		for _, r := range o.Roles {
			vo.Roles = append(vo.Roles, pages.AdminEditLink{AdminRef: pages.AdminRef{ID: r.ID, Key: r.Key, Name: r.Name},
				PreviewHref: editQuery(admin.EditInput{Kind: admin.EditMemberRemoveRole, UserID: u.UserID,
					OrgCode: o.OrgCode, RoleID: r.ID})})
		}
		for _, d := range o.Direct {
			vo.Direct = append(vo.Direct, pages.AdminEditLink{AdminRef: pages.AdminRef{ID: d.ID, Key: d.Key, Name: d.Name},
				PreviewHref: editQuery(admin.EditInput{Kind: admin.EditMemberRemovePermission, UserID: u.UserID,
					OrgCode: o.OrgCode, PermissionID: d.ID})})
		}
		for _, r := range o.AddRoles {
			vo.AddRoles = append(vo.AddRoles, pages.AdminRef{ID: r.ID, Key: r.Key})
		}
		for _, g := range o.GrantPerms {
			vo.GrantPerms = append(vo.GrantPerms, pages.AdminRef{ID: g.ID, Key: g.Key})
		}
		for _, k := range o.Effective {
			vo.Effective = append(vo.Effective, pages.AdminUserKey{Key: k.Key, Reasons: viewReasons(k.Reasons)})
		}
		p.Orgs = append(p.Orgs, vo)
	}
	return h.page(c, pages.AdminUserAccess(p))
}

// flashEditConfirm carries a wrong confirmation back to the preview.
const flashEditConfirm = "edit-confirm-error"

// Preview is GET /admin/edits/preview?kind=...&offset=: what the edit
// would do, then the confirmation form.
func (h *AdminRBAC) Preview(c echo.Context) error {
	in := editInput(c)
	pv, err := asActor(c, h.svc.PreviewEdit, in)
	if err != nil {
		return h.failPage(c, layouts.AdminRBAC, "Preview", err)
	}
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	offset = max(offset, 0)
	losers, gainers, keepers := pv.Losers(), pv.Gainers(), pv.Keepers()
	p := pages.AdminEditPreviewProps{Summary: pv.Summary, Note: pv.Note, LoserTotal: len(losers),
		GainerTotal: len(gainers), KeeperTotal: len(keepers), Refresh: len(pv.Refresh), ConfirmURL: editsPath,
		ConfirmWord: pv.ConfirmWord, UndoWindow: undoWords(h.svc.UndoWindow()), CancelHref: cancelHref(pv.Edit)}
	p.Losers = viewEffects(window(losers, offset), false)
	p.Gainers = viewEffects(window(gainers, offset), false)
	p.Keepers = viewEffects(window(keepers, offset), true)
	longest := max(len(losers), len(gainers), len(keepers))
	base := editQuery(in)
	if offset > 0 {
		p.PrevHref = base + "&offset=" + strconv.Itoa(max(offset-previewPage, 0))
	}
	if offset+previewPage < longest {
		p.NextHref = base + "&offset=" + strconv.Itoa(offset+previewPage)
	}
	for _, f := range []struct{ k, v string }{{"kind", string(in.Kind)}, {"role_id", in.RoleID},
		{"permission_id", in.PermissionID}, {"user_id", in.UserID}, {"org_code", in.OrgCode}, {"key", in.Key},
		{"name", in.Name}, {"description", in.Description}} {
		if f.v != "" {
			p.Fields = append(p.Fields, pages.AdminField{Name: f.k, Value: f.v})
		}
	}
	for _, a := range h.takeFlashes(c) {
		if a.Kind == flashEditConfirm {
			p.ConfirmError = a.Message
			continue
		}
		p.Flashes = append(p.Flashes, a)
	}
	return h.page(c, pages.AdminEditPreview(p))
}

// undoWords says how long the undo window is: "15s", or "none" for 0.
func undoWords(d time.Duration) string {
	if d <= 0 {
		return "none: Kinde is called at once"
	}
	var zero time.Time
	return components.Remaining(zero, zero.Add(d))
}

// window is one preview page of effects.
func window(es []admin.UserEffect, offset int) []admin.UserEffect {
	return es[min(offset, len(es)):min(offset+previewPage, len(es))]
}

func viewEffects(es []admin.UserEffect, kept bool) []pages.AdminEffect {
	out := make([]pages.AdminEffect, len(es))
	for i, e := range es {
		ve := pages.AdminEffect{Email: e.Email, UserID: e.UserID, OrgCode: e.OrgCode, Href: accessHref(e.UserID),
			Reason: e.Reason}
		if ve.Email == "" {
			ve.Email = e.UserID
		}
		if kept {
			for _, k := range e.Kept {
				vk := pages.AdminKept{Key: k.Key}
				for _, v := range k.Via {
					vk.Via = append(vk.Via, v.Label())
				}
				ve.Kept = append(ve.Kept, vk)
			}
		} else {
			ve.Keys = append(append(ve.Keys, e.Lost...), e.Gained...)
		}
		out[i] = ve
	}
	return out
}

// cancelHref is where the preview's Cancel goes: the page the edit came
// from.
func cancelHref(e admin.Edit) string {
	switch {
	case e.UserID != "":
		return accessHref(e.UserID)
	case e.Role.ID != "":
		return roleHref(e.Role.ID)
	}
	return "/admin/rbac"
}

// Confirm is POST /admin/edits: the edit is recorded (and refused to the
// users who lose something) and the admin goes to its page. A wrong
// confirmation changes nothing and goes back to the preview.
func (h *AdminRBAC) Confirm(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	in := editInput(c)
	res, err := h.svc.ConfirmEdit(c.Request().Context(), a, in, c.FormValue("confirm"))
	if err != nil {
		if apperr.CodeOf(err) == apperr.Invalid && !isHTMX(c) {
			h.flash(c, flashEditConfirm, apperr.MessageOf(err))
			return c.Redirect(http.StatusSeeOther, editQuery(in))
		}
		return err
	}
	msg := fmt.Sprintf("%s. Kinde is called when the undo window ends; then %s their claims refreshed.",
		res.Summary, plural(res.Affected, "user gets", "users get"))
	if res.Denied > 0 {
		msg = fmt.Sprintf("%s. What it takes away is refused now (%s). Kinde is called when the undo window ends; then %s their claims refreshed.",
			res.Summary, plural(res.Denied, "denial", "denials"), plural(res.Affected, "user gets", "users get"))
	}
	h.flash(c, "success", msg)
	return redirect(c, editHref(res.EditID))
}

// Edit is GET /admin/edits/{id}: the change, Undo inside the window, then
// Kinde's answer. Its status card re-fetches this route (htmx) and gets
// the card alone.
func (h *AdminRBAC) Edit(c echo.Context) error {
	v, err := asActor(c, h.svc.Edit, c.Param("id"))
	if err != nil {
		return h.failPage(c, layouts.AdminRBAC, "Change", err)
	}
	p := pages.AdminEditProps{ID: v.ID, Summary: v.Summary, State: v.State, Actor: v.ActorEmail,
		CreatedAt: v.CreatedAt, DueAt: v.DueAt, Now: time.Now(), Error: v.Error, Outcome: v.Outcome,
		Attempts: v.Attempts, Undoable: v.Undoable, UndoURL: editHref(v.ID) + "/undo", FanoutHref: fanoutHref(v.FanoutID),
		Progress: viewProgress(v.Fanout), SelfURL: editHref(v.ID),
		Finished: v.State == admin.EditUndone || v.State == admin.EditFailed || (v.State == admin.EditApplied && v.Fanout.Finished)}
	if isFragment(c) {
		return h.page(c, pages.EditStatus(p))
	}
	p.Flashes = h.takeFlashes(c)
	losers, gainers := v.Plan.Losers(), v.Plan.Gainers()
	p.LoserTotal, p.GainerTotal = len(losers), len(gainers)
	p.Losers = viewEffects(window(losers, 0), false)
	p.Gainers = viewEffects(window(gainers, 0), false)
	return h.page(c, pages.AdminEditPage(p))
}

// Undo is POST /admin/edits/{id}/undo.
func (h *AdminRBAC) Undo(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := h.svc.UndoEdit(c.Request().Context(), a, id); err != nil {
		return err
	}
	h.flash(c, "success", "Undone: Kinde was not called, and nothing this change took away is refused any more.")
	return redirect(c, editHref(id))
}
