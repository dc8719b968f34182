package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"permsync/views/pages"
)

// Admin serves /admin. The admin feature replaces this placeholder with the
// RBAC pages (DESIGN §5); the group and its gate live in routes.go.
type Admin struct {
	rd *renderer
}

// Overview is GET /admin.
func (h *Admin) Overview(c echo.Context) error {
	return h.rd.render(c, http.StatusOK, pages.AdminOverview())
}
