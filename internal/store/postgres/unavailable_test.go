package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// TestClassify: connection-level failures are store.ErrUnavailable and keep their cause; errors
// about the data, a cancelled call and a commit whose outcome is unknown are not.
func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("admit: %w", refused), true},
		{context.DeadlineExceeded, true},
		{io.ErrUnexpectedEOF, true},
		{&pgconn.PgError{Code: "57P01"}, true}, // admin_shutdown
		{&pgconn.PgError{Code: "57P03"}, true}, // cannot_connect_now
		{&pgconn.PgError{Code: "08006"}, true}, // connection_failure
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "40001"}, false},
		{&pgconn.PgError{Code: "57014"}, false}, // query_canceled
		{&pgconn.PgError{Code: "28P01"}, false}, // invalid_password: a configuration error
		{context.Canceled, false},
		{pipeline.ErrJobNotFound, false},
		{store.ErrLeaseLost, false},
		{&commitLostError{refused}, false},
		{errors.New("boom"), false},
	}
	for _, tt := range tests {
		err := classify(tt.err)
		if got := errors.Is(err, store.ErrUnavailable); got != tt.want {
			t.Errorf("classify(%v) unavailable = %v, want %v", tt.err, got, tt.want)
		}
		if !errors.Is(err, tt.err) {
			t.Errorf("classify(%v) = %v: lost its cause", tt.err, err)
		}
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}

// lazyStore returns a store on url without connecting (no migrations): its calls connect.
func lazyStore(t *testing.T, url string, opts Options) *Store {
	t.Helper()
	cfg, err := poolConfig(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{pool: pool, callTimeout: callTimeoutOf(opts), listenCheck: listenCheck}
	t.Cleanup(func() { s.Close() })
	return s
}

// closedPort returns an address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// blackhole returns the address of a listener that accepts connections and never answers, as a
// database behind a network fault seems to a client.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

// TestUnreachableDatabaseIsUnavailable: reads and writes on a database that refuses connections,
// or accepts them and never answers, fail with store.ErrUnavailable (the latter once the connect
// timeout passed), never with a plain error.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	t.Parallel()
	for name, addr := range map[string]string{"refused": closedPort(t), "blackholed": blackhole(t)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := lazyStore(t, "postgres://postgres@"+addr+"/test?connect_timeout=1", Options{})
			d := clusterDefinition("p", 1, nil)
			_, err := s.Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, "j"), Definition: d, Now: time.Now()})
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Admit() error = %v, want ErrUnavailable", err)
			}
			if _, err := s.QueuedPipelines(t.Context()); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("QueuedPipelines() error = %v, want ErrUnavailable", err)
			}
			if err := s.UpdateTask(t.Context(), "j", pipeline.Task{Name: "only", Status: pipeline.TaskRunning}); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("UpdateTask() error = %v, want ErrUnavailable", err)
			}
			if _, err := s.Job(t.Context(), "j"); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Job() error = %v, want ErrUnavailable", err)
			}
		})
	}
}

// TestWriteBoundedByCallTimeout: a write whose database does not answer fails with
// store.ErrUnavailable once the call timeout passed, and its connection is not given back to
// the pool: the next write succeeds.
func TestWriteBoundedByCallTimeout(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	u := pgtest.NewDatabase(t)
	s, err := OpenWith(t.Context(), u, Options{CallTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.writeTx(t.Context(), func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `SELECT pg_sleep(30)`) // as a frozen connection: no answer
		return err
	})
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("writeTx() error = %v, want ErrUnavailable with DeadlineExceeded", err)
	}
	for i := range 2 * s.pool.Config().MaxConns {
		if _, err := s.exec(t.Context(), `SELECT 1`); err != nil {
			t.Fatalf("exec %d after the timeout: %v", i, err)
		}
	}
}

// TestTerminatedConnectionsAreReplaced: after every connection of the store was ended (as by a
// PostgreSQL restart), writes succeed at once (a lost connection is retried on a new one, and
// the pool drops the others), and reads fail at most with ErrUnavailable until the pool has
// replaced its broken connections.
func TestTerminatedConnectionsAreReplaced(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	u := pgtest.NewDatabase(t)
	// More connections than a write's attempts: without the pool's reset after a lost one, a
	// write could find a dead connection at every attempt.
	s, err := OpenWith(t.Context(), u, Options{MaxConns: 2 * maxAttempts})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := databaseOf(t, u)
	d := clusterDefinition("p", 0, nil)
	for i := range 3 {
		fillPool(t, s)
		if n := pgtest.TerminateConnections(t, db); n == 0 {
			t.Fatal("no connection was ended")
		}
		id := fmt.Sprint("after-", i)
		if _, err := s.Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, id), Definition: d, Now: time.Now()}); err != nil {
			t.Fatalf("Admit(%s) after the connections were ended: %v", id, err)
		}
	}

	fillPool(t, s)
	pgtest.TerminateConnections(t, db)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.QueuedPipelines(t.Context())
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("QueuedPipelines() error = %v, want nil or ErrUnavailable", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads still fail 30 s after the connections were ended: %v", err)
		}
	}
}

// fillPool makes the pool open all its connections, so that ending them leaves it none that
// works.
func fillPool(t *testing.T, s *Store) {
	t.Helper()
	var conns []*pgxpool.Conn
	for range s.pool.Config().MaxConns {
		c, err := s.pool.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
}

// databaseOf returns the database name of a URL of pgtest.NewDatabase.
func databaseOf(t *testing.T, u string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Database
}

// TestTruncatedJSONIsNotUnavailable: a column with truncated JSON is an error about the data, not
// an unreachable database (json's io.ErrUnexpectedEOF must not read as a lost connection).
func TestTruncatedJSONIsNotUnavailable(t *testing.T) {
	var v map[string]any
	err := unmarshalJSON(`{"a":`, &v)
	if err == nil || errors.Is(classify(err), store.ErrUnavailable) {
		t.Errorf("unmarshalJSON(truncated) = %v; want an error that is not ErrUnavailable", err)
	}
}
