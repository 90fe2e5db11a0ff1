package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
	"github.com/prunner-dev/prunner/internal/store/storetest"
)

// openTest opens a store on url and closes it when t ends.
func openTest(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open() error: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() error: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		url := pgtest.NewDatabase(t)
		s := openTest(t, url)
		t.Cleanup(func() { checkInvariants(t, url) })
		return s
	})
}

// TestConformancePersistence runs the part of the suite that opens the same database again.
func TestConformancePersistence(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	storetest.RunPersistence(t, func(t *testing.T) (store.Store, func() store.Store) {
		url := pgtest.NewDatabase(t)
		first, err := Open(t.Context(), url)
		if err != nil {
			t.Fatalf("Open() error: %v", err)
		}
		t.Cleanup(func() { first.Close() }) // idempotent: the test closes it first
		return first, func() store.Store { return openTest(t, url) }
	})
}

// checkInvariants checks, at the end of a test, what the store keeps besides the jobs and
// admission relies on: every job's pipeline has a row, whose running count is the number of its
// running jobs.
func checkInvariants(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Errorf("check invariants: %v", err)
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT j.pipeline, COALESCE(p.running, -1),
			count(*) FILTER (WHERE j.status = 'running')
		FROM jobs j LEFT JOIN pipelines p ON p.name = j.pipeline
		GROUP BY j.pipeline, p.running
		UNION ALL
		SELECT p.name, p.running, 0 FROM pipelines p
		WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.pipeline = p.name)`)
	if err != nil {
		t.Errorf("check invariants: %v", err)
		return
	}
	var (
		name           string
		kept, counting int
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &kept, &counting}, func() error {
		if kept != counting {
			t.Errorf("pipeline %s: running count %d (-1: no row), running jobs %d", name, kept, counting)
		}
		return nil
	})
	if err != nil {
		t.Errorf("check invariants: %v", err)
	}
}
