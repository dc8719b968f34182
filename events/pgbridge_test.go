package events

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// openBridgeDB opens the Postgres database named by
// PERMSYNC_TEST_DATABASE_URL (skipping the test without one), with a context
// and pool that end with the test.
func openBridgeDB(t *testing.T) (context.Context, *sql.DB, string) {
	t.Helper()
	dsn := os.Getenv("PERMSYNC_TEST_DATABASE_URL")
	if dsn == "" {
		t.Skip("PERMSYNC_TEST_DATABASE_URL not set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return ctx, db, dsn
}

// TestPGBridgeCarriesEventsBetweenReplicas runs two bridges on one database
// (two replicas): an event published on one reaches the other's subscribers
// once, and is not delivered twice locally. It needs Postgres:
// PERMSYNC_TEST_DATABASE_URL.
func TestPGBridgeCarriesEventsBetweenReplicas(t *testing.T) {
	ctx, db, dsn := openBridgeDB(t)
	replica := func() (*Broker, *PGBridge) {
		b := NewBroker()
		br, err := NewPGBridge(ctx, b, db, dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		go br.Run(ctx)
		return b, br
	}
	brokerA, bridgeA := replica()
	brokerB, _ := replica()
	permB, unsubPB := brokerB.Subscribe(PermStateTopic)
	defer unsubPB()
	// Each bridge publishes a Resync once it listens: wait for B's.
	select {
	case e := <-permB:
		if e.Name != Resync {
			t.Fatalf("first event on B = %+v; want resync", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bridge B never listened")
	}
	local, unsubA := brokerA.Subscribe(UserTopic("kp_x"))
	defer unsubA()
	remote, unsubB := brokerB.Subscribe(UserTopic("kp_x"))
	defer unsubB()

	// Bridge A may still be connecting; publish until B hears one.
	want := Event{Name: "claims-changed", Data: `{"stage":"tombstoned"}`}
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	bridgeA.Publish(UserTopic("kp_x"), want)
	sent++
	for got := false; !got; {
		select {
		case e := <-remote:
			if e != want {
				t.Fatalf("B got %+v; want %+v", e, want)
			}
			got = true
		case <-tick.C:
			bridgeA.Publish(UserTopic("kp_x"), want)
			sent++
		case <-deadline:
			t.Fatal("event never reached replica B")
		}
	}
	time.Sleep(300 * time.Millisecond) // let A's own notification come back
	if n := len(local); n != sent {
		t.Fatalf("A's local subscriber got %d events for %d publishes: own notifications must be skipped", n, sent)
	}
}

// TestPGBridgeCarriesABurst publishes one event to each of 3,000 users' topics
// at once, as a fan-out does, and expects every one on the other replica:
// queued events share notifications, so the queue does not overflow.
func TestPGBridgeCarriesABurst(t *testing.T) {
	ctx, db, dsn := openBridgeDB(t)
	brokerB := NewBroker()
	bridgeB, err := NewPGBridge(ctx, brokerB, db, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	permB, unsubPB := brokerB.Subscribe(PermStateTopic)
	defer unsubPB()
	go bridgeB.Run(ctx)
	select {
	case <-permB: // B listens
	case <-time.After(10 * time.Second):
		t.Fatal("bridge B never listened")
	}
	const users = 3000
	got := make(chan string, users)
	for i := range users {
		topic := UserTopic(fmt.Sprintf("kp_burst_%d", i))
		ch, unsub := brokerB.Subscribe(topic)
		defer unsub()
		go func() {
			for e := range ch {
				got <- topic + " " + e.Name
			}
		}()
	}
	bridgeA, err := NewPGBridge(ctx, NewBroker(), db, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A sends without listening: Publish queues, send drains.
	go bridgeA.send(ctx)
	for i := range users {
		bridgeA.Publish(UserTopic(fmt.Sprintf("kp_burst_%d", i)), Event{Name: "claims-changed", Data: `{"stage":"tombstoned","permission_key":"export:reports"}`})
	}
	seen := map[string]bool{}
	deadline := time.After(30 * time.Second)
	for len(seen) < users {
		select {
		case s := <-got:
			if seen[s] {
				t.Fatalf("%s delivered twice", s)
			}
			seen[s] = true
		case <-deadline:
			t.Fatalf("replica B got %d of %d events", len(seen), users)
		}
	}
}

func TestBatchAndDecode(t *testing.T) {
	b := &PGBridge{origin: "o1", out: make(chan envelope, queueSize)}
	data := strings.Repeat("x", 100)
	for i := range 200 {
		b.out <- envelope{Origin: "o1", Topic: fmt.Sprintf("user:%d", i), Name: "claims-changed", Data: data}
	}
	var all []envelope
	first := <-b.out
	for batches := 0; ; batches++ {
		payload, held := b.batch(first)
		if len(payload) > maxNotifyPayload {
			t.Fatalf("payload of %d bytes; the limit is %d", len(payload), maxNotifyPayload)
		}
		envs := decodeNotification(string(payload))
		if len(envs) < 2 {
			t.Fatalf("batch %d carries %d events; want many", batches, len(envs))
		}
		all = append(all, envs...)
		if held == nil {
			break
		}
		first = *held
	}
	if len(all) != 200 {
		t.Fatalf("decoded %d events; want 200", len(all))
	}
	for i, e := range all {
		if e.Topic != fmt.Sprintf("user:%d", i) || e.Data != data {
			t.Fatalf("event %d = %+v; out of order or changed", i, e)
		}
	}
	// One event too big for a notification becomes a resync.
	payload, held := b.batch(envelope{Origin: "o1", Topic: "user:big", Name: "x", Data: strings.Repeat("y", maxNotifyPayload)})
	if envs := decodeNotification(string(payload)); held != nil || len(envs) != 1 || envs[0].Name != Resync || envs[0].Topic != PermStateTopic {
		t.Fatalf("oversized event sent as %s", payload)
	}
	// A replica of an earlier version sends one envelope per notification.
	if envs := decodeNotification(`{"o":"o2","t":"user:1","n":"claims-changed"}`); len(envs) != 1 || envs[0].Topic != "user:1" {
		t.Fatalf("single envelope decoded as %+v", envs)
	}
	if envs := decodeNotification(`not json`); len(envs) != 0 {
		t.Fatalf("garbage decoded as %+v", envs)
	}
}
