package devkinde

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

type webhookItem struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Endpoint    string   `json:"endpoint"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	CreatedOn   string   `json:"created_on"`
}

type webhooksResponse struct {
	Code     string        `json:"code"`
	Message  string        `json:"message"`
	Webhooks []webhookItem `json:"webhooks"`
}

type webhookBody struct {
	Endpoint    *string  `json:"endpoint"`
	EventTypes  []string `json:"event_types"`
	Name        *string  `json:"name"`
	Description *string  `json:"description"`
}

func validateEventTypes(ets []string) error {
	if len(ets) == 0 {
		return badRequest("EVENT_TYPES_REQUIRED", "event_types must list at least one event type.")
	}
	for _, et := range ets {
		if !isEventType(et) {
			return badRequest("EVENT_TYPE_INVALID", "Unknown event type: "+et)
		}
	}
	return nil
}

func findWebhook(st *state, id string) (*webhook, error) {
	if wh := st.Webhooks[id]; wh != nil {
		return wh, nil
	}
	return nil, notFound("WEBHOOK_NOT_FOUND", "No webhook with this id.")
}

// apiListWebhooks is GET /api/v1/webhooks.
func (s *Server) apiListWebhooks(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		resp := webhooksResponse{Code: "OK", Message: "Success", Webhooks: []webhookItem{}}
		for _, wh := range st.sortedWebhooks() {
			resp.Webhooks = append(resp.Webhooks, webhookItem{ID: wh.ID, Name: wh.Name, Endpoint: wh.Endpoint,
				Description: wh.Description, EventTypes: slices.Clone(wh.EventTypes), CreatedOn: isoTime(wh.CreatedOn)})
		}
		return resp, nil
	})
}

// apiCreateWebhook is POST /api/v1/webhooks.
func (s *Server) apiCreateWebhook(w http.ResponseWriter, r *http.Request) {
	var body webhookBody
	if err := decodeBody(r, &body, true); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		if body.Endpoint == nil || body.Name == nil || strings.TrimSpace(*body.Name) == "" {
			return 0, nil, badRequest("INVALID_REQUEST", "endpoint, event_types and name are required.")
		}
		u, err := url.Parse(*body.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return 0, nil, badRequest("ENDPOINT_INVALID", "endpoint must be an absolute http(s) URL.")
		}
		if err := validateEventTypes(body.EventTypes); err != nil {
			return 0, nil, err
		}
		wh := &webhook{ID: newWebhookID(), Name: strings.TrimSpace(*body.Name), Endpoint: *body.Endpoint,
			EventTypes: slices.Clone(body.EventTypes), CreatedOn: now, Seq: st.next()}
		setIfPresent(&wh.Description, body.Description)
		st.Webhooks[wh.ID] = wh
		return http.StatusOK, map[string]any{"code": "OK", "message": "Success",
			"webhook": map[string]string{"id": wh.ID, "endpoint": wh.Endpoint}}, nil
	})
}

// apiUpdateWebhook is PATCH /api/v1/webhooks/{webhook_id}; as in Kinde's
// spec the endpoint cannot be changed.
func (s *Server) apiUpdateWebhook(w http.ResponseWriter, r *http.Request) {
	var body webhookBody
	if err := decodeBody(r, &body, true); err != nil {
		s.writeAPIErr(w, err)
		return
	}
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		wh, err := findWebhook(st, r.PathValue("webhook_id"))
		if err != nil {
			return 0, nil, err
		}
		if body.EventTypes != nil {
			if err := validateEventTypes(body.EventTypes); err != nil {
				return 0, nil, err
			}
			wh.EventTypes = slices.Clone(body.EventTypes)
		}
		if body.Name != nil && strings.TrimSpace(*body.Name) != "" {
			wh.Name = strings.TrimSpace(*body.Name)
		}
		setIfPresent(&wh.Description, body.Description)
		return http.StatusOK, map[string]any{"code": "OK", "message": "Success",
			"webhook": map[string]string{"id": wh.ID}}, nil
	})
}

// apiDeleteWebhook is DELETE /api/v1/webhooks/{webhook_id}.
func (s *Server) apiDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	s.mutate(w, func(st *state, now time.Time) (int, any, error) {
		wh, err := findWebhook(st, r.PathValue("webhook_id"))
		if err != nil {
			return 0, nil, err
		}
		delete(st.Webhooks, wh.ID)
		return http.StatusOK, ok(), nil
	})
}

// apiListEventTypes is GET /api/v1/event_types.
func (s *Server) apiListEventTypes(w http.ResponseWriter, r *http.Request) {
	type item struct {
		ID     string         `json:"id"`
		Code   string         `json:"code"`
		Name   string         `json:"name"`
		Origin string         `json:"origin"`
		Schema map[string]any `json:"schema"`
	}
	out := []item{}
	for _, et := range eventTypes {
		out = append(out, item{ID: derivedUUID("event_type:" + et.Code), Code: et.Code, Name: et.Name,
			Origin: et.Origin, Schema: map[string]any{}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": "OK", "message": "Success", "event_types": out})
}

// apiGetEvent is GET /api/v1/events/{event_id}. Kinde's spec types the
// event timestamp as an integer here, so devkinde answers Unix seconds (the
// webhook payload carries the ISO 8601 string).
func (s *Server) apiGetEvent(w http.ResponseWriter, r *http.Request) {
	s.read(w, func(st *state) (any, error) {
		id := r.PathValue("event_id")
		for _, ev := range st.Events {
			if ev.EventID == id {
				return map[string]any{"code": "OK", "message": "Success", "event": map[string]any{
					"type": ev.Type, "source": ev.Source, "event_id": ev.EventID,
					"timestamp": ev.Created.Unix(), "data": json.RawMessage(ev.Data)}}, nil
			}
		}
		return nil, notFound("EVENT_NOT_FOUND", "No event with this id.")
	})
}
