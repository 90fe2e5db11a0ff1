package sqlite

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// TestRecordSchedule: a job's record carries its schedule and fire time; a record without them
// (as every record written before migration 0005 is) decodes as a job without a schedule.
func TestRecordSchedule(t *testing.T) {
	t.Parallel()
	ft := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	for _, j := range []*pipeline.Job{
		{ID: "s", Pipeline: "p", Status: pipeline.JobSucceeded, Schedule: "p/nightly", ScheduledFor: &ft},
		{ID: "plain", Pipeline: "p", Status: pipeline.JobSucceeded},
	} {
		rec, err := encodeRecord(j)
		if err != nil {
			t.Fatalf("encodeRecord(%s) error: %v", j.ID, err)
		}
		var (
			a arena
			b taskBlocks
		)
		got, err := decodeRecord(rec, &a, &b, false)
		if err != nil {
			t.Fatalf("decodeRecord(%s) error: %v", j.ID, err)
		}
		if got.Schedule != j.Schedule || (got.ScheduledFor == nil) != (j.ScheduledFor == nil) ||
			(got.ScheduledFor != nil && !got.ScheduledFor.Equal(*j.ScheduledFor)) {
			t.Errorf("job %s from its record: Schedule %q ScheduledFor %v; want %q %v",
				j.ID, got.Schedule, got.ScheduledFor, j.Schedule, j.ScheduledFor)
		}
	}
}

// TestFiringQueriesUseIndexes: no statement of a firing, and neither firing list, reads a whole
// table: with 10,000 schedules and 100,000 jobs each must stay a few index probes.
func TestFiringQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	s := openTest(t, filepath.Join(t.TempDir(), "prunner.db"))
	queries := []string{
		`SELECT ` + firingColumns + ` FROM schedule_firings f` + firingJoin + ` WHERE f.schedule_id = ?1 ORDER BY f.fire_time DESC LIMIT 5`,
		lastFiringsQuery,
	}
	for _, p := range s.firingStatements() {
		queries = append(queries, p.query)
	}
	for _, q := range queries {
		rows, err := s.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, placeholderArgs(q)...)
		if err != nil {
			t.Fatalf("explain %q: %v", firstLine(q), err)
		}
		for rows.Next() {
			var (
				id, parent, unused int
				detail             string
			)
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			// The last firings walk the states: one row per schedule, by design.
			if strings.HasPrefix(detail, "SCAN") && !(q == lastFiringsQuery && detail == "SCAN st") {
				t.Errorf("%q: plan step %q reads a whole table", firstLine(q), detail)
			}
		}
		rows.Close()
	}
}

// placeholderArgs returns as many arguments as q has parameters (?N or ?).
func placeholderArgs(q string) []any {
	n := strings.Count(q, "?")
	if nums := regexp.MustCompile(`\?(\d+)`).FindAllStringSubmatch(q, -1); len(nums) > 0 {
		n = 0
		for _, m := range nums {
			k, _ := strconv.Atoi(m[1])
			n = max(n, k)
		}
	}
	args := make([]any, n)
	for i := range args {
		args[i] = 1
	}
	return args
}
