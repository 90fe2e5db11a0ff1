package postgres

import (
	"errors"
	"testing"

	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// TestExclusiveStoreHoldsTheDatabase: while one exclusive store has the database open, a second
// exclusive Open fails with ErrDatabaseInUse (a store opened without Exclusive is not kept
// out); once the first is closed, the database is free again.
func TestExclusiveStoreHoldsTheDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	first, err := OpenWith(t.Context(), url, Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWith(t.Context(), url, Options{Exclusive: true}); !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("second exclusive Open: %v, want ErrDatabaseInUse", err)
	}
	shared, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("a non-exclusive Open: %v", err)
	}
	shared.Close()
	first.Close()
	again, err := OpenWith(t.Context(), url, Options{Exclusive: true})
	if err != nil {
		t.Fatalf("Open after the first closed: %v", err)
	}
	again.Close()
}
