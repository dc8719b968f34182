package kindesync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"permsync/kinde"
)

// fakeRegistrar is Kinde's webhook list at the edge.
type fakeRegistrar struct {
	hooks   []kinde.Webhook
	created []kinde.WebhookInput
	listErr error
}

func (f *fakeRegistrar) Webhooks(context.Context) ([]kinde.Webhook, error) { return f.hooks, f.listErr }

func (f *fakeRegistrar) CreateWebhook(_ context.Context, in kinde.WebhookInput) (*kinde.Webhook, error) {
	f.created = append(f.created, in)
	return &kinde.Webhook{Endpoint: in.Endpoint}, nil
}

func TestEnsureWebhookRegistersOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := &fakeRegistrar{}
	created, err := EnsureWebhook(ctx, api, "https://app.test/webhooks/kinde")
	if err != nil || !created || len(api.created) != 1 {
		t.Fatalf("first: created=%v err=%v calls=%d", created, err, len(api.created))
	}
	if in := api.created[0]; !slices.Equal(in.EventTypes, WebhookEventTypes) {
		t.Fatalf("event types = %v", in.EventTypes)
	}
	// Already there (a trailing slash does not make it another endpoint).
	api.hooks = []kinde.Webhook{{Endpoint: "https://app.test/webhooks/kinde/"}}
	created, err = EnsureWebhook(ctx, api, "https://app.test/webhooks/kinde")
	if err != nil || created || len(api.created) != 1 {
		t.Fatalf("second: created=%v err=%v calls=%d", created, err, len(api.created))
	}
	api.listErr = errors.New("down")
	if _, err := EnsureWebhook(ctx, api, "https://app.test/webhooks/kinde"); err == nil {
		t.Fatal("a listing failure must be reported")
	}
}

func TestWebhookErrorMessages(t *testing.T) {
	t.Parallel()
	perm := fmt.Errorf("%w: bad payload", errWebhookPermanent)
	if msg := webhookErrorMessage(perm); msg != "Could not be processed: bad payload" {
		t.Errorf("permanent: %q", msg)
	}
	if msg := webhookErrorMessage(&kinde.APIError{Status: 503}); !strings.Contains(msg, "503") {
		t.Errorf("kinde 503: %q", msg)
	}
	if msg := webhookErrorMessage(errors.New("secret detail")); strings.Contains(msg, "secret") {
		t.Errorf("internal detail leaked: %q", msg)
	}
}
