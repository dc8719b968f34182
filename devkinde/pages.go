package devkinde

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strings"
)

//go:embed templates/page.html
var templateFS embed.FS

// pageTmpl renders the sign-in page, the signed-out page and error pages.
var pageTmpl = template.Must(template.ParseFS(templateFS, "templates/page.html"))

// signInPage is the view model of the sign-in (or sign-up) page.
type signInPage struct {
	RequestID string
	Create    bool
	Error     string
	Demo      []DemoAccount
}

// DemoAccount is a demo user as the sign-in page (and permsync's start-up
// banner) lists it, from the current state: a permission deleted or a role
// changed since the seed shows at once.
type DemoAccount struct {
	Email    string
	Password string
	// Access reads like "viewer + export:reports": the user's roles, then
	// the permissions granted to them directly.
	Access string
}

// DemoAccounts lists the demo users as they stand now.
func (s *Server) DemoAccounts() []DemoAccount {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.demoAccountsLocked()
}

type pageData struct {
	signInPage
	Mode  string
	Title string
}

// demoAccountsLocked lists the demo users (seed users marked demo).
func (s *Server) demoAccountsLocked() []DemoAccount {
	var out []DemoAccount
	for _, u := range s.st.sortedUsers() {
		if u.DemoPassword == "" {
			continue
		}
		var roles, direct []string
		for _, org := range u.OrgOrder {
			for _, r := range s.st.userRoles(u, org) {
				roles = append(roles, r.Key)
			}
			if m := u.Orgs[org]; m != nil {
				for _, id := range m.Permissions {
					if p := s.st.Permissions[id]; p != nil {
						direct = append(direct, p.Key)
					}
				}
			}
		}
		access := strings.Join(roles, ", ")
		if len(direct) > 0 {
			if access != "" {
				access += " + "
			}
			access += "direct " + strings.Join(direct, ", ")
		}
		if access == "" {
			access = "no access"
		}
		out = append(out, DemoAccount{Email: u.Email, Password: u.DemoPassword, Access: access})
	}
	return out
}

func (s *Server) render(w http.ResponseWriter, status int, d pageData) {
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		s.log.Error("devkinde render page", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) renderSignIn(w http.ResponseWriter, status int, p signInPage) {
	title := "Sign in"
	if p.Create {
		title = "Create account"
	}
	s.render(w, status, pageData{signInPage: p, Mode: "signin", Title: title})
}

func (s *Server) renderError(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, pageData{signInPage: signInPage{Error: msg}, Mode: "error", Title: "Error"})
}

func (s *Server) renderSignedOut(w http.ResponseWriter) {
	s.render(w, http.StatusOK, pageData{Mode: "signedout", Title: "Signed out"})
}
