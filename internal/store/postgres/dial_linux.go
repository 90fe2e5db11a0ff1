//go:build linux

package postgres

import (
	"errors"
	"syscall"
	"time"
)

// tcpUserTimeoutOption is TCP_USER_TIMEOUT of <linux/tcp.h> (the syscall package lacks it).
const tcpUserTimeoutOption = 0x12

// setUserTimeout sets TCP_USER_TIMEOUT on a socket: data that the peer has not acknowledged
// within d ends the connection, as a network partition otherwise would only after the kernel's
// retransmissions (about a quarter of an hour).
func setUserTimeout(c syscall.RawConn, d time.Duration) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeoutOption, int(d.Milliseconds()))
	})
	return errors.Join(err, serr)
}
