package handlers

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"permsync/apperr"
	"permsync/auth"
	"permsync/htmx"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// errorHandler is the one place errors become responses.
type errorHandler struct {
	log      *slog.Logger
	rd       *renderer
	fallback []byte // a pre-rendered 500 page for when rendering fails too
}

func newErrorHandler(log *slog.Logger, rd *renderer) (*errorHandler, error) {
	var buf bytes.Buffer
	err := pages.Error(pages.ErrorProps{
		Status: http.StatusInternalServerError, Title: statusTitle(http.StatusInternalServerError),
		Message: apperr.MessageOf(errors.New("fallback")),
	}).Render(context.Background(), &buf)
	if err != nil {
		return nil, err
	}
	return &errorHandler{log: log, rd: rd, fallback: buf.Bytes()}, nil
}

// handle is Echo's HTTPErrorHandler. It maps err to a status and a safe
// message, logs 5xx at Error and 4xx at Warn, and renders the error page, or
// for htmx requests a small alert retargeted to #alerts. Internal error text
// is never shown.
func (h *errorHandler) handle(err error, c echo.Context) {
	if c.Response().Committed || errors.Is(err, context.Canceled) {
		return
	}
	p := classify(err)
	p.SignedIn = auth.SessionFrom(c.Request().Context()) != nil
	if p.Status == http.StatusNotFound && c.Request().Method == http.MethodGet {
		p.Path = shortPath(c.Request().URL.Path)
		// An admin's 404 under /admin keeps the admin navigation.
		if s := auth.SessionFrom(c.Request().Context()); s != nil && h.rd.adminPerm != "" && s.Can(h.rd.adminPerm) &&
			(c.Request().URL.Path == "/admin" || strings.HasPrefix(c.Request().URL.Path, "/admin/")) {
			p.AdminSection = layouts.AdminSectionOf(c.Request().URL.Path)
		}
	}
	attrs := []any{"method", c.Request().Method, "path", c.Request().URL.Path, "status", p.Status, "error", err}
	if p.Status >= 500 {
		h.log.ErrorContext(c.Request().Context(), "request failed", attrs...)
	} else {
		h.log.WarnContext(c.Request().Context(), "request refused", attrs...)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(p.Status)
		return
	}
	// The request context may already be cancelled by the timeout
	// middleware unwinding; the error page must still render.
	c.SetRequest(c.Request().WithContext(context.WithoutCancel(c.Request().Context())))
	// A page's live update that its route refused is a page state, not a
	// failure: the 403 in place, or (a 404 page) the navigation alone.
	if ok, lerr := h.rd.liveError(c, p); ok {
		if lerr != nil {
			h.log.ErrorContext(c.Request().Context(), "render live update", "error", lerr)
		}
		return
	}
	comp := pages.Error(p)
	if isHTMX(c) {
		htmx.Retarget(c.Response().Header(), "#alerts", "innerHTML")
		comp = pages.ErrorFragment(p)
	}
	if rerr := h.rd.render(c, p.Status, comp); rerr != nil {
		h.log.ErrorContext(c.Request().Context(), "render error page", "error", rerr)
		if !c.Response().Committed {
			_ = c.HTMLBlob(http.StatusInternalServerError, h.fallback)
		}
	}
}

// classify turns an error into the error page's props.
func classify(err error) pages.ErrorProps {
	var (
		perr *auth.PermissionError
		herr *echo.HTTPError
		aerr *apperr.Error
	)
	p := pages.ErrorProps{Status: http.StatusInternalServerError}
	switch {
	case errors.As(err, &perr):
		p.Status, p.Permission = http.StatusForbidden, perr.Key
		p.Message = "Your session does not hold the permission this page needs."
	case errors.As(err, &aerr):
		p.Status, p.Message = statusOf(aerr.Code), aerr.Message
	case errors.As(err, &herr):
		p.Status = herr.Code
	case errors.Is(err, context.DeadlineExceeded):
		p.Status = http.StatusServiceUnavailable
	}
	p.Title = statusTitle(p.Status)
	if p.Message == "" {
		p.Message = statusMessage(p.Status)
	}
	return p
}

func statusOf(code apperr.Code) int {
	switch code {
	case apperr.Invalid:
		return http.StatusBadRequest
	case apperr.Unauthorized:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func statusTitle(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "That request didn't work"
	case http.StatusUnauthorized:
		return "Please sign in"
	case http.StatusForbidden:
		return "You don't have access to this page"
	case http.StatusNotFound:
		return "Page not found"
	case http.StatusMethodNotAllowed:
		return "Not allowed here"
	case http.StatusRequestEntityTooLarge:
		return "Too much data"
	case http.StatusServiceUnavailable:
		return "Temporarily unavailable"
	default:
		if status >= 500 {
			return "Something went wrong"
		}
		return http.StatusText(status)
	}
}

func statusMessage(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "Sign in to continue."
	case http.StatusForbidden:
		return "You don't have permission to do that."
	case http.StatusNotFound:
		return "We couldn't find that page. Check the address, or go back to your dashboard."
	case http.StatusMethodNotAllowed:
		return "This address doesn't accept that kind of request."
	case http.StatusRequestEntityTooLarge:
		return "The request was larger than permsync accepts."
	case http.StatusServiceUnavailable:
		return "That took too long or a service we depend on is down. Please try again in a moment."
	default:
		if status >= 500 {
			return apperr.MessageOf(nil)
		}
		return "Please check the request and try again."
	}
}

// shortPath is a path as a 404 page names it: at most 80 characters, so a
// crafted address cannot fill the page with text of its choosing.
func shortPath(p string) string {
	const limit = 80
	if r := []rune(p); len(r) > limit {
		return string(r[:limit-1]) + "…"
	}
	return p
}
