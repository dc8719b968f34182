package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Health answers the liveness and readiness probes.
type Health struct {
	db Pinger
}

// Healthz is liveness: the process serves HTTP.
func (h *Health) Healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok")
}

// Readyz is readiness: the database answers.
func (h *Health) Readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.db.Ping(ctx); err != nil {
		return c.String(http.StatusServiceUnavailable, "database unavailable")
	}
	return c.String(http.StatusOK, "ok")
}
