package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// The tests of this file open several stores (each with its own pool of connections, as several
// prunner nodes would) on one database and race them: the rules that storetest checks within
// one store must hold across them, because the database enforces them.

var clusterBase = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

// openNodes opens n stores on one fresh database, at once (so that their migrations race too).
func openNodes(t *testing.T, n int) []*Store {
	t.Helper()
	url := pgtest.NewDatabase(t)
	nodes := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			nodes[i], errs[i] = Open(t.Context(), url)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open() of node %d error: %v", i, err)
		}
		t.Cleanup(func() { nodes[i].Close() })
	}
	return nodes
}

func clusterDefinition(name string, concurrency int, queueLimit *int) *pipeline.Definition {
	return &pipeline.Definition{
		Name:          name,
		Concurrency:   concurrency,
		QueueLimit:    queueLimit,
		QueueStrategy: pipeline.QueueAppend,
		Tasks: map[string]pipeline.TaskDefinition{
			"only": {Name: "only", Script: []string{"true"}},
		},
	}
}

func clusterJob(d *pipeline.Definition, id string) *pipeline.Job {
	return &pipeline.Job{ID: id, Pipeline: d.Name, Created: clusterBase, Definition: d, Tasks: pipeline.NewJobTasks(d)}
}

// wantRunningCount checks that the running count kept in the pipeline's row equals the number of
// running jobs: admission trusts it.
func wantRunningCount(t *testing.T, s *Store, name string, want int) {
	t.Helper()
	var kept, counted int
	if err := s.pool.QueryRow(t.Context(), `SELECT running FROM pipelines WHERE name = $1`, name).Scan(&kept); err != nil {
		t.Fatalf("read running count: %v", err)
	}
	if err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM jobs WHERE pipeline = $1 AND status = 'running'`, name).Scan(&counted); err != nil {
		t.Fatalf("count running jobs: %v", err)
	}
	if kept != counted || kept != want {
		t.Errorf("pipeline %s: running count %d, running jobs %d; want %d", name, kept, counted, want)
	}
}

// TestClusterOpenConcurrently: nodes that start at once on an empty database all open it (the
// migrations run once, under the advisory lock).
func TestClusterOpenConcurrently(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 6)
	var version int
	if err := nodes[0].pool.QueryRow(t.Context(), `SELECT version FROM prunner_schema`).Scan(&version); err != nil {
		t.Fatalf("read schema version: %v", err)
	}
	ms, _ := migrations()
	if version != len(ms) {
		t.Errorf("schema version %d, want %d", version, len(ms))
	}
}

// TestClusterAdmitRace: 60 admissions at once through three nodes obey one pipeline's
// concurrency and queue limit exactly.
func TestClusterAdmitRace(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 3)
	limit := 5
	d := clusterDefinition("p", 2, &limit)
	const n = 60
	var started, queued, full atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := nodes[i%len(nodes)].Admit(t.Context(), store.AdmitParams{
				Job: clusterJob(d, fmt.Sprintf("j%02d", i)), Definition: d, Now: clusterBase})
			switch {
			case errors.Is(err, pipeline.ErrQueueFull):
				full.Add(1)
			case err != nil:
				t.Errorf("Admit(j%02d) error: %v", i, err)
			case res.Started:
				started.Add(1)
			default:
				queued.Add(1)
			}
		})
	}
	wg.Wait()
	if started.Load() != 2 || queued.Load() != 5 || full.Load() != n-7 {
		t.Errorf("started %d, queued %d, rejected %d; want 2, 5, %d", started.Load(), queued.Load(), full.Load(), n-7)
	}
	wantRunningCount(t, nodes[0], "p", 2)
}

// TestClusterClaimExactlyOnce: 200 queued jobs drained by three nodes finishing and claiming at
// once: every job starts exactly once, never more than the concurrency run, and every job ends.
func TestClusterClaimExactlyOnce(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 3)
	const concurrency, n = 4, 200
	d := clusterDefinition("p", concurrency, nil)
	var (
		mu      sync.Mutex
		starts  = map[string]int{}
		running int
		peak    int
		work    = make(chan string, n)
	)
	begin := func(ids ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			starts[id]++
			running++
		}
		peak = max(peak, running)
		for _, id := range ids {
			work <- id
		}
	}
	for i := range n {
		res, err := nodes[i%3].Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, fmt.Sprintf("j%03d", i)), Definition: d, Now: clusterBase})
		if err != nil {
			t.Fatalf("Admit() error: %v", err)
		}
		if res.Started {
			begin(fmt.Sprintf("j%03d", i))
		}
	}
	var finished atomic.Int32
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			s := nodes[w%3]
			for finished.Load() < n {
				var id string
				select {
				case id = <-work:
				case <-time.After(10 * time.Millisecond):
					// A lost wake-up would stall the drain: claim from time to time.
					res, err := s.Claim(t.Context(), store.ClaimParams{Pipeline: "p", Concurrency: concurrency, Now: clusterBase})
					if err != nil {
						t.Errorf("Claim() error: %v", err)
						return
					}
					begin(jobIDs(res.Started)...)
					continue
				}
				mu.Lock()
				running--
				mu.Unlock()
				res, err := s.FinishAndClaim(t.Context(),
					store.FinishParams{JobID: id, Status: pipeline.JobSucceeded, End: clusterBase},
					store.ClaimParams{Pipeline: "p", Concurrency: concurrency, Now: clusterBase})
				if err != nil {
					t.Errorf("FinishAndClaim(%s) error: %v", id, err)
					return
				}
				finished.Add(1)
				begin(jobIDs(res.Started)...)
			}
		})
	}
	wg.Wait()
	if len(starts) != n {
		t.Errorf("%d jobs started, want %d", len(starts), n)
	}
	for id, k := range starts {
		if k != 1 {
			t.Errorf("job %s started %d times, want once", id, k)
		}
	}
	if peak > concurrency {
		t.Errorf("%d jobs ran at once, want at most %d", peak, concurrency)
	}
	wantRunningCount(t, nodes[0], "p", 0)
}

func jobIDs(jobs []*pipeline.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

// TestClusterIdempotencyKeyRace: one idempotency key sent through three nodes at once, for two
// pipelines, stores one job; every other request names it.
func TestClusterIdempotencyKeyRace(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 3)
	ds := []*pipeline.Definition{clusterDefinition("a", 10, nil), clusterDefinition("b", 10, nil)}
	const n = 30
	results := make([]store.AdmitResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := ds[i%2]
			res, err := nodes[i%3].Admit(t.Context(), store.AdmitParams{
				Job: clusterJob(d, fmt.Sprintf("j%02d", i)), Definition: d, Now: clusterBase, IdempotencyKey: "key"})
			if err != nil {
				t.Errorf("Admit(j%02d) error: %v", i, err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	var stored []string
	for i, res := range results {
		if res.ExistingID == "" {
			stored = append(stored, fmt.Sprintf("j%02d", i))
		}
	}
	if len(stored) != 1 {
		t.Fatalf("jobs stored for one key: %v, want one", stored)
	}
	for i, res := range results {
		if res.ExistingID != "" && res.ExistingID != stored[0] {
			t.Errorf("request %d: ExistingID %s, want %s", i, res.ExistingID, stored[0])
		}
	}
	jobs, err := nodes[0].Jobs(t.Context(), store.JobQuery{})
	if err != nil || len(jobs) != 1 {
		t.Errorf("Jobs() = %d jobs, %v; want 1", len(jobs), err)
	}
}

// TestClusterFiringRace: three nodes fire the same schedule times at once (as their schedulers
// would): each time starts one job.
func TestClusterFiringRace(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 3)
	d := clusterDefinition("p", 100, nil)
	const times, perTime = 5, 6
	var started atomic.Int32
	var wg sync.WaitGroup
	for k := range times {
		for i := range perTime {
			wg.Go(func() {
				ft := clusterBase.Add(time.Duration(k+1) * time.Minute)
				res, err := nodes[i%3].Admit(t.Context(), store.AdmitParams{
					Job: clusterJob(d, fmt.Sprintf("t%d-n%d", k, i)), Definition: d, Now: ft,
					Firing: &store.Firing{ScheduleID: "p/s", FireTime: ft, Kind: pipeline.FiringCron}})
				if err != nil {
					t.Errorf("firing error: %v", err)
					return
				}
				if !res.AlreadyFired {
					started.Add(1)
				}
			})
		}
	}
	wg.Wait()
	// Cron firings of later times may pass earlier ones, whose fire time is then not after the
	// cursor any more: at least one and at most one per time start.
	jobs, err := nodes[0].Jobs(t.Context(), store.JobQuery{})
	if err != nil {
		t.Fatalf("Jobs() error: %v", err)
	}
	if int(started.Load()) != len(jobs) || len(jobs) < 1 || len(jobs) > times {
		t.Errorf("%d firings started, %d jobs stored; want the same, between 1 and %d", started.Load(), len(jobs), times)
	}
	seen := map[time.Time]bool{}
	for _, j := range jobs {
		if j.ScheduledFor == nil || seen[*j.ScheduledFor] {
			t.Errorf("job %s scheduled for %v: a fire time started twice or none", j.ID, j.ScheduledFor)
			continue
		}
		seen[*j.ScheduledFor] = true
	}
	firings, err := nodes[1].ScheduleFirings(t.Context(), "p/s", 0)
	if err != nil || len(firings) != len(jobs) {
		t.Errorf("ScheduleFirings() = %d, %v; want %d", len(firings), err, len(jobs))
	}
}

// TestClusterCancelWhileClaiming: cancels and claims of one wait list racing through two nodes
// leave each job either canceled or started, never both, and the counts right.
func TestClusterCancelWhileClaiming(t *testing.T) {
	t.Parallel()
	nodes := openNodes(t, 2)
	const n = 40
	d := clusterDefinition("p", n, nil)
	d.StartDelay = time.Second // every job waits, whatever the concurrency
	for i := range n {
		j := clusterJob(d, fmt.Sprintf("j%02d", i))
		j.StartAfter = clusterBase.Add(time.Second)
		if _, err := nodes[0].Admit(t.Context(), store.AdmitParams{Job: j, Definition: d, Now: clusterBase}); err != nil {
			t.Fatalf("Admit() error: %v", err)
		}
	}
	later := clusterBase.Add(2 * time.Second)
	var canceled, claimed atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			before, err := nodes[1].CancelQueued(t.Context(), fmt.Sprintf("j%02d", i), later)
			if err != nil {
				t.Errorf("CancelQueued() error: %v", err)
			}
			if before == pipeline.JobQueued {
				canceled.Add(1)
			}
		})
		if i%8 == 0 {
			wg.Go(func() {
				res, err := nodes[0].Claim(t.Context(), store.ClaimParams{Pipeline: "p", Concurrency: n, Now: later})
				if err != nil {
					t.Errorf("Claim() error: %v", err)
				}
				claimed.Add(int32(len(res.Started)))
			})
		}
	}
	wg.Wait()
	if canceled.Load()+claimed.Load() != n {
		t.Errorf("canceled %d + started %d, want %d", canceled.Load(), claimed.Load(), n)
	}
	wantRunningCount(t, nodes[0], "p", int(claimed.Load()))
}

// TestOpenUnreachable: a database that does not answer is an error of Open, not a hang.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if s, err := Open(ctx, "postgres://postgres@127.0.0.1:1/none?connect_timeout=2"); err == nil {
		s.Close()
		t.Fatal("Open() of an unreachable server succeeded")
	}
}

// TestConnectionsKilled: when every connection of the store dies (a PostgreSQL restart, an
// administrator killing backends), the next writes succeed on new connections: a write
// transaction that lost its connection before its commit is run again.
func TestConnectionsKilled(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	s := openTest(t, url)
	d := clusterDefinition("p", 1, nil)
	admit := func(id string) store.AdmitResult {
		t.Helper()
		res, err := s.Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, id), Definition: d, Now: clusterBase})
		if err != nil {
			t.Fatalf("Admit(%s) error: %v", id, err)
		}
		return res
	}
	admit("j1")
	var db string
	if err := s.pool.QueryRow(t.Context(), `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	killed := pgtest.TerminateConnections(t, db)
	if killed == 0 {
		t.Fatal("no connection of the store was terminated")
	}
	if res := admit("j2"); res.Started {
		t.Errorf("Admit(j2) Started, want queued behind j1")
	}
	res, err := s.FinishAndClaim(t.Context(),
		store.FinishParams{JobID: "j1", Status: pipeline.JobSucceeded, End: clusterBase},
		store.ClaimParams{Pipeline: "p", Concurrency: 1, Now: clusterBase})
	if err != nil || len(res.Started) != 1 || res.Started[0].ID != "j2" {
		t.Errorf("FinishAndClaim() = %v, %v; want j2 started", jobIDs(res.Started), err)
	}
	wantRunningCount(t, s, "p", 1)

	// A task update outside a transaction is run again too.
	pgtest.TerminateConnections(t, db)
	now := clusterBase
	if err := s.UpdateTask(t.Context(), "j2", pipeline.Task{Name: "only", Status: pipeline.TaskRunning, Start: &now}); err != nil {
		t.Errorf("UpdateTask() after the connections died: %v", err)
	}
}

// TestSchemaInURL: two stores in two schemas of one database (search_path in the URL) keep
// their jobs apart.
func TestSchemaInURL(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	first := openTest(t, url)
	d := clusterDefinition("p", 1, nil)
	for _, schema := range []string{"one", "two"} {
		if _, err := first.pool.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatal(err)
		}
		s := openTest(t, url+"?search_path="+schema)
		if _, err := s.Admit(t.Context(), store.AdmitParams{Job: clusterJob(d, "in-"+schema), Definition: d, Now: clusterBase}); err != nil {
			t.Fatalf("Admit() in schema %s error: %v", schema, err)
		}
		jobs, err := s.Jobs(t.Context(), store.JobQuery{})
		if err != nil || len(jobs) != 1 || jobs[0].ID != "in-"+schema {
			t.Errorf("Jobs() in schema %s = %v, %v; want only in-%s", schema, jobIDs(jobs), err, schema)
		}
	}
	if jobs, err := first.Jobs(t.Context(), store.JobQuery{}); err != nil || len(jobs) != 0 {
		t.Errorf("Jobs() in the public schema = %v, %v; want none", jobIDs(jobs), err)
	}
}
