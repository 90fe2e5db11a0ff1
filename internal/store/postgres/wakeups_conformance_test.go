package postgres

import (
	"testing"

	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
	"github.com/prunner-dev/prunner/internal/store/storetest"
)

// TestWakeupsConformance runs the wake-up and cancel-request suite with n stores (nodes) on
// one database.
func TestWakeupsConformance(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	storetest.RunWakeups(t, func(t *testing.T, n int) []store.Store {
		url := pgtest.NewDatabase(t)
		stores := make([]store.Store, n)
		for i := range n {
			stores[i] = openTest(t, url)
		}
		t.Cleanup(func() { checkInvariants(t, url) })
		return stores
	})
}
