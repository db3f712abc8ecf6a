package engine

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A waiter leaving its channel, the receive goroutine's wake-ups, and a waiter on a channel already
// subscribed never wait for a node: while a SUBSCRIBE is stuck on a node that accepted the
// connection and answers nothing, remove, wake and that subscribe return at once. (An acquire
// leaves its channel after its grant, on its way back to the caller, so a wait there ate the
// grant's validity: a chaos soak saw a permit handed out with its validity already over, with a
// node hung.)
func TestLeavingAChannelDoesNotWaitForAHungNode(t *testing.T) {
	addr, accepted := hungNode(t)
	const hang = 1500 * time.Millisecond // how long the SUBSCRIBE stays stuck: ample for remove and wake
	client := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: hang, WriteTimeout: hang,
		DialTimeout: hang, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	s := newSubscriber(client, hang)
	defer s.close()

	first := &waiter{channel: "first", token: "a", wake: make(chan struct{}, 1)}
	s.add(first)
	subscribed := make(chan bool, 1)
	go func() { subscribed <- s.subscribe(first) }()
	select {
	case <-accepted: // the subscription's connection is open, and its handshake unanswered
	case <-time.After(hang):
		t.Fatal("the subscriber never connected to the hung node")
	}

	second := &waiter{channel: "second", token: "b", wake: make(chan struct{}, 1)}
	s.add(second)
	// A second waiter on the channel being subscribed does not queue behind its SUBSCRIBE.
	again := &waiter{channel: "first", token: "c", wake: make(chan struct{}, 1)}
	s.add(again)
	left := make(chan struct{})
	go func() {
		defer close(left)
		s.remove(second)
		s.wake("first", "")
		s.subscribe(again)
		s.remove(again)
	}()
	select {
	case <-left:
	case <-subscribed:
		t.Fatal("remove, wake or an already-subscribed channel's subscribe waited for a SUBSCRIBE to a hung node")
	}
	select {
	case <-subscribed:
		t.Error("the SUBSCRIBE to the hung node returned before the others did: the test shows nothing")
	default:
		<-subscribed
	}
}

// hungNode listens on loopback, accepts every connection, holds it open and answers nothing: a
// node whose process is stopped, as the kernel still completes the handshake. accepted is
// signalled once per connection.
func hungNode(t *testing.T) (addr string, accepted chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = make(chan struct{}, 16)
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), accepted
}
