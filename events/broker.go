// Package events is permsync's in-process publish/subscribe broker for
// server-sent events: one topic per user (UserTopic) and one for admins
// (AdminTopic).
//
// Publish never blocks. Each subscriber has a bounded buffer; when it is full
// the oldest buffered event is dropped to make room for the new one, so a slow
// reader always ends up with the most recent state, and the drop is counted
// (Broker.Dropped). A slow subscriber is never disconnected by the broker.
// The broker starts no goroutines.
package events

import (
	"sync"
	"sync/atomic"
)

// DefaultBuffer is the per-subscriber buffer size used by NewBroker.
const DefaultBuffer = 16

// AdminTopic is the topic every admin's stream subscribes to.
const AdminTopic = "admin"

// UserTopic is the topic of one user's streams: "user:<id>".
func UserTopic(userID string) string { return "user:" + userID }

// Event is one server-sent event.
type Event struct {
	Name string // the SSE event name, e.g. "claims-changed"
	Data string // the SSE data (one or more lines)
}

// Broker fans events out to the subscribers of a topic. The zero value is not
// usable; call NewBroker. A Broker is safe for concurrent use.
type Broker struct {
	buffer  int
	dropped atomic.Uint64

	mu     sync.RWMutex
	topics map[string]map[*subscriber]struct{}
}

// subscriber is one Subscribe call.
type subscriber struct {
	mu sync.Mutex // serialises publishers delivering to ch
	ch chan Event
}

// Option configures a Broker.
type Option func(*Broker)

// WithBuffer sets the per-subscriber buffer size (default DefaultBuffer).
func WithBuffer(n int) Option {
	return func(b *Broker) {
		if n > 0 {
			b.buffer = n
		}
	}
}

// NewBroker returns an empty broker.
func NewBroker(opts ...Option) *Broker {
	b := &Broker{buffer: DefaultBuffer, topics: map[string]map[*subscriber]struct{}{}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Subscribe registers a subscriber to topic and returns its channel and an
// unsubscribe function. Unsubscribe removes the subscriber and closes the
// channel; it is idempotent and safe to call from any goroutine. Every
// Subscribe must be paired with a call to unsubscribe.
func (b *Broker) Subscribe(topic string) (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, b.buffer)}
	b.mu.Lock()
	subs := b.topics[topic]
	if subs == nil {
		subs = map[*subscriber]struct{}{}
		b.topics[topic] = subs
	}
	subs[s] = struct{}{}
	b.mu.Unlock()

	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			if subs := b.topics[topic]; subs != nil {
				delete(subs, s)
				if len(subs) == 0 {
					delete(b.topics, topic)
				}
			}
			b.mu.Unlock()
			// No publisher can hold s any more: they deliver under b.mu.RLock.
			close(s.ch)
		})
	}
}

// Publish delivers e to every current subscriber of topic without blocking.
// A subscriber whose buffer is full loses its oldest buffered event.
func (b *Broker) Publish(topic string, e Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.topics[topic] {
		if s.deliver(e) {
			b.dropped.Add(1)
		}
	}
}

// deliver puts e in the buffer, dropping the oldest event if it is full. It
// reports whether an event was dropped.
func (s *subscriber) deliver(e Event) (dropped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		select {
		case s.ch <- e:
			return dropped
		default:
		}
		// Full. Only the reader competes with us (publishers hold s.mu), and
		// it only makes room, so after this receive the send above succeeds.
		select {
		case <-s.ch:
			dropped = true
		default:
		}
	}
}

// Dropped returns how many events were dropped because a subscriber's buffer
// was full, since the broker was created.
func (b *Broker) Dropped() uint64 { return b.dropped.Load() }

// Subscribers returns the number of current subscribers of topic.
func (b *Broker) Subscribers(topic string) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.topics[topic])
}
