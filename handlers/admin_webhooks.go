package handlers

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/kindesync"
	"permsync/views/pages"
)

// webhookLister lists received webhooks (*kindesync.Syncer).
type webhookLister interface {
	Webhooks(ctx context.Context, limit int) (*kindesync.WebhookLog, error)
}

// authorizer checks an actor holds the admin permission (*admin.Service).
type authorizer interface {
	Authorize(ctx context.Context, a admin.Actor) error
}

// AdminWebhooks serves GET /admin/webhooks: the Kinde webhooks received,
// what permsync did with each, and the deliveries it refused.
type AdminWebhooks struct {
	rd    *renderer
	list  webhookLister
	authz authorizer
}

// List is GET /admin/webhooks.
func (h *AdminWebhooks) List(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := h.authz.Authorize(ctx, a); err != nil {
		return err
	}
	log, err := h.list.Webhooks(ctx, 100)
	if err != nil {
		return err
	}
	p := pages.AdminWebhooksProps{
		Received24h: log.Stats.Received, Failed24h: log.Stats.Failed, Rejected24h: log.Stats.Rejected,
		LastReceivedAt: log.Stats.LastReceivedAt,
	}
	for _, e := range log.Events {
		p.Events = append(p.Events, pages.WebhookRow{
			WebhookID: e.WebhookID, EventID: e.EventID, Type: e.Type, Source: e.Source, ReceivedAt: e.ReceivedAt,
			Status: e.Status, Attempts: e.Attempts, Outcome: e.Outcome, Error: e.Error, FanoutID: e.FanoutID,
		})
	}
	for _, r := range log.Rejections {
		p.Rejections = append(p.Rejections, pages.WebhookRejectionRow{
			ReceivedAt: r.ReceivedAt, Status: r.HTTPStatus, Reason: refusalReason(r.Reason, r.Refusals), WebhookID: r.WebhookID,
		})
	}
	return h.rd.render(c, http.StatusOK, pages.AdminWebhooks(p))
}

// refusalReason is a sampled refusal's reason, with how many refusals of
// that kind the row stands for when it is more than one.
func refusalReason(reason string, refusals int) string {
	if refusals > 1 {
		return fmt.Sprintf("%s (%d refused; rows are sampled during a flood)", reason, refusals)
	}
	return reason
}
