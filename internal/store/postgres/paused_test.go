package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// A node that stops in the middle of a transaction (SIGSTOP, a paused VM, a partition) must not
// hold its row locks, and with them the whole cluster, for longer than the database's
// idle-in-transaction timeout.

// TestSessionsEndTransactionsLeftIdle: the store's sessions carry DefaultIdleInTransaction
// unless the URL sets its own.
func TestSessionsEndTransactionsLeftIdle(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	for _, c := range []struct{ url, want string }{
		{url, "5s"},
		{withParam(url, "idle_in_transaction_session_timeout=750"), "750ms"},
	} {
		s, err := Open(t.Context(), c.url)
		if err != nil {
			t.Fatalf("Open() error: %v", err)
		}
		var got string
		err = s.pool.QueryRow(t.Context(), `SHOW idle_in_transaction_session_timeout`).Scan(&got)
		s.Close()
		if err != nil || got != c.want {
			t.Errorf("idle_in_transaction_session_timeout = %q (%v), want %q", got, err, c.want)
		}
	}
}

// TestStalledTransactionReleasesItsLocks: a transaction of one node that holds a node row and
// then stalls is ended by the database, so that another node's write of that row goes through,
// and the stalled node's commit fails instead of writing late.
func TestStalledTransactionReleasesItsLocks(t *testing.T) {
	t.Parallel()
	url := withParam(pgtest.NewDatabase(t), "idle_in_transaction_session_timeout=300")
	nodes := make([]*Store, 2)
	for i := range nodes {
		s, err := Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open() error: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		nodes[i] = s
	}
	ctx := t.Context()
	if _, err := nodes[0].pool.Exec(ctx, `INSERT INTO nodes (id, started, heartbeat, lease_until) VALUES ('a', now(), now(), now())`); err != nil {
		t.Fatalf("insert node row: %v", err)
	}
	stalled, err := nodes[0].pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Rollback(context.WithoutCancel(ctx))
	if _, err := stalled.Exec(ctx, `UPDATE nodes SET heartbeat = heartbeat WHERE id = 'a'`); err != nil {
		t.Fatalf("lock the row: %v", err)
	}
	// The stalled transaction waits on its client; the other node's write of the row waits on
	// its lock only until the database ends it.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := nodes[1].pool.Exec(wctx, `UPDATE nodes SET state = 'lost' WHERE id = 'a'`); err != nil {
		t.Fatalf("the other node's write waited for the stalled transaction: %v", err)
	}
	if err := stalled.Commit(ctx); err == nil {
		t.Errorf("the stalled transaction committed after the database ended it")
	}
}

// withParam adds a query parameter to a URL.
func withParam(url, param string) string {
	if strings.Contains(url, "?") {
		return url + "&" + param
	}
	return url + "?" + param
}
