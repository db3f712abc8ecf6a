package redistest

import (
	"bytes"
	"net"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Proxy is a TCP proxy on loopback to a node, for tests that interfere with what passes between
// the node and whoever connects through it (clients, or a replica following its master). Every
// chunk read on either side goes to the relay of its connection, which decides what is passed on.
type Proxy struct {
	addr string
}

// Pipe is one connection through a [Proxy]: Client is the side that connected to the proxy,
// Upstream the proxy's own connection to the node.
type Pipe struct {
	Client, Upstream net.Conn
}

// Pass writes b on to where it was going: to the node when up, else to the client.
func (p *Pipe) Pass(up bool, b []byte) error {
	dst := p.Client
	if up {
		dst = p.Upstream
	}
	_, err := dst.Write(b)
	return err
}

// A Relay is given each chunk read on its Pipe, with up true for what the client sent and false
// for what the node sent, one direction at a time each (the two directions run concurrently). It
// passes the chunk on (see [Pipe.Pass]), holds it back or drops it; b is reused once it returns.
// An error closes the side the chunk came from.
type Relay func(up bool, b []byte) error

// StartProxy starts a proxy to upstream, which stops when the test ends. newRelay is called once
// per connection, before any of its bytes flow.
func StartProxy(t testing.TB, upstream string, newRelay func(*Pipe) Relay) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool // a connection accepted as the test ends is closed at once, not kept
	)
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	pump := func(relay Relay, up bool, src, dst net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				_ = dst.Close()
				return
			}
			if err := relay(up, buf[:n]); err != nil {
				_ = src.Close()
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = c.Close()
				continue
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				_ = c.Close()
				_ = u.Close()
				return
			}
			conns = append(conns, c, u)
			mu.Unlock()
			p := &Pipe{Client: c, Upstream: u}
			relay := newRelay(p)
			wg.Add(2)
			go pump(relay, true, c, u)
			go pump(relay, false, u, c)
		}
	}()
	return &Proxy{addr: ln.Addr().String()}
}

// Addr returns the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.addr }

// Silent listens on addr (host:0 for any port) and accepts connections that it never answers,
// like a host that hangs once the TCP handshake is done, until the test ends. It returns its
// address and a channel that gets a value for each connection it accepts (dropped when full).
func Silent(t testing.TB, addr string) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("redistest: listen on %s: %v", addr, err)
	}
	accepted := make(chan struct{}, 16)
	var (
		conns []net.Conn // the accept loop's own until done is closed
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String(), accepted
}

// HoldBack returns a client of node whose requests can be held back (see [Gate]): a test uses it
// to make a request reach one node late, for example a release that reaches the others at once.
func HoldBack(t testing.TB, node *Node) (*redis.Client, *Gate) {
	t.Helper()
	g := &Gate{}
	p := StartProxy(t, node.Addr(), func(pipe *Pipe) Relay {
		h := &heldPipe{pipe: pipe}
		g.mu.Lock()
		g.pipes = append(g.pipes, h)
		g.mu.Unlock()
		return func(up bool, b []byte) error {
			if !up {
				return pipe.Pass(false, b) // replies flow as usual
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.held {
				h.pending = append(h.pending, bytes.Clone(b))
				return nil
			}
			return pipe.Pass(true, b)
		}
	})
	opts := node.Options()
	opts.Addr = p.Addr()
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c, g
}

// Gate holds back the requests of a [HoldBack] client while it is shut.
type Gate struct {
	mu    sync.Mutex
	held  bool
	pipes []*heldPipe
}

type heldPipe struct {
	pipe    *Pipe
	pending [][]byte
}

// Hold holds back every request sent from now on.
func (g *Gate) Hold() {
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
}

// Release sends the held-back requests on, in the order they were sent, and lets the next ones
// through.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = false
	for _, h := range g.pipes {
		for _, b := range h.pending {
			_ = h.pipe.Pass(true, b)
		}
		h.pending = nil
	}
}
