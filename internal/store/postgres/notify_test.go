package postgres

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
	"github.com/prunner-dev/prunner/internal/store/storetest"
)

// The tests of this file check what is PostgreSQL's in the wake-ups (notify.go) between two
// stores registered as nodes "a" and "b" of one database: notifications go out on commit, the
// listener reconnects, the payload. storetest.RunWakeups checks the rest.

// quiet is how long a test waits to be sure that no wake-up comes.
const quiet = 300 * time.Millisecond

// openTwoNodes opens two stores on a fresh database, registered as nodes a and b, and returns
// them with the database's name.
func openTwoNodes(t *testing.T) (a, b *Store, db string) {
	t.Helper()
	u := pgtest.NewDatabase(t)
	stores := make([]*Store, 2)
	for i, id := range []string{"a", "b"} {
		s, err := Open(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.RegisterNode(t.Context(), store.NodeInfo{ID: id}, time.Minute); err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return stores[0], stores[1], strings.TrimPrefix(parsed.Path, "/")
}

// noWakeup fails when a wake-up comes within quiet.
func noWakeup(t *testing.T, got <-chan store.Wakeup, when string) {
	t.Helper()
	select {
	case w := <-got:
		t.Errorf("%s: unexpected wake-up %+v", when, w)
	case <-time.After(quiet):
	}
}

// admitNow admits a job of d through s and returns whether it started.
func admitNow(t *testing.T, s *Store, d *pipeline.Definition, id string) bool {
	t.Helper()
	res, err := s.Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, id), Definition: d, Now: time.Now()})
	if err != nil {
		t.Fatalf("Admit(%s) error: %v", id, err)
	}
	return res.Started
}

// TestWakeupOnCommitOnly: a wake-up sent in a transaction reaches another node's listener when
// the transaction commits and never when it rolls back.
func TestWakeupOnCommitOnly(t *testing.T) {
	t.Parallel()
	a, b, _ := openTwoNodes(t)
	got := storetest.Listen(t, b)

	tx, err := a.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	batch := &pgx.Batch{}
	a.queueWakePipeline(batch, "rolled-back")
	if err := tx.SendBatch(t.Context(), batch).Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	noWakeup(t, got, "after a rollback")

	err = pgx.BeginFunc(t.Context(), a.pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		a.queueWakePipeline(batch, "committed")
		if err := tx.SendBatch(t.Context(), batch).Close(); err != nil {
			return err
		}
		noWakeup(t, got, "before the commit")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := storetest.WantWakeup(t, got, store.WakePipeline); w.Pipeline != "committed" {
		t.Errorf("wake-up for pipeline %q, want committed", w.Pipeline)
	}
}

// TestListenReconnects: when the listener's connection is ended (as by a PostgreSQL restart),
// it reports the loss, connects again (WakeResync) and delivers what is sent afterwards.
func TestListenReconnects(t *testing.T) {
	t.Parallel()
	a, b, db := openTwoNodes(t)
	got := storetest.Listen(t, b)

	if n := pgtest.TerminateConnections(t, db); n == 0 {
		t.Fatal("no connection was ended")
	}
	if w := storetest.WantWakeup(t, got, store.WakeLost); w.Err == nil {
		t.Error("WakeLost without the error")
	}
	storetest.WantWakeup(t, got, store.WakeResync)

	d := clusterDefinition("p", 0, nil) // concurrency 0: every job waits
	admitNow(t, a, d, "after")
	if w := storetest.WantWakeup(t, got, store.WakePipeline); w.Pipeline != "p" {
		t.Errorf("wake-up for pipeline %q, want p", w.Pipeline)
	}
}

// TestWakePayload: any node ID and subject survive the payload.
func TestWakePayload(t *testing.T) {
	for _, c := range []struct{ sender, subject string }{{"a", "p"}, {"", "job"}, {"n:1", "x:y"}, {"12", "3"}} {
		s, sub, ok := parseWakePayload(wakePayload(c.sender, c.subject))
		if !ok || s != c.sender || sub != c.subject {
			t.Errorf("payload of (%q, %q) decodes as (%q, %q, %v)", c.sender, c.subject, s, sub, ok)
		}
	}
	for _, bad := range []string{"", "x", "5:ab", "-1:a"} {
		if _, _, ok := parseWakePayload(bad); ok {
			t.Errorf("parseWakePayload(%q) ok", bad)
		}
	}
}
