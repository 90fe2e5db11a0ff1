package postgres

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// TestExclusiveStoreHoldsTheDatabase: while one exclusive store has the database open, a second
// exclusive Open fails with ErrDatabaseInUse, and so does a member's (a store opened with
// neither option is not kept out); once the first is closed, the database is free again.
func TestExclusiveStoreHoldsTheDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	first, err := OpenWith(t.Context(), url, Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWith(t.Context(), url, Options{Exclusive: true}); !errors.Is(err, ErrDatabaseInUse) || !strings.Contains(err.Error(), "--node-id") {
		t.Fatalf("second exclusive Open: %v, want ErrDatabaseInUse that names --node-id", err)
	}
	if _, err := OpenWith(t.Context(), url, Options{Member: true}); !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("a member's Open: %v, want ErrDatabaseInUse", err)
	}
	plain, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("a plain Open: %v", err)
	}
	plain.Close()
	first.Close()
	again, err := OpenWith(t.Context(), url, Options{Exclusive: true})
	if err != nil {
		t.Fatalf("Open after the first closed: %v", err)
	}
	again.Close()
}

// TestMembersShareTheDatabase: the nodes of a cluster open one database together, and keep a
// single server out of it until the last has closed.
func TestMembersShareTheDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	a, err := OpenWith(t.Context(), url, Options{Member: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenWith(t.Context(), url, Options{Member: true})
	if err != nil {
		t.Fatalf("a second member's Open: %v", err)
	}
	a.Close()
	if _, err := OpenWith(t.Context(), url, Options{Exclusive: true}); !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("exclusive Open while a member has the database: %v, want ErrDatabaseInUse", err)
	}
	b.Close()
	single, err := OpenWith(t.Context(), url, Options{Exclusive: true})
	if err != nil {
		t.Fatalf("exclusive Open after the members closed: %v", err)
	}
	single.Close()
}

// TestLockTakenAgainAfterItsSessionEnded: when the lock's session ends (as on a restart of
// PostgreSQL), the store takes the lock again on a new one.
func TestLockTakenAgainAfterItsSessionEnded(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	s, err := OpenWith(t.Context(), url, Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := lockHolders(t, s)
	if len(first) != 1 {
		t.Fatalf("sessions holding the lock: %v, want one", first)
	}
	if _, err := s.pool.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, first[0]); err != nil {
		t.Fatalf("end the lock's session: %v", err)
	}
	deadline := time.Now().Add(4 * lockCheck)
	for {
		now := lockHolders(t, s)
		if len(now) == 1 && now[0] != first[0] {
			return // held again, by a new session
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions holding the lock %v after its session %d ended, want a new one", now, first[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockHolders returns the sessions (pids) of s's database that hold the node lock.
func lockHolders(t *testing.T, s *Store) []int32 {
	t.Helper()
	key := uint64(nodeLockKey)
	rows, err := s.pool.Query(t.Context(), `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 1
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		uint32(key>>32), uint32(key))
	if err != nil {
		t.Fatalf("read pg_locks: %v", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatalf("read pg_locks: %v", err)
	}
	return pids
}
