package events

import "encoding/json"

// Server-sent event names and payloads that pages listen for. The browser
// side names them too: static/js/live.js, views/components/live.templ and
// views/pages/admin_fanouts.templ.
const (
	// EventClaimsChanged goes to a user's topic when their permissions
	// changed: first when a permission they hold is tombstoned (Stage
	// "tombstoned"), then when Kinde's claim cache for them was refreshed and
	// their epoch bumped (Stage "refreshed"). Pages re-render their
	// permission panels; the next ordinary request refreshes the session.
	EventClaimsChanged = "claims-changed"
	// EventSessionEnded goes to a user's topic when an admin revoked their
	// sessions; pages go to sign-in.
	EventSessionEnded = "session-ended"
	// EventFanoutProgress goes to the admin topic whenever a fan-out starts
	// or one of its items finishes.
	EventFanoutProgress = "fanout-progress"
)

// Claims-changed stages.
const (
	StageTombstoned = "tombstoned"
	StageRefreshed  = "refreshed"
	// StageRestored: a deletion was undone before Kinde made it; the key
	// is honoured again.
	StageRestored = "restored"
)

// ClaimsChangedData is the JSON data of EventClaimsChanged.
type ClaimsChangedData struct {
	Stage         string `json:"stage"`                    // StageTombstoned, StageRefreshed or StageRestored
	Reason        string `json:"reason"`                   // a readable sentence
	PermissionKey string `json:"permission_key,omitempty"` // the deleted key, if any
	FanoutID      string `json:"fanout_id,omitempty"`
	Epoch         int64  `json:"epoch,omitempty"` // the user's new claims epoch (refreshed)
}

// SessionEndedData is the JSON data of EventSessionEnded.
type SessionEndedData struct {
	Reason string `json:"reason"`
	// By is EndedByAdmin when an admin revoked the sessions: the page then
	// goes to a page that says so instead of to sign-in.
	By string `json:"by,omitempty"`
}

// EndedByAdmin is SessionEndedData.By for sessions an admin revoked.
const EndedByAdmin = "admin"

// FanoutProgressData is the JSON data of EventFanoutProgress.
type FanoutProgressData struct {
	FanoutID string `json:"fanout_id"`
	Total    int    `json:"total"`
	Done     int    `json:"done"`
	Failed   int    `json:"failed"`
	Pending  int    `json:"pending"`
	Finished bool   `json:"finished"`
	// UserID and Status name the item that just finished, if any.
	UserID string `json:"user_id,omitempty"`
	Status string `json:"status,omitempty"`
}

// PublishJSON publishes an event whose data is v as one line of JSON.
func PublishJSON(p Publisher, topic, name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return // the payload types above always marshal
	}
	p.Publish(topic, Event{Name: name, Data: string(b)})
}
