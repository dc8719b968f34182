package devkinde

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// roleItem is Kinde's roles schema.
type roleItem struct {
	ID            string `json:"id"`
	Key           string `json:"key"`
	Name          string `json:"name"`
	Description   string `json:"description"`
	IsDefaultRole bool   `json:"is_default_role"`
}

func toRoleItem(r *role) roleItem {
	return roleItem{ID: r.ID, Key: r.Key, Name: r.Name, Description: r.Description, IsDefaultRole: r.IsDefaultRole}
}

type rolesResponse struct {
	Code      string     `json:"code"`
	Message   string     `json:"message"`
	Roles     []roleItem `json:"roles"`
	NextToken string     `json:"next_token,omitempty"`
}

type roleResponse struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Role    roleItem `json:"role"`
}

type createRoleResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Role    struct {
		ID string `json:"id"`
	} `json:"role"`
}

type rolePermissionsPatchResponse struct {
	Code               string   `json:"code"`
	Message            string   `json:"message"`
	PermissionsAdded   []string `json:"permissions_added"`
	PermissionsRemoved []string `json:"permissions_removed"`
}

type roleUser struct {
	ID       string   `json:"id"`
	OrgCodes []string `json:"org_codes"`
}

type roleUsersResponse struct {
	Code      string     `json:"code"`
	Message   string     `json:"message"`
	Users     []roleUser `json:"users"`
	NextToken string     `json:"next_token,omitempty"`
}

type roleBody struct {
	Name                   *string `json:"name"`
	Description            *string `json:"description"`
	Key                    *string `json:"key"`
	IsDefaultRole          *bool   `json:"is_default_role"`
	AssignmentPermissionID *string `json:"assignment_permission_id"`
}

func findRole(st *state, id string) (*role, error) {
	if rl := st.Roles[id]; rl != nil {
		return rl, nil
	}
	return nil, notFound("ROLE_NOT_FOUND", "No role with this id.")
}

// apiListRoles is GET /api/v1/roles (sort: name_asc|name_desc|key_asc|key_desc).
func (s *Server) apiListRoles(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		pg, err := parsePage(r)
		if err != nil {
			return nil, err
		}
		rs := st.sortedRoles()
		err = sortList(rs, r.URL.Query().Get("sort"),
			sortKey[*role]{"name", func(rl *role) string { return rl.Name }},
			sortKey[*role]{"key", func(rl *role) string { return rl.Key }})
		if err != nil {
			return nil, err
		}
		items, next := pageOf(rs, pg, toRoleItem)
		return rolesResponse{Code: "OK", Message: "Success", Roles: items, NextToken: next}, nil
	})
}

// apiGetRole is GET /api/v1/roles/{role_id}.
func (s *Server) apiGetRole(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		rl, err := findRole(st, r.PathValue("role_id"))
		if err != nil {
			return nil, err
		}
		return roleResponse{Code: "OK", Message: "Success", Role: toRoleItem(rl)}, nil
	})
}

// apiCreateRole is POST /api/v1/roles → 201 {role:{id}}.
func (s *Server) apiCreateRole(w http.ResponseWriter, r *http.Request) {
	var body roleBody
	if err := decodeBody(r, &body, true); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		key, err := roleKeys.createKey(st, body.Key)
		if err != nil {
			return 0, nil, err
		}
		rl := &role{ID: newUUIDv7(), Key: key, Name: key, Permissions: []string{}, Seq: st.next()}
		if body.Name != nil && *body.Name != "" {
			rl.Name = *body.Name
		}
		setIfPresent(&rl.Description, body.Description)
		setIfPresent(&rl.IsDefaultRole, body.IsDefaultRole)
		st.Roles[rl.ID] = rl
		s.emitLocked(st, "role.created", "api", roleEventData(rl), now)
		resp := createRoleResponse{Code: "OK", Message: "Success"}
		resp.Role.ID = rl.ID
		return http.StatusCreated, resp, nil
	})
}

// apiUpdateRole is PATCH /api/v1/roles/{role_id}; Kinde's spec answers 201
// and requires name and key in the body.
func (s *Server) apiUpdateRole(w http.ResponseWriter, r *http.Request) {
	var body roleBody
	if err := decodeBody(r, &body, true); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		rl, err := findRole(st, r.PathValue("role_id"))
		if err != nil {
			return 0, nil, err
		}
		if body.Name == nil || strings.TrimSpace(*body.Name) == "" {
			return 0, nil, badRequest("NAME_REQUIRED", "name is required.")
		}
		if body.Key == nil {
			return 0, nil, badRequest("KEY_REQUIRED", "key is required.")
		}
		if err := roleKeys.updateKey(st, body.Key, rl.ID, &rl.Key); err != nil {
			return 0, nil, err
		}
		setIfPresent(&rl.Name, body.Name)
		setIfPresent(&rl.Description, body.Description)
		setIfPresent(&rl.IsDefaultRole, body.IsDefaultRole)
		s.emitLocked(st, "role.updated", "api", roleEventData(rl), now)
		return http.StatusCreated, ok(), nil
	})
}

// apiDeleteRole is DELETE /api/v1/roles/{role_id}. The role is removed from
// every member; like permission deletion this does not invalidate cached
// claims.
func (s *Server) apiDeleteRole(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("role_id")
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		if _, err := findRole(st, id); err != nil {
			return 0, nil, err
		}
		delete(st.Roles, id)
		for _, u := range st.Users {
			for _, m := range u.Orgs {
				m.Roles = without(m.Roles, id)
			}
		}
		s.emitLocked(st, "role.deleted", "api", map[string]any{"role": map[string]string{"id": id}}, now)
		return http.StatusOK, ok(), nil
	})
}

// apiGetRolePermissions is GET /api/v1/roles/{role_id}/permissions.
func (s *Server) apiGetRolePermissions(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		rl, err := findRole(st, r.PathValue("role_id"))
		if err != nil {
			return nil, err
		}
		pg, err := parsePage(r)
		if err != nil {
			return nil, err
		}
		var ps []*permission
		for _, p := range st.sortedPermissions() {
			if slices.Contains(rl.Permissions, p.ID) {
				ps = append(ps, p)
			}
		}
		if err := sortPermissions(ps, r.URL.Query().Get("sort")); err != nil {
			return nil, err
		}
		items, next := pageOf(ps, pg, toPermissionItem)
		return permissionsResponse{Code: "OK", Message: "Success", Permissions: items, NextToken: next}, nil
	})
}

// apiPatchRolePermissions is PATCH /api/v1/roles/{role_id}/permissions: add
// and remove in bulk. As on Kinde, it leaves cached claims of the role's
// members untouched; it sends role.updated only when configured to
// (unless Quirks.NoRoleUpdated).
func (s *Server) apiPatchRolePermissions(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Permissions []struct {
			ID        string `json:"id"`
			Operation string `json:"operation"`
		} `json:"permissions"`
	}
	if err := decodeBody(r, &body, true); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		rl, err := findRole(st, r.PathValue("role_id"))
		if err != nil {
			return 0, nil, err
		}
		if len(body.Permissions) > 100 {
			return 0, nil, badRequest("TOO_MANY_ITEMS", "At most 100 permissions per request.")
		}
		for _, p := range body.Permissions {
			if st.Permissions[p.ID] == nil {
				return 0, nil, badRequest("PERMISSION_INVALID", "Unknown permission id: "+p.ID)
			}
			if p.Operation != "" && p.Operation != "delete" {
				return 0, nil, badRequest("INVALID_OPERATION", "operation must be empty or \"delete\".")
			}
		}
		resp := rolePermissionsPatchResponse{Code: "OK", Message: "Success", PermissionsAdded: []string{},
			PermissionsRemoved: []string{}}
		for _, p := range body.Permissions {
			has := slices.Contains(rl.Permissions, p.ID)
			switch {
			case p.Operation == "delete" && has:
				rl.Permissions = without(rl.Permissions, p.ID)
				resp.PermissionsRemoved = append(resp.PermissionsRemoved, p.ID)
			case p.Operation == "" && !has:
				rl.Permissions = append(rl.Permissions, p.ID)
				resp.PermissionsAdded = append(resp.PermissionsAdded, p.ID)
			}
		}
		if len(resp.PermissionsAdded)+len(resp.PermissionsRemoved) > 0 {
			s.rolePermissionsEdited(st, rl, now)
		}
		return http.StatusOK, resp, nil
	})
}

// apiDeleteRolePermission is DELETE /api/v1/roles/{role_id}/permissions/{permission_id}.
// Like the bulk edit it leaves cached claims alone.
func (s *Server) apiDeleteRolePermission(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("permission_id")
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		rl, err := findRole(st, r.PathValue("role_id"))
		if err != nil {
			return 0, nil, err
		}
		if !slices.Contains(rl.Permissions, pid) {
			return 0, nil, badRequest("PERMISSION_NOT_IN_ROLE", "The role does not have this permission.")
		}
		rl.Permissions = without(rl.Permissions, pid)
		s.rolePermissionsEdited(st, rl, now)
		return http.StatusOK, ok(), nil
	})
}

// rolePermissionsEdited sends role.updated for a change of rl's permissions
// unless Quirks.NoRoleUpdated says Kinde does not.
func (s *Server) rolePermissionsEdited(st *state, rl *role, now time.Time) {
	if !s.quirks.NoRoleUpdated {
		s.emitLocked(st, "role.updated", "api", roleEventData(rl), now)
	}
}

// apiGetRoleUsers is GET /api/v1/roles/{role_id}/users: users holding the
// role in any org, with the orgs where they hold it.
func (s *Server) apiGetRoleUsers(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		rl, err := findRole(st, r.PathValue("role_id"))
		if err != nil {
			return nil, err
		}
		pg, err := parsePage(r)
		if err != nil {
			return nil, err
		}
		var users []roleUser
		for _, u := range st.sortedUsers() {
			var orgs []string
			for _, code := range u.OrgOrder {
				if m := u.Orgs[code]; m != nil && slices.Contains(m.Roles, rl.ID) {
					orgs = append(orgs, code)
				}
			}
			if len(orgs) > 0 {
				users = append(users, roleUser{ID: u.ID, OrgCodes: orgs})
			}
		}
		items, next := paginate(users, pg)
		return roleUsersResponse{Code: "OK", Message: "Success", Users: nonNil(items), NextToken: next}, nil
	})
}
