package events

// PermStateTopic is an internal topic, never streamed to browsers: whoever
// changes a user's claims epoch or writes a tombstone publishes here after
// the change committed, and caches of that state (auth's PermCache, the
// background refresher) re-read the tables. With several replicas the
// Postgres bridge carries these events to the others as wake-up signals; the
// data itself always comes from the tables.
const PermStateTopic = "internal:permstate"

// Names of PermStateTopic events.
const (
	// EpochChanged: a user's claims epoch moved; Data is the user id.
	EpochChanged = "epoch-changed"
	// TombstonesChanged: tombstones were written or lifted; Data is empty.
	TombstonesChanged = "tombstones-changed"
	// Resync: anything may have changed (for example the bridge reconnected
	// after missing notifications); caches reload everything.
	Resync = "resync"
)

// Publisher is anything that publishes events: a *Broker, or a bridge that
// also tells the other replicas.
type Publisher interface {
	Publish(topic string, e Event)
}

// NotifyEpochChanged tells caches that userID's claims epoch moved.
func NotifyEpochChanged(p Publisher, userID string) {
	p.Publish(PermStateTopic, Event{Name: EpochChanged, Data: userID})
}

// NotifyTombstonesChanged tells caches that tombstones changed.
func NotifyTombstonesChanged(p Publisher) {
	p.Publish(PermStateTopic, Event{Name: TombstonesChanged})
}
