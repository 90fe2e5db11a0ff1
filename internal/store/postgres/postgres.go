// Package postgres is the PostgreSQL backend of prunner: a store.Store on one PostgreSQL
// database, through github.com/jackc/pgx/v5 (pgxpool). Several prunner nodes can share the
// database: every rule of the store contract is enforced by the database, not by memory of one
// process.
//
// Concurrency design (what the cluster of issue 12 builds on):
//
//   - Admission lock: the pipelines table has one row per pipeline with its running count.
//     Every transaction that changes a job's status (Admit, Claim, FinishJob, CancelQueued,
//     RecoverRunning) locks the row of the job's pipeline first (SELECT … FOR UPDATE), so the
//     admissions, claims and ends of one pipeline are serialised across all nodes, and the
//     running count read under the lock is exact: admission costs O(1) reads besides the wait
//     list questions, which partial indexes of the queued jobs answer.
//   - Claiming reads the ready jobs with FOR UPDATE SKIP LOCKED (under the pipeline lock nothing
//     else holds them today; a later per-partition lock can rely on it).
//   - A schedule's fire time is the primary key of schedule_firings: a firing inserts its record
//     first (ON CONFLICT DO NOTHING), so concurrent firings of one time on several nodes store
//     one job.
//   - Idempotency keys are a unique column; two nodes admitting the same key at once conflict
//     on it, and the loser's transaction is retried, which then finds the winner's job.
//   - Lock order: a schedule's state row (a firing), a node's row (fencing: FOR KEY SHARE by
//     a node's writes, FOR UPDATE by the reaper), a pipeline's row, job rows, task rows.
//     Every transaction that takes more than one of them takes them in this order
//     (RecoverRunning and the reaper take pipeline rows in name order), so that they cannot
//     deadlock one another. FinishAndClaim of a job of one pipeline with the claim of another takes two
//     pipeline rows in the caller's order; the runner claims the job's own pipeline, and a
//     deadlock would only cost a retry.
//   - Transactions that fail with a serialization failure, a deadlock or such a unique conflict
//     are retried a few times (see retryable).
//   - Migrations are embedded and applied at Open under a session advisory lock, so several
//     nodes starting at once apply them once.
//   - Wake-ups (store.Wakeups, notify.go): a registered store's transactions that leave work for
//     other nodes (a queued job; the end of a running job whose pipeline has queued jobs; a
//     cancel request) send pg_notify in the same transaction, so nodes hear of them on commit
//     only. They are an optimisation: nodes poll as well.
//
// Times are stored as bigint unix nanoseconds and JSON values as text (see the migration), so
// that what is read back equals what was stored, numbers included (json.Number).
//
// Nodes (store.Cluster, see cluster.go): a store registered as a node records itself as the
// owner of the jobs it starts, and fences every write about a job: the job must be its own
// under its current lease epoch, and the lease valid by the database's clock, or the write is
// refused with store.ErrLeaseLost. ReapLostNodes ends the jobs of nodes whose lease expired;
// RecoverNode ends a restarted node's own earlier jobs. A store that is not registered keeps
// the single-node semantics: RecoverRunning ends every running job of the database, which is
// only right while one node uses it (Options.Exclusive).
//
// Tests: the package's tests need a PostgreSQL server (see package pgtest for the URL and the
// environment variables: PRUNNER_TEST_DATABASE_URL, PRUNNER_TEST_POSTGRES=off to skip, CI=true
// to fail instead of skipping when none is reachable).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// migrationFiles holds the schema migrations, applied in file-name order at Open. Each file is
// one schema version (0001_… is version 1); the table prunner_schema records the applied one.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune Open. The zero value is the default configuration. The URL carries the rest:
// pgx's connection parameters (sslmode, connect_timeout, …), pgxpool's (pool_max_conns, …), and
// any other parameter as a run-time setting of the sessions (search_path=<schema> keeps the
// tables in a schema of their own).
type Options struct {
	// MaxConns is the size of the connection pool (default: pool_max_conns of the URL, else
	// pgxpool's default, at least 4).
	MaxConns int32
	// Exclusive makes the store the database's only user for its lifetime: Open fails with
	// ErrDatabaseInUse while another exclusive store or a member of a cluster has it open. A
	// server without a node ID opens its store exclusively.
	Exclusive bool
	// Member makes the store a member of a cluster for its lifetime: any number of members
	// share the database, but Open fails with ErrDatabaseInUse while an exclusive store has it
	// (and an exclusive Open fails while members have it). The nodes of a cluster are members.
	Member bool
	// CallTimeout bounds each attempt of a write transaction or statement (default
	// DefaultCallTimeout): a database that does not answer within it (a connection that a
	// network fault froze without closing it) fails the call with store.ErrUnavailable
	// instead of blocking it for as long as TCP takes to notice. Negative: no bound.
	CallTimeout time.Duration
}

// Defaults of the connection handling. A URL's connect_timeout replaces DefaultConnectTimeout.
const (
	// DefaultConnectTimeout bounds a new connection (TCP, TLS and start-up): a database that
	// accepts nothing, or a network that drops the packets, fails a call within it.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultCallTimeout is Options.CallTimeout's default.
	DefaultCallTimeout = 10 * time.Second
	// tcpTimeout is how long a TCP connection to the database may have data unacknowledged
	// (and the idle time before keepalive probes begin); see dialer.
	tcpTimeout = 15 * time.Second
	// pingTimeout bounds the liveness check of a connection that was idle for a second
	// before the pool hands it out again; a connection that fails it is replaced.
	pingTimeout = 3 * time.Second
	// DefaultIdleInTransaction is the idle_in_transaction_session_timeout of the store's
	// sessions (a URL that sets the parameter keeps its own): a node that stops between two
	// statements of a transaction (SIGSTOP, a VM pause, a partition) holds that transaction's
	// row locks (its node row, a pipeline's row) and every other node's admissions, claims and
	// reaper wait on them; the database ends such a transaction after this long. prunner's
	// transactions never wait on the client for more than milliseconds between statements.
	DefaultIdleInTransaction = 5 * time.Second
)

// Store is the PostgreSQL implementation of store.Store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	// defs caches decoded definition snapshots (see definitionCache).
	defs definitionCache
	// node is the lock of the database this store holds when it was opened Exclusive or Member
	// (nil otherwise).
	node *dbLock
	// self is the node this store acts for once RegisterNode bound it (nil: not registered; the
	// store then has the single-node semantics, without owners or fencing). See cluster.go.
	self atomic.Pointer[store.Lease]
	// callTimeout is Options.CallTimeout with its default applied (0: no bound).
	callTimeout time.Duration
	// listenCheck is how long a listening connection waits before it checks the database
	// (listenCheck, shorter in tests).
	listenCheck time.Duration

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a DSN), applies the pending
// migrations and returns the store, with the default Options.
func Open(ctx context.Context, url string) (*Store, error) {
	return OpenWith(ctx, url, Options{})
}

// OpenWith is Open with explicit Options.
func OpenWith(ctx context.Context, url string, opts Options) (*Store, error) {
	s, err := open(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return s, nil
}

func open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := poolConfig(url, opts)
	if err != nil {
		return nil, err
	}
	var node *dbLock
	if opts.Exclusive || opts.Member {
		if node, err = lockDatabase(ctx, cfg.ConnConfig.Copy(), !opts.Exclusive); err != nil {
			return nil, err
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		node.release()
		return nil, err
	}
	s := &Store{pool: pool, node: node, callTimeout: callTimeoutOf(opts), listenCheck: listenCheck}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// poolConfig returns the pool's configuration: the URL's, with the pool size of opts and
// bounds on connecting and on the liveness check of idle connections, so that a database that
// cannot be reached fails calls within seconds. pgxpool replaces broken connections by itself:
// a connection whose I/O failed is closed and not given back, one that was idle is pinged
// before it is handed out, and new ones are dialled as calls need them.
func poolConfig(url string, opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else if cfg.MaxConns < 4 {
		cfg.MaxConns = 4
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = pingTimeout
	}
	cfg.ConnConfig.DialFunc = dialer(cfg.ConnConfig.ConnectTimeout).DialContext
	if _, set := cfg.ConnConfig.RuntimeParams[idleInTransactionParam]; !set {
		cfg.ConnConfig.RuntimeParams[idleInTransactionParam] = strconv.FormatInt(DefaultIdleInTransaction.Milliseconds(), 10)
	}
	return cfg, nil
}

// idleInTransactionParam is PostgreSQL's name of the setting DefaultIdleInTransaction sets.
const idleInTransactionParam = "idle_in_transaction_session_timeout"

// dialer makes the TCP connections to the database: with keepalives and TCP_USER_TIMEOUT of
// tcpTimeout, so that a connection whose peer vanished (a network partition: nothing is
// acknowledged, nothing is closed) fails within tcpTimeout whatever waits on it, a read and the
// LISTEN connection included, which the call timeout does not bound. connect bounds the dial
// (as pgx's own dialer does with connect_timeout).
func dialer(connect time.Duration) *net.Dialer {
	return &net.Dialer{
		Timeout:   connect,
		KeepAlive: tcpTimeout,
		Control: func(network, _ string, c syscall.RawConn) error {
			if !strings.HasPrefix(network, "tcp") {
				return nil // a Unix socket
			}
			return setUserTimeout(c, tcpTimeout)
		},
	}
}

// Close closes the pool's connections, waiting for the ones in use, and then releases the
// database when the store held it exclusively. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.pool.Close()
		s.node.release()
	})
	return nil
}

// migrationLockKey is the key of the session advisory lock held while migrating: prunner's
// nodes on one database take turns, so each migration is applied once.
const migrationLockKey int64 = 0x7072756e6e6572 // "prunner"

// migrations returns the embedded migrations in version order (see store.LoadMigrations).
func migrations() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFiles, "migrations")
}

// migrate applies the migrations newer than the database's schema version, on one connection
// that holds the migration advisory lock meanwhile. Each migration is one transaction together
// with the new version, so a crash never leaves a half-applied migration. A database written by
// a newer binary is refused rather than misread.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer func() {
		// A lost unlock ends with the connection at the latest; a broken connection is not
		// given back to the pool.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS prunner_schema (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	current, err := schemaVersion(ctx, conn, len(ms))
	if err != nil {
		return err
	}
	for _, m := range ms[current:] {
		if err := applyMigration(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

// schemaVersion returns the number of migrations applied, refusing a version newer than latest.
func schemaVersion(ctx context.Context, conn *pgxpool.Conn, latest int) (int, error) {
	var current int
	err := conn.QueryRow(ctx, `SELECT version FROM prunner_schema`).Scan(&current)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("migrate: read the schema version: %w", err)
	}
	if current > latest {
		return 0, fmt.Errorf("migrate: database schema version %d is newer than this binary supports (%d)", current, latest)
	}
	return current, nil
}

// applyMigration runs one migration and records its version in one transaction.
func applyMigration(ctx context.Context, conn *pgxpool.Conn, m store.Migration) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM prunner_schema`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO prunner_schema (version) VALUES ($1)`, m.Version)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate: %s: %w", m.Name, err)
	}
	return nil
}

// callTimeoutOf returns the bound of a write's attempt that opts ask for (0: none).
func callTimeoutOf(opts Options) time.Duration {
	switch {
	case opts.CallTimeout < 0:
		return 0
	case opts.CallTimeout == 0:
		return DefaultCallTimeout
	}
	return opts.CallTimeout
}

// maxAttempts is how often a write transaction is tried when it fails for a reason that a
// second attempt resolves (see retryable).
const maxAttempts = 5

// writeTx runs fn in a read-committed transaction and commits when fn returns nil. A
// transaction that failed for a reason a second attempt resolves (see tryTx) runs again from the
// start: fn must reset what it keeps from an earlier attempt. Each attempt is bounded by the
// store's call timeout (see boundConn). A failure to reach the database is returned at once, as
// store.ErrUnavailable: the pool has no connection to offer, and a caller that waits for the
// database retries at its own pace.
func (s *Store) writeTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.writeTxWithin(ctx, s.callTimeout, fn)
}

// writeTxWithin is writeTx with its own bound of an attempt (0: none), for the few transactions
// whose size the caller decides (an import).
func (s *Store) writeTxWithin(ctx context.Context, limit time.Duration, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		again, err := s.tryTx(ctx, limit, fn)
		if err == nil || !again || attempt == maxAttempts || ctx.Err() != nil || noConnection(err) {
			return classify(err)
		}
		// A lost connection is replaced by the pool; a conflict clears when the other
		// transaction ends. Either way a short pause helps more than a busy loop.
		select {
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		case <-ctx.Done():
			return classify(err)
		}
	}
}

// noConnection reports whether err says that no connection could be had at all (a connect
// that failed, a deadline that passed): trying again at once would only wait as long again.
func noConnection(err error) bool {
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}

// tryTx runs fn in a transaction once and reports whether a failure may be retried: when the
// transaction could not begin (nothing ran), when its connection was lost before the commit was
// sent (nothing was committed: a PostgreSQL restart or a killed backend costs the caller
// nothing), or when it failed with a retryable error. A connection lost during the commit is not
// retried: the transaction may have committed, and only the caller can tell.
func (s *Store) tryTx(ctx context.Context, limit time.Duration, fn func(tx pgx.Tx) error) (again bool, err error) {
	conn, err := s.acquire(ctx, limit)
	if err != nil {
		return true, err
	}
	defer conn.release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		s.checkLost(conn, err)
		return true, conn.timedOut(err)
	}
	if err := fn(tx); err != nil {
		lost := s.checkLost(conn, err)
		_ = tx.Rollback(ctx)
		return lost || retryable(err), leaseLost(conn.timedOut(err))
	}
	if err := tx.Commit(ctx); err != nil {
		s.checkLost(conn, err)
		if unreachable(err) && !pgconn.SafeToRetry(err) {
			return false, &commitLostError{conn.timedOut(err)}
		}
		return retryable(err), leaseLost(conn.timedOut(err))
	}
	return false, nil
}

// checkLost reports whether a call that failed with err lost its connection. A connection lost
// for another reason than the caller's cancellation most likely went with its server (a
// PostgreSQL restart) or its network: the pool's other connections are closed too (in use ones
// when they are given back), so that the next calls dial afresh instead of each finding a
// dead connection first.
func (s *Store) checkLost(conn *boundConn, err error) bool {
	if !conn.Conn.Conn().IsClosed() {
		return false
	}
	if !errors.Is(err, context.Canceled) {
		s.pool.Reset()
	}
	return true
}

// exec runs one idempotent statement outside a transaction (autocommit), bounded by the call
// timeout. When its connection was lost it runs once more on another: running it twice has the
// effect of running it once.
func (s *Store) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	for attempt := 1; ; attempt++ {
		conn, err := s.acquire(ctx, s.callTimeout)
		if err != nil {
			return pgconn.CommandTag{}, classify(err)
		}
		tag, err := conn.Exec(ctx, sql, args...)
		err = conn.timedOut(err)
		lost := err != nil && s.checkLost(conn, err)
		conn.release()
		if !lost || attempt == 2 || ctx.Err() != nil || noConnection(err) {
			return tag, classify(err)
		}
	}
}

// readTx runs fn in a read-only repeatable-read transaction: its queries see one snapshot. It is
// not bounded by the call timeout (fn may stream a long list to a slow client); a database that
// cannot be reached fails it as store.ErrUnavailable.
func (s *Store) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return classify(pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn))
}

// query runs a read query on a connection of the pool; a database that cannot be reached fails
// it as store.ErrUnavailable.
func (s *Store) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	return rows, classify(err)
}

// retryable reports whether a transaction that failed with err succeeds when it runs again:
// serialization failures and deadlocks, and unique conflicts of the constraints two
// transactions may race for (the idempotency key: the retry finds the other's job; a task
// position: the retry appends after the other's task).
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	case "23505": // unique_violation
		return pgErr.ConstraintName == "jobs_idempotency_key" || pgErr.ConstraintName == "tasks_pkey"
	}
	return false
}

// definitionCache maps the JSON text of a definition snapshot to its decoded value. Jobs of one
// pipeline version share the same snapshot text, and decoding it is the most expensive part of
// reading a job. The returned *pipeline.Definition values are shared between jobs: a Definition
// is immutable once loaded (see pipeline.Definition).
type definitionCache struct {
	mu sync.Mutex
	m  map[string]*pipeline.Definition
}

// maxCachedDefinitions bounds the cache; it is cleared when full.
const maxCachedDefinitions = 256

func (c *definitionCache) get(text string) (*pipeline.Definition, error) {
	c.mu.Lock()
	d, ok := c.m[text]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	d = new(pipeline.Definition)
	if err := unmarshalJSON(text, d); err != nil {
		return nil, fmt.Errorf("decode definition: %w", err)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedDefinitions {
		c.m = make(map[string]*pipeline.Definition)
	}
	c.m[text] = d
	c.mu.Unlock()
	return d, nil
}
