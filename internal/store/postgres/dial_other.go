//go:build !linux

package postgres

import (
	"syscall"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT is not available: the TCP keepalives and
// the call timeout bound what a partition costs.
func setUserTimeout(syscall.RawConn, time.Duration) error { return nil }
