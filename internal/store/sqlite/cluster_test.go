package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/storetest"
)

// TestClusterConformance runs the single-node subset of the cluster suite: a SQLite database is
// one node's, so the tests of several nodes skip.
func TestClusterConformance(t *testing.T) {
	t.Parallel()
	storetest.RunCluster(t, func(t *testing.T, n int) []store.Store {
		if n > 1 {
			t.Skip("a SQLite store is one node's")
		}
		return []store.Store{openTest(t, filepath.Join(t.TempDir(), "prunner.db"))}
	})
}
