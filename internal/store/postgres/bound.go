package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// boundConn is a connection of the pool whose I/O fails once its attempt's time is up: a
// connection that a network fault froze (the peer neither answers nor closes it) would
// otherwise block its caller until TCP gives up, which takes minutes. Write transactions run on
// one (see Store.acquire); release returns it to the pool, or closes it when the time was up.
type boundConn struct {
	*pgxpool.Conn // the connection; Conn.Conn() is its pgx.Conn
	limit         time.Duration
	timer         *time.Timer
	fired         atomic.Bool
}

// acquire takes a connection from the pool for an attempt that may last limit (0: no bound),
// the wait for the connection included.
func (s *Store) acquire(ctx context.Context, limit time.Duration) (*boundConn, error) {
	if limit <= 0 {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		return &boundConn{Conn: conn}, nil
	}
	deadline := time.Now().Add(limit)
	actx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := s.pool.Acquire(actx)
	if err != nil {
		return nil, err
	}
	b := &boundConn{Conn: conn, limit: limit}
	netConn := conn.Conn().PgConn().Conn()
	b.timer = time.AfterFunc(time.Until(deadline), func() {
		b.fired.Store(true)
		// Setting a deadline is safe while another goroutine uses the connection: its
		// blocked read or write fails at once, and pgconn closes the connection.
		_ = netConn.SetDeadline(time.Now())
	})
	return b, nil
}

// timedOut returns err, marked as a deadline that passed when the attempt's time ran out.
func (b *boundConn) timedOut(err error) error {
	if err == nil || !b.fired.Load() {
		return err
	}
	return fmt.Errorf("no answer from the database within %s (%w): %w", b.limit, context.DeadlineExceeded, err)
}

// release gives the connection back to the pool; one whose time ran out is closed first, so
// that the pool replaces it (its deadline has passed: it cannot be used again).
func (b *boundConn) release() {
	if b.timer != nil && !b.timer.Stop() {
		_ = b.Conn.Conn().Close(context.Background())
	}
	b.Conn.Release()
}
