package handlers

import (
	"context"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/views/layouts"
	"permsync/views/pages"
)

// overviewService is what the admin home page needs.
type overviewService interface {
	Overview(ctx context.Context, a admin.Actor) (*admin.Overview, error)
}

// AdminOverview serves GET /admin.
type AdminOverview struct {
	adminBase
	svc overviewService
}

// Show is GET /admin: counts from Kinde (or why they are missing), recent
// fan-outs, live tombstones, webhook health and the latest audit entries.
func (h *AdminOverview) Show(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	o, err := h.svc.Overview(c.Request().Context(), a)
	if err != nil {
		return h.failPage(c, layouts.AdminOverview, "Overview", err)
	}
	return h.page(c, pages.AdminOverview(pages.AdminOverviewProps{
		Flashes: h.takeFlashes(c), KindeOK: o.KindeOK, KindeMessage: o.KindeMessage,
		Permissions: o.Permissions, Roles: o.Roles, Users: o.Users, AsOf: o.AsOf,
		Fanouts: o.Fanouts, ActiveFanouts: o.ActiveFanouts, Tombstones: viewTombstones(o.Tombstones),
		RecentFanouts: viewFanouts(o.RecentFanouts), RecentAudit: viewAudit(o.RecentAudit),
		Webhooks: pages.AdminWebhookHealth{Known: o.Webhooks.Known, Received: o.Webhooks.Received24h,
			Failed: o.Webhooks.Failed24h, LastReceivedAt: o.Webhooks.LastReceivedAt},
	}))
}
