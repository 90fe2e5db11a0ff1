package e2e

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// tcpProxy forwards the TCP connections it accepts on 127.0.0.1 to a target address, until the
// test cuts the path: then the connections open through it are closed, and new ones are either
// refused (accepted and closed at once, as a server that is down) or blackholed (accepted and
// never answered, as a network that drops the packets), until Restore.
type tcpProxy struct {
	t      *testing.T
	target string
	ln     net.Listener

	mu    sync.Mutex
	state proxyState
	// open holds both ends of every connection the proxy holds: forwarded or blackholed.
	open map[net.Conn]struct{}
	wg   sync.WaitGroup
}

type proxyState int

const (
	forwarding proxyState = iota
	refusing
	blackholing
)

// newTCPProxy starts a proxy to target; it is closed when the test ends.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, target: target, ln: ln, open: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// proxiedURL returns a database URL whose connections go through a new proxy to the URL's own
// host and port.
func proxiedURL(t *testing.T, databaseURL string) (string, *tcpProxy) {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	p := newTCPProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	return u.String(), p
}

// Cut closes every connection through the proxy and refuses new ones until Restore.
func (p *tcpProxy) Cut() { p.cut(refusing) }

// Blackhole closes every connection through the proxy and holds new ones without answering
// until Restore.
func (p *tcpProxy) Blackhole() { p.cut(blackholing) }

func (p *tcpProxy) cut(state proxyState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state = state
	p.closeAllLocked()
}

// Restore forwards new connections again; the ones held while blackholing are closed.
func (p *tcpProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == blackholing {
		p.closeAllLocked()
	}
	p.state = forwarding
}

func (p *tcpProxy) closeAllLocked() {
	for c := range p.open {
		c.Close()
		delete(p.open, c)
	}
}

// close stops accepting, closes every connection and waits for the proxy's goroutines.
func (p *tcpProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closeAllLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.mu.Lock()
		state := p.state
		switch state {
		case refusing:
			c.Close()
		case blackholing:
			p.open[c] = struct{}{}
		}
		p.mu.Unlock()
		if state == forwarding {
			p.wg.Add(1)
			go p.forward(c)
		}
	}
}

// forward connects c to the target and copies both ways until either side ends or the proxy
// closes them.
func (p *tcpProxy) forward(c net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.state != forwarding { // cut while dialling
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.open[c], p.open[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.open, c)
	delete(p.open, up)
	p.mu.Unlock()
}
