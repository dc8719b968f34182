package devkinde

import (
	"net/http"
	"time"
)

// permissionItem is Kinde's permissions schema.
type permissionItem struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func toPermissionItem(p *permission) permissionItem {
	return permissionItem{ID: p.ID, Key: p.Key, Name: p.Name, Description: p.Description}
}

type permissionsResponse struct {
	Code        string           `json:"code"`
	Message     string           `json:"message"`
	Permissions []permissionItem `json:"permissions"`
	NextToken   string           `json:"next_token,omitempty"`
}

// sortPermissions applies Kinde's sort parameter (name_asc, name_desc,
// id_asc, id_desc); without it permissions come in creation order.
func sortPermissions(ps []*permission, sortBy string) error {
	return sortList(ps, sortBy,
		sortKey[*permission]{"name", func(p *permission) string { return p.Name }},
		sortKey[*permission]{"id", func(p *permission) string { return p.ID }})
}

// apiListPermissions is GET /api/v1/permissions.
func (s *Server) apiListPermissions(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		pg, err := parsePage(r)
		if err != nil {
			return nil, err
		}
		ps := st.sortedPermissions()
		if err := sortPermissions(ps, r.URL.Query().Get("sort")); err != nil {
			return nil, err
		}
		items, next := pageOf(ps, pg, toPermissionItem)
		return permissionsResponse{Code: "OK", Message: "Success", Permissions: items, NextToken: next}, nil
	})
}

type permissionBody struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Key         *string `json:"key"`
}

// apiCreatePermission is POST /api/v1/permissions. Like Kinde it answers 201
// with a bare success body: the new id is not returned.
func (s *Server) apiCreatePermission(w http.ResponseWriter, r *http.Request) {
	var body permissionBody
	if err := decodeBody(r, &body, true); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		key, err := permissionKeys.createKey(st, body.Key)
		if err != nil {
			return 0, nil, err
		}
		p := &permission{ID: newUUIDv7(), Key: key, Name: key, Seq: st.next()}
		if body.Name != nil && *body.Name != "" {
			p.Name = *body.Name
		}
		setIfPresent(&p.Description, body.Description)
		st.Permissions[p.ID] = p
		s.emitLocked(st, "permission.created", "api", permissionEventData(p), now)
		return http.StatusCreated, ok(), nil
	})
}

// apiUpdatePermission is PATCH /api/v1/permissions/{permission_id}.
func (s *Server) apiUpdatePermission(w http.ResponseWriter, r *http.Request) {
	var body permissionBody
	if err := decodeBody(r, &body, false); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	id := r.PathValue("permission_id")
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		p := st.Permissions[id]
		if p == nil {
			return 0, nil, notFound("PERMISSION_NOT_FOUND", "No permission with this id.")
		}
		if err := permissionKeys.updateKey(st, body.Key, p.ID, &p.Key); err != nil {
			return 0, nil, err
		}
		setIfPresent(&p.Name, body.Name)
		setIfPresent(&p.Description, body.Description)
		s.emitLocked(st, "permission.updated", "api", permissionEventData(p), now)
		return http.StatusOK, ok(), nil
	})
}

// apiDeletePermission is DELETE /api/v1/permissions/{permission_id}. The
// permission disappears from every role and every direct grant, but, as on
// Kinde, cached claims are NOT invalidated: users keep it in refreshed tokens
// until their cache is refreshed (refresh_claims) or they sign in again.
func (s *Server) apiDeletePermission(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("permission_id")
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		if st.Permissions[id] == nil {
			return 0, nil, notFound("PERMISSION_NOT_FOUND", "No permission with this id.")
		}
		delete(st.Permissions, id)
		for _, rl := range st.Roles {
			rl.Permissions = without(rl.Permissions, id)
		}
		for _, u := range st.Users {
			for _, m := range u.Orgs {
				m.Permissions = without(m.Permissions, id)
			}
		}
		s.emitLocked(st, "permission.deleted", "api", map[string]any{"permission": map[string]string{"id": id}}, now)
		return http.StatusOK, ok(), nil
	})
}
