package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prunner-dev/prunner/internal/store"
)

// unavailableError marks an error as store.ErrUnavailable and keeps the original chain, so that
// callers can still ask for its cause (context.DeadlineExceeded, a *pgconn.PgError).
type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{store.ErrUnavailable, e.err} }

// classify wraps err in store.ErrUnavailable when it is a connection-level failure (see
// unreachable) and returns every other error (nil included) as it is, a lost commit too (see
// commitLostError).
func classify(err error) error {
	var lost *commitLostError
	if err == nil || errors.Is(err, store.ErrUnavailable) || errors.As(err, &lost) || !unreachable(err) {
		return err
	}
	return &unavailableError{err: err}
}

// commitLostError is the failure of a commit that was sent: the transaction may have been
// stored or not, so it is not store.ErrUnavailable (which promises that nothing was stored).
// The caller sees an internal error; a retry of an idempotent write finds out.
type commitLostError struct{ err error }

func (e *commitLostError) Error() string { return "commit: outcome unknown: " + e.err.Error() }
func (e *commitLostError) Unwrap() error { return e.err }

// unreachable reports whether err says that the database could not be reached or did not
// answer, rather than that it refused what was asked: a failed connect, a lost or timed-out
// connection, a deadline that passed while waiting for the server, or one of the server's
// errors of the classes 08 (connection exception) and 57P0x (the server is shutting down,
// crashed, or is not accepting connections yet). A cancelled context is the caller's decision,
// not the database's failure: it is not unavailable.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0")
	}
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	return errors.As(err, &connectErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.Timeout(err) ||
		pgconn.SafeToRetry(err)
}
