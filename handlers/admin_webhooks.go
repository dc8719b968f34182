package handlers

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"permsync/admin"
	"permsync/apperr"
	"permsync/auth"
	"permsync/views/pages"
)

// webhookLister lists received webhooks (*admin.Service).
type webhookLister interface {
	Webhooks(ctx context.Context, a admin.Actor, limit int) (*admin.WebhookLog, error)
}

// AdminWebhooks serves GET /admin/webhooks: the Kinde webhooks received,
// what permsync did with each, and the deliveries it refused.
type AdminWebhooks struct {
	rd   *renderer
	list webhookLister
}

// List is GET /admin/webhooks.
func (h *AdminWebhooks) List(c echo.Context) error {
	ctx := c.Request().Context()
	s := auth.SessionFrom(ctx)
	if s == nil {
		return errNoSession
	}
	log, err := h.list.Webhooks(ctx, admin.Actor{UserID: s.UserID, Email: s.Email, Permissions: s.Effective()}, 100)
	if err != nil {
		return adminError(err)
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
			ReceivedAt: r.ReceivedAt, Status: r.HTTPStatus, Reason: r.Reason, WebhookID: r.WebhookID,
		})
	}
	return h.rd.render(c, http.StatusOK, pages.AdminWebhooks(p))
}

// adminError maps an admin error to the app's error codes, keeping its
// user-safe message.
func adminError(err error) error {
	code := map[admin.Code]apperr.Code{
		admin.CodeForbidden: apperr.Forbidden, admin.CodeNotFound: apperr.NotFound, admin.CodeInvalid: apperr.Invalid,
		admin.CodeConflict: apperr.Conflict, admin.CodeUnavailable: apperr.Unavailable,
	}[admin.ErrorCode(err)]
	if code == "" {
		code = apperr.Internal
	}
	return apperr.Wrap(err, code, admin.ErrorMessage(err))
}
