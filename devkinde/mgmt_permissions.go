package devkinde

import (
	"net/http"
	"slices"
	"strings"
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
	var cmp func(a, b *permission) int
	switch sortBy {
	case "":
		return nil
	case "name_asc":
		cmp = func(a, b *permission) int { return strings.Compare(a.Name, b.Name) }
	case "name_desc":
		cmp = func(a, b *permission) int { return strings.Compare(b.Name, a.Name) }
	case "id_asc":
		cmp = func(a, b *permission) int { return strings.Compare(a.ID, b.ID) }
	case "id_desc":
		cmp = func(a, b *permission) int { return strings.Compare(b.ID, a.ID) }
	default:
		return badRequest("INVALID_SORT", "sort must be one of name_asc, name_desc, id_asc, id_desc.")
	}
	slices.SortStableFunc(ps, cmp)
	return nil
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
		items, next := paginate(ps, pg)
		resp := permissionsResponse{Code: "OK", Message: "Success", Permissions: []permissionItem{}, NextToken: next}
		for _, p := range items {
			resp.Permissions = append(resp.Permissions, toPermissionItem(p))
		}
		return resp, nil
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
		if body.Key == nil || strings.TrimSpace(*body.Key) == "" {
			return 0, nil, badRequest("KEY_REQUIRED", "key is required.")
		}
		key := strings.TrimSpace(*body.Key)
		if st.permByKey(key) != nil {
			return 0, nil, badRequest("PERMISSION_KEY_EXISTS", "A permission with this key already exists.")
		}
		p := &permission{ID: newUUIDv7(), Key: key, Name: key, Seq: st.next()}
		if body.Name != nil && *body.Name != "" {
			p.Name = *body.Name
		}
		if body.Description != nil {
			p.Description = *body.Description
		}
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
		if body.Key != nil {
			key := strings.TrimSpace(*body.Key)
			if key == "" {
				return 0, nil, badRequest("KEY_REQUIRED", "key cannot be empty.")
			}
			if other := st.permByKey(key); other != nil && other.ID != p.ID {
				return 0, nil, badRequest("PERMISSION_KEY_EXISTS", "A permission with this key already exists.")
			}
			p.Key = key
		}
		if body.Name != nil {
			p.Name = *body.Name
		}
		if body.Description != nil {
			p.Description = *body.Description
		}
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
			rl.Permissions = slices.DeleteFunc(rl.Permissions, func(pid string) bool { return pid == id })
		}
		for _, u := range st.Users {
			for _, m := range u.Orgs {
				m.Permissions = slices.DeleteFunc(m.Permissions, func(pid string) bool { return pid == id })
			}
		}
		s.emitLocked(st, "permission.deleted", "api", map[string]any{"permission": map[string]string{"id": id}}, now)
		return http.StatusOK, ok(), nil
	})
}
