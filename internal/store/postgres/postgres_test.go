package postgres

import (
	"testing"

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
		return openTest(t, pgtest.NewDatabase(t))
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
