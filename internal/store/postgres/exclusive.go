package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrDatabaseInUse is returned by Open when the database is in use in a way that excludes this
// store: Options.Exclusive while another store has it open as a single server or as a node of
// a cluster, or Options.Member while a single server has it.
var ErrDatabaseInUse = errors.New("another prunner server uses this database")

// nodeLockKey is the key of the session advisory lock that says who uses the database ("prunner
// node"): a single server (Options.Exclusive) holds it exclusively, each node of a cluster
// (Options.Member) holds it shared, so that the two kinds never use one database at once.
const nodeLockKey int64 = 0x7072756e6e6f6465

// lockCheck is how often the lock's connection is checked: when it was lost (a restart of
// PostgreSQL ends every session, and the lock with it) the lock is taken again.
const lockCheck = 5 * time.Second

// dbLock holds the node lock for one store: a session advisory lock on a connection of its own,
// outside the pool, held until release. PostgreSQL releases it when the session ends, so a
// server that dies (kill -9, power loss) frees the database as soon as its connection is gone.
//
// A single server needs it because its start-up ends every running job of the database
// (RecoverRunning), which is only right when no other server uses it; the nodes of a cluster
// recover per node and lease, and only keep a single server out.
type dbLock struct {
	cfg    *pgx.ConnConfig
	shared bool
	stop   chan struct{}
	done   sync.WaitGroup

	mu   sync.Mutex
	conn *pgx.Conn
}

// lockDatabase takes the node lock (shared for a member of a cluster) on a new connection to
// cfg's database, or fails with ErrDatabaseInUse at once when a session holds it in a way that
// excludes this one. It keeps the lock from then on: see keep.
func lockDatabase(ctx context.Context, cfg *pgx.ConnConfig, shared bool) (*dbLock, error) {
	l := &dbLock{cfg: cfg, shared: shared, stop: make(chan struct{})}
	conn, err := l.take(ctx)
	if err != nil {
		return nil, err
	}
	l.conn = conn
	l.done.Go(l.keep)
	return l, nil
}

// take connects and takes the lock.
func (l *dbLock) take(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	try := `SELECT pg_try_advisory_lock($1)`
	if l.shared {
		try = `SELECT pg_try_advisory_lock_shared($1)`
	}
	var got bool
	if err := conn.QueryRow(ctx, try, nodeLockKey).Scan(&got); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("take the node lock: %w", err)
	}
	if !got {
		conn.Close(context.WithoutCancel(ctx))
		return nil, l.inUse()
	}
	return conn, nil
}

// inUse is the error of a lock that another session holds, saying what to do.
func (l *dbLock) inUse() error {
	if l.shared {
		return fmt.Errorf("%w without --node-id, alone: stop it, or start it with a --node-id of its own so that it joins the cluster", ErrDatabaseInUse)
	}
	return fmt.Errorf("%w: give this server a --node-id (and the others too) to run them as nodes of one cluster, or give it a database of its own", ErrDatabaseInUse)
}

// keep checks the lock's connection every lockCheck and, when it was lost (PostgreSQL
// restarted, the network failed), takes the lock again on a new one. When another server took
// the database meanwhile that is logged as an error: two kinds of servers now share it.
func (l *dbLock) keep() {
	t := time.NewTicker(lockCheck)
	defer t.Stop()
	lost := false
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockCheck)
		l.mu.Lock()
		if l.conn != nil && l.conn.Ping(ctx) != nil {
			l.conn.Close(ctx)
			l.conn = nil
		}
		if l.conn == nil {
			conn, err := l.take(ctx)
			switch {
			case err == nil:
				l.conn = conn
				if lost {
					slog.Info("database lock taken again", "component", "store")
				}
				lost = false
			case errors.Is(err, ErrDatabaseInUse):
				slog.Error("the database lock was lost (its connection ended) and another server took the database meanwhile", "component", "store", "error", err)
				lost = true
			default:
				if !lost {
					slog.Warn("the database lock's connection was lost; taking the lock again when the database answers", "component", "store", "error", err)
				}
				lost = true
			}
		}
		l.mu.Unlock()
		cancel()
	}
}

// release releases the lock and ends its session. The explicit unlock makes the database free
// when release returns: the server ends a closed session's locks only a moment later.
func (l *dbLock) release() {
	if l == nil {
		return
	}
	close(l.stop)
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock := `SELECT pg_advisory_unlock($1)`
	if l.shared {
		unlock = `SELECT pg_advisory_unlock_shared($1)`
	}
	_, _ = l.conn.Exec(ctx, unlock, nodeLockKey)
	l.conn.Close(ctx)
}
