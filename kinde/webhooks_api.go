package kinde

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Webhook is a webhook registered at Kinde.
type Webhook struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Endpoint    string   `json:"endpoint"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	CreatedOn   string   `json:"created_on"`
}

// WebhookInput is the body of a webhook registration.
type WebhookInput struct {
	Endpoint    string   `json:"endpoint"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	EventTypes  []string `json:"event_types"`
}

// Webhooks returns the registered webhooks (GET /webhooks).
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var resp struct {
		Webhooks []Webhook `json:"webhooks"`
	}
	if err := c.do(ctx, get("/webhooks", nil), &resp); err != nil {
		return nil, err
	}
	return resp.Webhooks, nil
}

// CreateWebhook registers a webhook (POST /webhooks) and returns it with the
// id Kinde assigned. Like every create, it is not retried after a 5xx or a
// network error (it may have been registered); it is retried after a 429.
func (c *Client) CreateWebhook(ctx context.Context, in WebhookInput) (*Webhook, error) {
	var resp struct {
		Webhook struct {
			ID       string `json:"id"`
			Endpoint string `json:"endpoint"`
		} `json:"webhook"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: "/webhooks", body: in}, &resp); err != nil {
		return nil, err
	}
	w := &Webhook{
		ID:          resp.Webhook.ID,
		Name:        in.Name,
		Endpoint:    in.Endpoint,
		Description: in.Description,
		EventTypes:  in.EventTypes,
	}
	if resp.Webhook.Endpoint != "" {
		w.Endpoint = resp.Webhook.Endpoint
	}
	return w, nil
}

// DeleteWebhook removes a webhook (DELETE /webhooks/{id}).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.do(ctx, del("/webhooks/"+seg(id)), nil)
}

// Event fetches an event by id (GET /events/{id}), e.g. to confirm a webhook
// delivery. The event is parsed with the same rules as a webhook payload.
func (c *Client) Event(ctx context.Context, eventID string) (*Event, error) {
	var resp struct {
		Event json.RawMessage `json:"event"`
	}
	if err := c.do(ctx, get("/events/"+seg(eventID), nil), &resp); err != nil {
		return nil, err
	}
	ev, err := ParseEvent(resp.Event)
	if err != nil {
		return nil, fmt.Errorf("kinde: GET %s/events/%s: %w", apiPrefix, eventID, err)
	}
	return ev, nil
}
