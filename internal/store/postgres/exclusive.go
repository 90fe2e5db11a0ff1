package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrDatabaseInUse is returned by Open with Options.Exclusive when another store holds the
// database.
var ErrDatabaseInUse = errors.New("another prunner node uses this database")

// nodeLockKey is the key of the session advisory lock that an exclusive store holds for its
// lifetime ("prunner node").
const nodeLockKey int64 = 0x7072756e6e6f6465

// exclusive holds the database for one store: a session advisory lock on a connection of its
// own, outside the pool, held until Close. PostgreSQL releases it when the session ends, so a
// node that dies (kill -9, power loss) frees the database as soon as its connection is gone.
//
// It exists because the cluster semantics (node leases, fencing, per-node recovery) are not
// built yet: RecoverRunning at start-up ends every running job of the database, which is only
// right when one node uses it.
type exclusive struct {
	conn *pgx.Conn
}

// lockExclusive takes the node lock on a new connection to cfg's database, or fails with
// ErrDatabaseInUse at once when another session holds it.
func lockExclusive(ctx context.Context, cfg *pgx.ConnConfig) (*exclusive, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, nodeLockKey).Scan(&got); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("take the node lock: %w", err)
	}
	if !got {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%w (several nodes on one database are not supported yet: give each node a database of its own)", ErrDatabaseInUse)
	}
	return &exclusive{conn: conn}, nil
}

// release releases the lock and ends its session. The explicit unlock makes the database free
// when release returns: the server ends a closed session's locks only a moment later.
func (e *exclusive) release() {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = e.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, nodeLockKey)
	e.conn.Close(ctx)
}
