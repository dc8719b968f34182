package kindesync

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"permsync/kinde"
)

// WebhookEventTypes are the Kinde events permsync subscribes to.
var WebhookEventTypes = []string{
	kinde.EventPermissionCreated, kinde.EventPermissionUpdated, kinde.EventPermissionDeleted,
	kinde.EventRoleUpdated, kinde.EventRoleDeleted,
	kinde.EventUserUpdated, kinde.EventUserDeleted,
	kinde.EventOrganizationDeleted,
}

// WebhookRegistrar lists and creates webhooks at Kinde. *kinde.Client
// satisfies it.
type WebhookRegistrar interface {
	Webhooks(ctx context.Context) ([]kinde.Webhook, error)
	CreateWebhook(ctx context.Context, in kinde.WebhookInput) (*kinde.Webhook, error)
}

// EnsureWebhook registers endpoint at Kinde for WebhookEventTypes unless a
// webhook with that endpoint exists. It reports whether it created one. It
// is idempotent; callers treat an error as a warning (permsync works
// without webhooks, it just does not hear about changes made in Kinde).
func EnsureWebhook(ctx context.Context, api WebhookRegistrar, endpoint string) (bool, error) {
	hooks, err := api.Webhooks(ctx)
	if err != nil {
		return false, fmt.Errorf("list webhooks: %w", err)
	}
	for _, h := range hooks {
		if sameEndpoint(h.Endpoint, endpoint) {
			return false, nil
		}
	}
	_, err = api.CreateWebhook(ctx, kinde.WebhookInput{
		Endpoint: endpoint, Name: "permsync",
		Description: "permsync: keeps sessions' permissions true (created by permsync at start)",
		EventTypes:  WebhookEventTypes,
	})
	if err != nil {
		return false, fmt.Errorf("create webhook: %w", err)
	}
	return true, nil
}

func sameEndpoint(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// LogWebhookHelp prints how to register the endpoint by hand.
func LogWebhookHelp(log *slog.Logger, endpoint string, cause error) {
	log.Warn("kinde webhook not registered; permsync will not hear about changes made in Kinde's dashboard "+
		"until it is (Kinde: Settings → Webhooks → Add webhook, or POST /api/v1/webhooks with the M2M app)",
		"endpoint", endpoint, "event_types", strings.Join(WebhookEventTypes, ","), "error", cause)
}
