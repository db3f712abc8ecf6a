package chaos

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy on loopback between one client and one Redis node, which injects network
// faults on that link: latency with jitter, connection resets, a black hole (connections are
// accepted but nothing is forwarded), and a cut (connections are refused, those open are reset).
// Each (client, node) pair gets its own Proxy, so a fault can hit one client's view of a node.
//
// Its methods are safe for concurrent use. Close stops it and waits for every goroutine it
// started: one accepting, and two per connection.
type Proxy struct {
	upstream string
	ln       net.Listener
	done     chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex
	links   map[*link]struct{}
	latency time.Duration
	jitter  time.Duration
	// holes and cuts count the faults that turned the black hole or the cut on: faults that
	// overlap on one proxy each undo only their own.
	holes  int
	cuts   int
	closed bool
	rng    *rand.Rand
}

type link struct {
	client, server net.Conn
	once           sync.Once
	// dropped is set when the black hole swallowed bytes: the link's request/reply stream is then
	// out of step, so healing resets it rather than forward the rest.
	dropped atomic.Bool
}

// NewProxy listens on a free loopback port and forwards every connection to upstream. seed seeds
// the jitter.
func NewProxy(upstream string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{upstream: upstream, ln: ln, done: make(chan struct{}), links: map[*link]struct{}{},
		rng: rand.New(rand.NewPCG(seed, 0x70))}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every chunk sent from the client to the node by latency plus a uniform random
// extra in [0, jitter). Zero for both heals it.
func (p *Proxy) SetLatency(latency, jitter time.Duration) {
	p.mu.Lock()
	p.latency, p.jitter = latency, jitter
	p.mu.Unlock()
}

// SetBlackhole turns the black hole on or off. While on, the proxy still accepts connections and
// reads from both sides but forwards nothing, like a network that drops packets. Turning it off
// resets the connections whose bytes it dropped. Each on needs its own off: the hole stays while
// another fault still wants it.
func (p *Proxy) SetBlackhole(on bool) {
	p.mu.Lock()
	if on {
		p.holes++
	} else {
		p.holes = max(p.holes-1, 0)
	}
	var stale []*link
	if p.holes == 0 {
		for l := range p.links {
			if l.dropped.Load() {
				stale = append(stale, l)
			}
		}
	}
	p.mu.Unlock()
	for _, l := range stale {
		l.reset()
	}
}

// SetCut cuts the client off from the node (on) or reconnects it (off). While cut, new connections
// are reset at once and the open ones are reset now: the client sees the node as down. Each on
// needs its own off: the cut stays while another fault still wants it.
func (p *Proxy) SetCut(on bool) {
	p.mu.Lock()
	if on {
		p.cuts++
	} else {
		p.cuts = max(p.cuts-1, 0)
	}
	p.mu.Unlock()
	if on {
		p.Reset()
	}
}

// Reset resets (RST) every open connection; new ones are accepted as usual.
func (p *Proxy) Reset() {
	p.mu.Lock()
	open := make([]*link, 0, len(p.links))
	for l := range p.links {
		open = append(open, l)
	}
	p.mu.Unlock()
	for _, l := range open {
		l.reset()
	}
}

// Heal clears every fault, whoever set it.
func (p *Proxy) Heal() {
	p.SetLatency(0, 0)
	p.mu.Lock()
	p.cuts, p.holes = 0, 1
	p.mu.Unlock()
	p.SetBlackhole(false)
}

// Close stops accepting, resets every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	err := p.ln.Close()
	p.Reset()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		refuse := p.cuts > 0 || p.closed
		p.mu.Unlock()
		if refuse {
			resetConn(c)
			continue
		}
		s, err := net.DialTimeout("tcp", p.upstream, time.Second)
		if err != nil {
			resetConn(c) // the node is down: the client sees it as a refused connection
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		if p.closed || p.cuts > 0 {
			p.mu.Unlock()
			l.reset()
			continue
		}
		p.links[l] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pump(l, c, s, true)
		go p.pump(l, s, c, false)
	}
}

// pump copies src to dst until either side fails, then closes both.
func (p *Proxy) pump(l *link, src, dst net.Conn, toServer bool) {
	defer p.wg.Done()
	defer p.drop(l)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hole := p.holes > 0
			delay := time.Duration(0)
			if toServer && (p.latency > 0 || p.jitter > 0) {
				delay = p.latency
				if p.jitter > 0 {
					delay += time.Duration(p.rng.Int64N(int64(p.jitter)))
				}
			}
			p.mu.Unlock()
			if hole {
				l.dropped.Store(true)
				continue
			}
			if delay > 0 && !p.sleep(delay) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.done:
		return false
	}
}

func (p *Proxy) drop(l *link) {
	l.reset()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// reset closes both sides of the link with RST, once.
func (l *link) reset() {
	l.once.Do(func() {
		resetConn(l.client)
		resetConn(l.server)
	})
}

func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
