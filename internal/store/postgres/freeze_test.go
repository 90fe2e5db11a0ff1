package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// freezer forwards TCP connections to a target until frozen: then nothing more is forwarded
// either way and nothing is closed, as a network that drops every packet.
type freezer struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	frozen bool
	thawed chan struct{} // closed when unfrozen
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{target: target, ln: ln, thawed: make(chan struct{})}
	close(f.thawed)
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() {
		ln.Close()
		f.setFrozen(false)
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *freezer) setFrozen(frozen bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if frozen == f.frozen {
		return
	}
	f.frozen = frozen
	if frozen {
		f.thawed = make(chan struct{})
	} else {
		close(f.thawed)
	}
}

// wait blocks while frozen.
func (f *freezer) wait() {
	f.mu.Lock()
	ch := f.thawed
	f.mu.Unlock()
	<-ch
}

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(up, c)
		go f.pipe(c, up)
	}
}

// pipe copies src to dst, holding what it read while frozen.
func (f *freezer) pipe(dst, src net.Conn) {
	defer f.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		f.wait()
		n, err := src.Read(buf)
		if n > 0 {
			f.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}

// TestListenNoticesFrozenConnection: a listening connection that a network fault froze (no
// answer, nothing closed) is noticed by the periodic check, reported lost, and replaced once the
// network is back.
func TestListenNoticesFrozenConnection(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, u.Host)
	u.Host = f.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	s := openTest(t, u.String())
	s.listenCheck = 200 * time.Millisecond

	got := make(chan store.Wakeup, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Listen(ctx, func(w store.Wakeup) { got <- w })
	}()
	defer func() { cancel(); f.setFrozen(false); <-done }()
	waitWakeup(t, got, store.WakeResync)

	f.setFrozen(true)
	waitWakeup(t, got, store.WakeLost)
	f.setFrozen(false)
	waitWakeup(t, got, store.WakeResync)
}

// waitWakeup waits up to 30 s for a wake-up of kind; others are skipped.
func waitWakeup(t *testing.T, got <-chan store.Wakeup, kind store.WakeKind) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case w := <-got:
			if w.Kind == kind {
				return
			}
		case <-deadline:
			t.Fatalf("no wake-up of kind %d within 30 s", kind)
		}
	}
}

// TestWriteOnFrozenConnection: a write on connections that a network fault froze fails with
// store.ErrUnavailable (bounded by the call timeout or the connect timeout), and writes succeed
// again once the network is back.
func TestWriteOnFrozenConnection(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, u.Host)
	u.Host = f.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	s, err := OpenWith(t.Context(), u.String(), Options{CallTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer f.setFrozen(false) // before Close: its goodbye goes through
	d := clusterDefinition("p", 0, nil)
	admit := func(id string) error {
		_, err := s.Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, id), Definition: d, Now: time.Now()})
		return err
	}
	if err := admit("before"); err != nil {
		t.Fatal(err)
	}
	f.setFrozen(true)
	if err := admit("frozen"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Admit() on a frozen network = %v, want ErrUnavailable", err)
	}
	f.setFrozen(false)
	if err := admit("after"); err != nil {
		t.Errorf("Admit() after the network is back: %v", err)
	}
}
