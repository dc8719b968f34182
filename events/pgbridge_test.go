package events

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// TestPGBridgeCarriesEventsBetweenReplicas runs two bridges on one database
// (two replicas): an event published on one reaches the other's subscribers
// once, and is not delivered twice locally. It needs Postgres:
// PERMSYNC_TEST_DATABASE_URL.
func TestPGBridgeCarriesEventsBetweenReplicas(t *testing.T) {
	dsn := os.Getenv("PERMSYNC_TEST_DATABASE_URL")
	if dsn == "" {
		t.Skip("PERMSYNC_TEST_DATABASE_URL not set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
