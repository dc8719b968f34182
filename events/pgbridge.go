package events

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// maxNotifyPayload is below Postgres's 8000-byte NOTIFY payload limit.
const maxNotifyPayload = 7900

// queueSize bounds the events waiting to go to the other replicas (a few
// hundred bytes each).
const queueSize = 8192

// PGBridge carries events between replicas that share a Postgres database.
// Publish delivers to the local broker at once and queues a NOTIFY (queued
// events go out together, many to a notification); Run
// LISTENs and republishes other replicas' events locally. Notifications are
// wake-up signals only: caches re-read the tables when they hear one. After
// the listening connection (re)connects, a Resync is published locally on
// PermStateTopic, since notifications sent while it was down are lost.
//
// The channel is named after the database schema, so that apps sharing a
// database in different schemas (tests) do not hear each other.
type PGBridge struct {
	local   *Broker
	db      *sql.DB
	connURL string
	log     *slog.Logger
	origin  string
	channel string
	out     chan envelope
}

// envelope is one event on the wire.
type envelope struct {
	Origin string `json:"o"`
	Topic  string `json:"t"`
	Name   string `json:"n"`
	Data   string `json:"d,omitempty"`
}

// NewPGBridge returns a bridge over db (a Postgres pool, for NOTIFY) and
// connURL (for the dedicated LISTEN connection).
func NewPGBridge(ctx context.Context, local *Broker, db *sql.DB, connURL string, log *slog.Logger) (*PGBridge, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, fmt.Errorf("events bridge: current schema: %w", err)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	return &PGBridge{local: local, db: db, connURL: connURL, log: log, origin: hex.EncodeToString(id[:]),
		channel: channelName(schema), out: make(chan envelope, queueSize)}, nil
}

var notIdent = regexp.MustCompile(`[^a-z0-9_]`)

// channelName is "permsync_events_<schema>", a safe identifier.
func channelName(schema string) string {
	s := notIdent.ReplaceAllString(strings.ToLower(schema), "_")
	name := "permsync_events_" + s
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// Publish delivers e locally and queues it for the other replicas. It never
// blocks: when the queue is full the event reaches this replica only, and
// the others catch up at their next resync.
func (b *PGBridge) Publish(topic string, e Event) {
	b.local.Publish(topic, e)
	select {
	case b.out <- envelope{Origin: b.origin, Topic: topic, Name: e.Name, Data: e.Data}:
	default:
		b.log.Warn("events bridge: queue full; event not sent to other replicas", "topic", topic, "event", e.Name)
	}
}

// Run sends and receives until ctx ends.
func (b *PGBridge) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.send(ctx)
	}()
	b.listen(ctx)
	<-done
}

func (b *PGBridge) send(ctx context.Context) {
	var held *envelope // taken from the queue but too big for the last batch
	for {
		var first envelope
		if held != nil {
			first, held = *held, nil
		} else {
			select {
			case <-ctx.Done():
				return
			case first = <-b.out:
			}
		}
		batch, next := b.batch(first)
		held = next
		if _, err := b.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, b.channel, string(batch)); err != nil && ctx.Err() == nil {
			b.log.Warn("events bridge: notify failed", "topic", first.Topic, "event", first.Name, "error", err)
		}
	}
}

// batch packs first and whatever else is queued, up to one notification's
// payload, into a JSON array: a fan-out publishes an event per user, and one
// round trip per event would let the queue overflow at a few thousand users a
// second. It returns the envelope that did not fit, if it took one.
func (b *PGBridge) batch(first envelope) ([]byte, *envelope) {
	buf := append(make([]byte, 0, 1024), '[')
	add := func(env envelope) bool {
		raw, err := json.Marshal(env)
		if err != nil {
			return true // unencodable: drop it
		}
		if len(raw)+2 > maxNotifyPayload {
			// Too big to carry: ask the others to re-read everything.
			raw, _ = json.Marshal(envelope{Origin: b.origin, Topic: PermStateTopic, Name: Resync})
		}
		if len(buf)+len(raw)+2 > maxNotifyPayload {
			return false
		}
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = append(buf, raw...)
		return true
	}
	add(first)
	for {
		select {
		case env := <-b.out:
			if !add(env) {
				return append(buf, ']'), &env
			}
		default:
			return append(buf, ']'), nil
		}
	}
}

// decodeNotification reads a notification's payload: an array of envelopes,
// or one envelope (what a replica of an earlier version sends).
func decodeNotification(payload string) []envelope {
	if strings.HasPrefix(payload, "[") {
		var envs []envelope
		if json.Unmarshal([]byte(payload), &envs) != nil {
			return nil
		}
		return envs
	}
	var env envelope
	if json.Unmarshal([]byte(payload), &env) != nil {
		return nil
	}
	return []envelope{env}
}

// listen keeps a LISTEN connection open, reconnecting with backoff.
func (b *PGBridge) listen(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := b.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("events bridge: listen connection lost; reconnecting", "error", err, "wait", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

func (b *PGBridge) listenOnce(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.connURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()); err != nil {
		return err
	}
	// Anything sent while we were not listening is lost: re-read it all.
	b.local.Publish(PermStateTopic, Event{Name: Resync})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		for _, env := range decodeNotification(n.Payload) {
			if env.Origin == b.origin || env.Topic == "" {
				continue
			}
			b.local.Publish(env.Topic, Event{Name: env.Name, Data: env.Data})
		}
	}
}
