package events

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestUserTopic(t *testing.T) {
	if got := UserTopic("kp_abc"); got != "user:kp_abc" {
		t.Fatalf("UserTopic = %q, want user:kp_abc", got)
	}
	if AdminTopic != "admin" {
		t.Fatalf("AdminTopic = %q", AdminTopic)
	}
}

func TestPublishReachesTopicSubscribersOnly(t *testing.T) {
	b := NewBroker()
	alice, unsubA := b.Subscribe(UserTopic("alice"))
	defer unsubA()
	alice2, unsubA2 := b.Subscribe(UserTopic("alice"))
	defer unsubA2()
	bob, unsubB := b.Subscribe(UserTopic("bob"))
	defer unsubB()

	want := Event{Name: "claims-changed", Data: "-export:reports"}
	b.Publish(UserTopic("alice"), want)

	for i, ch := range []<-chan Event{alice, alice2} {
		select {
		case got := <-ch:
			if got != want {
				t.Errorf("subscriber %d got %+v, want %+v", i, got, want)
			}
		default:
			t.Errorf("subscriber %d got nothing", i)
		}
	}
	select {
	case got := <-bob:
		t.Errorf("bob got %+v, want nothing", got)
	default:
	}
	b.Publish("nobody", want) // no subscribers: a no-op
}

func TestUnsubscribeClosesAndIsIdempotent(t *testing.T) {
	b := NewBroker()
	ch, unsub := b.Subscribe(AdminTopic)
	if n := b.Subscribers(AdminTopic); n != 1 {
		t.Fatalf("Subscribers = %d, want 1", n)
	}
	unsub()
	unsub()
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after unsubscribe")
	}
	if n := b.Subscribers(AdminTopic); n != 0 {
		t.Fatalf("Subscribers = %d after unsubscribe, want 0", n)
	}
	b.Publish(AdminTopic, Event{Name: "x"}) // must not panic on a closed channel
}

func TestSlowSubscriberDropsOldest(t *testing.T) {
	b := NewBroker(WithBuffer(2))
	ch, unsub := b.Subscribe("t")
	defer unsub()
	for i := range 5 {
		b.Publish("t", Event{Name: "n", Data: fmt.Sprint(i)})
	}
	if d := b.Dropped(); d != 3 {
		t.Errorf("Dropped = %d, want 3", d)
	}
	for _, want := range []string{"3", "4"} {
		if got := <-ch; got.Data != want {
			t.Errorf("got %q, want %q (newest kept)", got.Data, want)
		}
	}
}

func TestPublishNeverBlocksWithoutReaders(t *testing.T) {
	b := NewBroker(WithBuffer(1))
	for range 50 {
		_, unsub := b.Subscribe("t")
		defer unsub()
	}
	for range 1000 {
		b.Publish("t", Event{Name: "n"}) // would deadlock if Publish blocked
	}
	if b.Dropped() == 0 {
		t.Error("expected drops")
	}
}

func TestConcurrentUse(t *testing.T) {
	b := NewBroker(WithBuffer(4))
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			for i := range 500 {
				b.Publish(UserTopic(fmt.Sprint(i%4)), Event{Name: "p", Data: fmt.Sprint(p)})
				b.Publish(AdminTopic, Event{Name: "a"})
			}
		})
	}
	for s := range 16 {
		wg.Go(func() {
			for range 100 {
				ch, unsub := b.Subscribe(UserTopic(fmt.Sprint(s % 4)))
				select {
				case <-ch:
				default:
				}
				unsub()
			}
		})
	}
	wg.Wait()
	for i := range 4 {
		if n := b.Subscribers(UserTopic(fmt.Sprint(i))); n != 0 {
			t.Errorf("topic %d has %d subscribers left", i, n)
		}
	}
}

// TestNoGoroutineLeak subscribes and unsubscribes many readers, each in its
// own goroutine like an SSE handler, and checks the goroutine count settles
// back to where it started.
func TestNoGoroutineLeak(t *testing.T) {
	b := NewBroker()
	before := runtime.NumGoroutine()

	for round := range 20 {
		var wg sync.WaitGroup
		unsubs := make([]func(), 50)
		for i := range unsubs {
			ch, unsub := b.Subscribe(UserTopic(fmt.Sprint(i % 5)))
			unsubs[i] = unsub
			wg.Go(func() {
				for range ch { // ends when unsubscribe closes the channel
				}
			})
		}
		for i := range 5 {
			b.Publish(UserTopic(fmt.Sprint(i)), Event{Name: "r", Data: fmt.Sprint(round)})
		}
		for _, u := range unsubs {
			u()
		}
		wg.Wait()
	}

	// Give exited goroutines a moment to be reaped; no speed is asserted.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines: %d before, %d after", before, after)
	}
	for i := range 5 {
		if n := b.Subscribers(UserTopic(fmt.Sprint(i))); n != 0 {
			t.Errorf("topic %d has %d subscribers left", i, n)
		}
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			br := NewBroker()
			var wg sync.WaitGroup
			unsubs := make([]func(), n)
			for i := range n {
				ch, unsub := br.Subscribe("t")
				unsubs[i] = unsub
				wg.Go(func() {
					for range ch {
					}
				})
			}
			e := Event{Name: "claims-changed", Data: "-export:reports"}
			b.ReportAllocs()
			for b.Loop() {
				br.Publish("t", e)
			}
			b.StopTimer()
			for _, u := range unsubs {
				u()
			}
			wg.Wait()
		})
	}
}
