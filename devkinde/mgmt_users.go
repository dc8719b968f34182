package devkinde

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// userListItem is an element of Kinde's users_response.
type userListItem struct {
	ID            string   `json:"id"`
	ProvidedID    string   `json:"provided_id,omitempty"`
	Email         string   `json:"email"`
	LastName      string   `json:"last_name"`
	FirstName     string   `json:"first_name"`
	IsSuspended   bool     `json:"is_suspended"`
	Picture       string   `json:"picture,omitempty"`
	TotalSignIns  int      `json:"total_sign_ins"`
	FailedSignIns int      `json:"failed_sign_ins"`
	LastSignedIn  *string  `json:"last_signed_in"`
	CreatedOn     *string  `json:"created_on"`
	Organizations []string `json:"organizations,omitempty"`
}

type usersResponse struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Users     []userListItem `json:"users"`
	NextToken string         `json:"next_token,omitempty"`
}

type identityItem struct {
	Type     string `json:"type"`
	Identity string `json:"identity"`
}

// userDetail is Kinde's user schema (GET /api/v1/user).
type userDetail struct {
	ID             string         `json:"id"`
	ProvidedID     string         `json:"provided_id,omitempty"`
	PreferredEmail string         `json:"preferred_email"`
	LastName       string         `json:"last_name"`
	FirstName      string         `json:"first_name"`
	IsSuspended    bool           `json:"is_suspended"`
	Picture        string         `json:"picture,omitempty"`
	TotalSignIns   int            `json:"total_sign_ins"`
	FailedSignIns  int            `json:"failed_sign_ins"`
	LastSignedIn   *string        `json:"last_signed_in"`
	CreatedOn      *string        `json:"created_on"`
	Organizations  []string       `json:"organizations,omitempty"`
	Identities     []identityItem `json:"identities,omitempty"`
}

func hasExpand(r *http.Request, what string) bool {
	return slices.Contains(splitList(r.URL.Query().Get("expand")), what)
}

func findUser(st *state, id string) (*user, error) {
	if u := st.Users[id]; u != nil {
		return u, nil
	}
	return nil, notFound("USER_NOT_FOUND", "No user with this id.")
}

// apiListUsers is GET /api/v1/users with the user_id and email filters
// (comma-separated lists) and expand=organizations.
func (s *Server) apiListUsers(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		pg, err := parsePage(r)
		if err != nil {
			return nil, err
		}
		q := r.URL.Query()
		ids, emails := splitList(q.Get("user_id")), splitList(q.Get("email"))
		var users []*user
		for _, u := range st.sortedUsers() {
			if len(ids) > 0 && !slices.Contains(ids, u.ID) {
				continue
			}
			if len(emails) > 0 && !slices.ContainsFunc(emails, func(e string) bool { return strings.EqualFold(e, u.Email) }) {
				continue
			}
			users = append(users, u)
		}
		expandOrgs := hasExpand(r, "organizations")
		items, next := pageOf(users, pg, func(u *user) userListItem {
			it := userListItem{ID: u.ID, ProvidedID: u.ProvidedID, Email: u.Email, LastName: u.LastName,
				FirstName: u.FirstName, IsSuspended: u.IsSuspended, Picture: u.Picture, TotalSignIns: u.TotalSignIns,
				FailedSignIns: u.FailedSignIns, LastSignedIn: isoTimePtr(u.LastSignedIn), CreatedOn: isoTimePtr(&u.CreatedOn)}
			if expandOrgs {
				it.Organizations = nonNil(slices.Clone(u.OrgOrder))
			}
			return it
		})
		return usersResponse{Code: "OK", Message: "Success", Users: items, NextToken: next}, nil
	})
}

// apiGetUser is GET /api/v1/user?id=.
func (s *Server) apiGetUser(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		u, err := findUser(st, r.URL.Query().Get("id"))
		if err != nil {
			return nil, err
		}
		d := userDetail{ID: u.ID, ProvidedID: u.ProvidedID, PreferredEmail: u.Email, LastName: u.LastName,
			FirstName: u.FirstName, IsSuspended: u.IsSuspended, Picture: u.Picture, TotalSignIns: u.TotalSignIns,
			FailedSignIns: u.FailedSignIns, LastSignedIn: isoTimePtr(u.LastSignedIn), CreatedOn: isoTimePtr(&u.CreatedOn),
			Identities: []identityItem{{Type: "email", Identity: u.Email}}}
		if hasExpand(r, "organizations") {
			d.Organizations = nonNil(slices.Clone(u.OrgOrder))
		}
		return d, nil
	})
}

// apiCreateUser is POST /api/v1/user (email identities only).
func (s *Server) apiCreateUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Profile struct {
			GivenName  string `json:"given_name"`
			FamilyName string `json:"family_name"`
			Picture    string `json:"picture"`
		} `json:"profile"`
		OrganizationCode string `json:"organization_code"`
		ProvidedID       string `json:"provided_id"`
		Identities       []struct {
			Type    string `json:"type"`
			Details struct {
				Email string `json:"email"`
			} `json:"details"`
		} `json:"identities"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		email := ""
		for _, id := range body.Identities {
			if id.Type == "email" {
				email = strings.TrimSpace(id.Details.Email)
			}
		}
		if email != "" && st.userByEmail(email) != nil {
			return 0, nil, badRequest("USER_ALREADY_EXISTS", "A user with this email already exists.")
		}
		if body.OrganizationCode != "" && st.Orgs[body.OrganizationCode] == nil {
			return 0, nil, badRequest("ORGANIZATION_INVALID", "Unknown organization_code.")
		}
		u := &user{ID: newUserID(), Email: email, FirstName: body.Profile.GivenName, LastName: body.Profile.FamilyName,
			Picture: body.Profile.Picture, ProvidedID: body.ProvidedID, CreatedOn: now, UpdatedAt: now,
			Orgs: map[string]*membership{}, Seq: st.next()}
		if body.OrganizationCode != "" {
			u.Orgs[body.OrganizationCode] = &membership{JoinedOn: now, Roles: []string{}, Permissions: []string{}}
			u.OrgOrder = []string{body.OrganizationCode}
		}
		st.Users[u.ID] = u
		s.emitLocked(st, "user.created", "api", map[string]any{"user": userEventData(st, u)}, now)
		type result struct {
			Created bool `json:"created"`
		}
		type identity struct {
			Type   string `json:"type"`
			Result result `json:"result"`
		}
		ids := []identity{}
		if email != "" {
			ids = append(ids, identity{Type: "email", Result: result{Created: true}})
		}
		return http.StatusOK, map[string]any{"id": u.ID, "created": true, "identities": ids}, nil
	})
}

// apiUpdateUser is PATCH /api/v1/user?id=. A profile change or suspension
// invalidates the user's cached claims and emits user.updated.
func (s *Server) apiUpdateUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		GivenName              *string `json:"given_name"`
		FamilyName             *string `json:"family_name"`
		Picture                *string `json:"picture"`
		IsSuspended            *bool   `json:"is_suspended"`
		IsPasswordResetRequest *bool   `json:"is_password_reset_requested"`
		ProvidedID             *string `json:"provided_id"`
	}
	if err := decodeBody(r, &body, true); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		u, err := findUser(st, r.URL.Query().Get("id"))
		if err != nil {
			return 0, nil, err
		}
		setIfPresent(&u.FirstName, body.GivenName)
		setIfPresent(&u.LastName, body.FamilyName)
		setIfPresent(&u.Picture, body.Picture)
		setIfPresent(&u.ProvidedID, body.ProvidedID)
		setIfPresent(&u.IsSuspended, body.IsSuspended)
		setIfPresent(&u.PasswordResetRequested, body.IsPasswordResetRequest)
		s.userChanged(st, u, now)
		return http.StatusOK, map[string]any{"id": u.ID, "given_name": u.FirstName, "family_name": u.LastName,
			"email": u.Email, "is_suspended": u.IsSuspended, "is_password_reset_requested": u.PasswordResetRequested,
			"picture": u.Picture}, nil
	})
}

// userChanged records a direct change to a user (profile, suspension, org
// membership, roles or permissions in an org): the claim cache is
// invalidated, as Kinde documents, and user.updated is emitted.
func (s *Server) userChanged(st *state, u *user, now time.Time) {
	u.UpdatedAt = now
	st.invalidateClaims(u.ID)
	s.emitLocked(st, "user.updated", "api", map[string]any{"user": userEventData(st, u)}, now)
}

// apiDeleteUser is DELETE /api/v1/user?id=: the user, their sessions and
// refresh tokens go; user.deleted carries only the id.
func (s *Server) apiDeleteUser(w http.ResponseWriter, r *http.Request) {
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		u, err := findUser(st, r.URL.Query().Get("id"))
		if err != nil {
			return 0, nil, err
		}
		delete(st.Users, u.ID)
		st.invalidateClaims(u.ID)
		endUserSessions(st, u.ID)
		s.emitLocked(st, "user.deleted", "api", map[string]any{"user": map[string]string{"id": u.ID}}, now)
		return http.StatusOK, ok(), nil
	})
}

// endUserSessions ends a user's provider sessions and revokes every refresh
// token family they hold.
func endUserSessions(st *state, userID string) {
	for id, sess := range st.Sessions {
		if sess.UserID == userID {
			delete(st.Sessions, id)
		}
	}
	st.revokeFamiliesWhere(func(f *refreshFamily) bool { return f.UserID == userID })
}

// apiRefreshClaims is POST /api/v1/users/{user_id}/refresh_claims: it
// invalidates the user's claim cache, so the next token issued (a refresh
// grant) carries current claims and is a new access token.
func (s *Server) apiRefreshClaims(w http.ResponseWriter, r *http.Request) {
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		u, err := findUser(st, r.PathValue("user_id"))
		if err != nil {
			return 0, nil, err
		}
		st.invalidateClaims(u.ID)
		return http.StatusOK, ok(), nil
	})
}

type sessionItem struct {
	UserID           string  `json:"user_id"`
	OrgCode          *string `json:"org_code"`
	ClientID         string  `json:"client_id"`
	ExpiresOn        string  `json:"expires_on"`
	SessionID        string  `json:"session_id"`
	StartedOn        string  `json:"started_on"`
	UpdatedOn        string  `json:"updated_on"`
	ConnectionID     string  `json:"connection_id"`
	LastIPAddress    string  `json:"last_ip_address"`
	LastUserAgent    string  `json:"last_user_agent"`
	InitialIPAddress string  `json:"initial_ip_address"`
	InitialUserAgent string  `json:"initial_user_agent"`
}

type sessionsResponse struct {
	Code     string        `json:"code"`
	Message  string        `json:"message"`
	HasMore  bool          `json:"has_more"`
	Sessions []sessionItem `json:"sessions"`
}

// emailConnectionID is the connection id devkinde reports for its
// email + password sign-in.
const emailConnectionID = "conn_devkinde_email_password"

// writeUserNotFound answers with Kinde's not_found_response (errors is an
// object), which is what the spec declares for the sessions routes.
func writeUserNotFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, notFoundResponse{Errors: apiErrorItem{Code: "USER_NOT_FOUND",
		Message: "No user with this id."}})
}

// apiGetUserSessions is GET /api/v1/users/{user_id}/sessions.
func (s *Server) apiGetUserSessions(w http.ResponseWriter, r *http.Request) {
	var resp *sessionsResponse
	s.view(func(st *state) {
		u := st.Users[r.PathValue("user_id")]
		if u == nil {
			return
		}
		resp = &sessionsResponse{Code: "OK", Message: "Success", Sessions: []sessionItem{}}
		all := sorted(st.Sessions, func(x *ssoSession) int64 { return x.StartedOn.UnixNano() })
		for _, sess := range all {
			if sess.UserID != u.ID {
				continue
			}
			it := sessionItem{UserID: u.ID, ClientID: sess.ClientID, ExpiresOn: isoTime(sess.ExpiresOn),
				SessionID: sess.ID, StartedOn: isoTime(sess.StartedOn), UpdatedOn: isoTime(sess.UpdatedOn),
				ConnectionID: emailConnectionID, LastIPAddress: sess.LastIP, LastUserAgent: sess.LastUA,
				InitialIPAddress: sess.InitialIP, InitialUserAgent: sess.InitialUA}
			if sess.OrgCode != "" {
				oc := sess.OrgCode
				it.OrgCode = &oc
			}
			resp.Sessions = append(resp.Sessions, it)
		}
	})
	if resp == nil {
		writeUserNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// apiDeleteUserSessions is DELETE /api/v1/users/{user_id}/sessions: every
// provider session ends and every refresh token of the user is revoked, so
// the next refresh gets invalid_grant (Kinde's "force re-login" lever).
func (s *Server) apiDeleteUserSessions(w http.ResponseWriter, r *http.Request) {
	found := false
	_ = s.update(func(st *state, now time.Time) error {
		if u := st.Users[r.PathValue("user_id")]; u != nil {
			found = true
			endUserSessions(st, u.ID)
		}
		return nil
	})
	if !found {
		writeUserNotFound(w)
		return
	}
	writeJSON(w, http.StatusOK, ok())
}
