package kinde

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// NormalizeUserID returns the canonical form of a Kinde user id. Tokens may
// carry "kp:<hex>" while the Management API and webhooks use "kp_<hex>"; both
// become "kp_<hex>". Other ids are returned trimmed and otherwise unchanged.
func NormalizeUserID(id string) string {
	id = strings.TrimSpace(id)
	if rest, ok := strings.CutPrefix(id, "kp:"); ok {
		return "kp_" + rest
	}
	return id
}

// userPath is the Management API path of one user, below which its
// refresh_claims and sessions routes live.
func userPath(userID string) string { return "/users/" + seg(NormalizeUserID(userID)) }

// User is a Kinde user as returned by the users list and get endpoints.
type User struct {
	ID            string   `json:"id"` // normalised with NormalizeUserID
	ProvidedID    string   `json:"provided_id"`
	Email         string   `json:"email"` // the list's email or the get endpoint's preferred_email
	Username      string   `json:"username"`
	Phone         string   `json:"phone"`
	FirstName     string   `json:"first_name"`
	LastName      string   `json:"last_name"`
	Picture       string   `json:"picture"`
	IsSuspended   bool     `json:"is_suspended"`
	TotalSignIns  int      `json:"total_sign_ins"`
	FailedSignIns int      `json:"failed_sign_ins"`
	LastSignedIn  string   `json:"last_signed_in"`
	CreatedOn     string   `json:"created_on"`
	Organizations []string `json:"organizations"` // org codes, when expanded
}

// userJSON accepts both user shapes (email in lists, preferred_email on get).
type userJSON struct {
	User
	PreferredEmail string `json:"preferred_email"`
}

func (u userJSON) user() User {
	out := u.User
	out.ID = NormalizeUserID(out.ID)
	if out.Email == "" {
		out.Email = u.PreferredEmail
	}
	return out
}

// UserFilter narrows a users listing. Each list is sent comma-separated;
// empty lists are not sent.
type UserFilter struct {
	UserIDs []string // user_id; normalised with NormalizeUserID
	Emails  []string // email
}

// Users iterates over users matching f (GET /users).
func (c *Client) Users(ctx context.Context, f UserFilter) iter.Seq2[User, error] {
	q := url.Values{}
	if len(f.UserIDs) > 0 {
		ids := make([]string, len(f.UserIDs))
		for i, id := range f.UserIDs {
			ids[i] = NormalizeUserID(id)
		}
		q.Set("user_id", strings.Join(ids, ","))
	}
	if len(f.Emails) > 0 {
		q.Set("email", strings.Join(f.Emails, ","))
	}
	return func(yield func(User, error) bool) {
		for u, err := range paginate[userJSON](ctx, c, "/users", q, "users", nil) {
			if !yield(u.user(), err) || err != nil {
				return
			}
		}
	}
}

// AllUsers returns every user matching f.
func (c *Client) AllUsers(ctx context.Context, f UserFilter) ([]User, error) {
	return Collect(c.Users(ctx, f))
}

// User returns one user (GET /user?id=).
func (c *Client) User(ctx context.Context, id string) (*User, error) {
	var resp userJSON
	if err := c.do(ctx, get("/user", url.Values{"id": {NormalizeUserID(id)}}), &resp); err != nil {
		return nil, err
	}
	u := resp.user()
	return &u, nil
}

// RefreshUserClaims invalidates Kinde's claim cache for one user
// (POST /users/{id}/refresh_claims), so that their next token refresh carries
// current claims. It is idempotent and retried like a GET.
func (c *Client) RefreshUserClaims(ctx context.Context, userID string) error {
	return c.do(ctx, request{method: http.MethodPost, path: userPath(userID) + "/refresh_claims", idempotent: true}, nil)
}

// Session is one of a user's Kinde sessions.
type Session struct {
	UserID        string    `json:"user_id"` // normalised with NormalizeUserID
	OrgCode       string    `json:"org_code"`
	ClientID      string    `json:"client_id"`
	SessionID     string    `json:"session_id"`
	ConnectionID  string    `json:"connection_id"`
	StartedOn     time.Time `json:"started_on"`
	UpdatedOn     time.Time `json:"updated_on"`
	ExpiresOn     time.Time `json:"expires_on"`
	LastIPAddress string    `json:"last_ip_address"`
	LastUserAgent string    `json:"last_user_agent"`
}

// UserSessions returns a user's sessions (GET /users/{id}/sessions).
func (c *Client) UserSessions(ctx context.Context, userID string) ([]Session, error) {
	var resp struct {
		Sessions []Session `json:"sessions"`
	}
	if err := c.do(ctx, get(userPath(userID)+"/sessions", nil), &resp); err != nil {
		return nil, err
	}
	for i := range resp.Sessions {
		resp.Sessions[i].UserID = NormalizeUserID(resp.Sessions[i].UserID)
	}
	return resp.Sessions, nil
}

// DeleteUserSessions ends every Kinde session of a user
// (DELETE /users/{id}/sessions), forcing a new sign-in.
func (c *Client) DeleteUserSessions(ctx context.Context, userID string) error {
	return c.do(ctx, del(userPath(userID)+"/sessions"), nil)
}
