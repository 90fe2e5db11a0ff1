package postgres

import (
	"testing"

	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
	"github.com/prunner-dev/prunner/internal/store/storetest"
)

// TestClusterConformance runs the cluster suite with n stores (nodes, each with its own pool)
// on one database, checking the running counts at the end of each test.
func TestClusterConformance(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	storetest.RunCluster(t, func(t *testing.T, n int) []store.Store {
		url := pgtest.NewDatabase(t)
		stores := make([]store.Store, n)
		for i := range n {
			stores[i] = openTest(t, url)
		}
		t.Cleanup(func() { checkInvariants(t, url) })
		return stores
	})
}
