//go:build linux

package postgres

import (
	"crypto/tls"
	"net"
	"syscall"
	"testing"

	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// TestConnectionsHaveUserTimeout: the pool's TCP connections carry TCP_USER_TIMEOUT, so that a
// partition fails every call on them, reads included, within tcpTimeout.
func TestConnectionsHaveUserTimeout(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	s := openTest(t, pgtest.NewDatabase(t))
	conn, err := s.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	netConn := conn.Conn().PgConn().Conn()
	if c, ok := netConn.(*tls.Conn); ok {
		netConn = c.NetConn()
	}
	tcp, ok := netConn.(*net.TCPConn)
	if !ok {
		t.Skipf("the test database is not reached over TCP (%T)", netConn)
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		got, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeoutOption)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if want := int(tcpTimeout.Milliseconds()); got != want {
		t.Errorf("TCP_USER_TIMEOUT = %d ms, want %d", got, want)
	}
}
