package handlers

import (
	"context"
	"fmt"
	"strconv"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// fanoutService is what the fan-out pages need.
type fanoutService interface {
	Fanouts(ctx context.Context, a admin.Actor, limit int) ([]admin.FanoutSummary, error)
	FanoutPage(ctx context.Context, a admin.Actor, q admin.FanoutQuery) (*admin.FanoutProgress, error)
	RetryFanout(ctx context.Context, a admin.Actor, id string) (*admin.RetryResult, error)
	UndoDeletion(ctx context.Context, a admin.Actor, fanoutID string) error
}

// fanoutListLimit is how many fan-outs the list shows.
const fanoutListLimit = 100

// AdminFanouts serves the fan-out list, the live progress page and
// "Retry failed".
type AdminFanouts struct {
	adminBase
	svc fanoutService
}

// List is GET /admin/fanouts, newest first.
func (h *AdminFanouts) List(c echo.Context) error {
	fs, err := asActor(c, h.svc.Fanouts, fanoutListLimit)
	if err != nil {
		return h.failPage(c, layouts.AdminFanouts, "Fan-outs", err)
	}
	return h.page(c, pages.AdminFanouts(pages.AdminFanoutsProps{Fanouts: viewFanouts(fs)}))
}

// Show is GET /admin/fanouts/{id}. The page's progress panel re-fetches
// this route as an htmx request (on each fanout-progress event, and every
// two seconds as a fallback) and gets the panel alone.
func (h *AdminFanouts) Show(c echo.Context) error {
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	prog, err := asActor(c, h.svc.FanoutPage, admin.FanoutQuery{ID: c.Param("id"), Offset: max(offset, 0)})
	if err != nil {
		return h.failPage(c, layouts.AdminFanouts, "Fan-out", err)
	}
	p := viewFanoutProgress(prog)
	if isFragment(c) {
		return h.page(c, pages.FanoutPanel(p))
	}
	p.Flashes = h.takeFlashes(c)
	return h.page(c, pages.AdminFanoutPage(p))
}

// Undo is POST /admin/fanouts/{id}/undo: a deletion still in its undo
// window (or refused by Kinde) is cancelled, and the admin goes back to the
// fan-out's page, which says so.
func (h *AdminFanouts) Undo(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if err := h.svc.UndoDeletion(c.Request().Context(), a, id); err != nil {
		return err
	}
	h.flash(c, "success", "Undone: Kinde was not asked to delete it, and everyone who held it has it again.")
	return redirect(c, fanoutHref(id))
}

// Retry is POST /admin/fanouts/{id}/retry: the failed users are queued
// again, and the admin goes back to the fan-out's page.
func (h *AdminFanouts) Retry(c echo.Context) error {
	res, err := asActor(c, h.svc.RetryFanout, c.Param("id"))
	if err != nil {
		return err
	}
	if res.Requeued == 0 {
		h.flash(c, "info", "Nothing to retry: no user in this fan-out has failed.")
	} else {
		h.flash(c, "success", fmt.Sprintf("Queued %s again.", plural(res.Requeued, "failed user", "failed users")))
	}
	return redirect(c, fanoutHref(res.FanoutID))
}
