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
	Demo      []demoAccount
}

// demoAccount is a seed account listed on the sign-in page.
type demoAccount struct {
	Email    string
	Password string
	Roles    string
}

type pageData struct {
	signInPage
	Mode  string
	Title string
}

// demoAccountsLocked lists the demo users (seed users marked demo).
func (s *Server) demoAccountsLocked() []demoAccount {
	var out []demoAccount
	for _, u := range s.st.sortedUsers() {
		if u.DemoPassword == "" {
			continue
		}
		var roles []string
		for _, org := range u.OrgOrder {
			for _, r := range s.st.userRoles(u, org) {
				roles = append(roles, r.Key)
			}
		}
		out = append(out, demoAccount{Email: u.Email, Password: u.DemoPassword, Roles: strings.Join(roles, ", ")})
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
