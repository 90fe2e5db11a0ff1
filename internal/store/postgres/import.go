package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// importLockKey is the key of the transaction advisory lock that serialises imports: each takes
// the seqs below the smallest one in use, which two at once would both take.
const importLockKey int64 = 0x7072756e6e6572 + 1

// importBatch is how many jobs an import inserts per round trip.
const importBatch = 500

// importedJob is one job of ImportJobs with its column values encoded before the transaction.
type importedJob struct {
	job   *pipeline.Job
	vars  any
	def   any
	tasks []encodedTask
}

// ImportJobs implements store.Store. The imported jobs get the seqs just below the smallest one
// in use (zero and negative ones on an empty store), so that they list as older than every job
// already stored, in the order given; admitted jobs take identity values, which only grow.
func (s *Store) ImportJobs(ctx context.Context, jobs []*pipeline.Job) (int, error) {
	if len(jobs) == 0 {
		return 0, nil
	}
	encoded, err := encodeImported(jobs)
	if err != nil {
		return 0, fmt.Errorf("import jobs: %w", err)
	}
	imported := 0
	// An import is one transaction of any size: not bounded by the call timeout.
	err = s.writeTxWithin(ctx, 0, func(tx pgx.Tx) error {
		var err error
		imported, err = importJobs(ctx, tx, encoded)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("import jobs: %w", err)
	}
	return imported, nil
}

// encodeImported checks the jobs of an import (an ID, a final status) and encodes them.
func encodeImported(jobs []*pipeline.Job) ([]importedJob, error) {
	encoded := make([]importedJob, 0, len(jobs))
	for i, j := range jobs {
		if j == nil || j.ID == "" {
			return nil, fmt.Errorf("job %d has no ID", i)
		}
		if !j.Status.Final() {
			return nil, fmt.Errorf("job %s: status %q is not final", j.ID, j.Status)
		}
		e := importedJob{job: j, tasks: make([]encodedTask, len(j.Tasks))}
		var err error
		if e.vars, err = encodeVariables(j.Variables); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
		if e.def, err = encodeDefinition(j.Definition); err != nil {
			return nil, fmt.Errorf("job %s: %w", j.ID, err)
		}
		for k, t := range j.Tasks {
			if e.tasks[k], err = encodeTask(t); err != nil {
				return nil, fmt.Errorf("job %s: task %q: %w", j.ID, t.Name, err)
			}
		}
		encoded = append(encoded, e)
	}
	return encoded, nil
}

// importJobs is ImportJobs inside the transaction: it skips the jobs that exist already (and
// repeated IDs of the input) and inserts the others below the smallest seq.
func importJobs(ctx context.Context, tx pgx.Tx, encoded []importedJob) (int, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, importLockKey); err != nil {
		return 0, fmt.Errorf("take the import lock: %w", err)
	}
	ids := make([]string, len(encoded))
	for i, e := range encoded {
		ids[i] = e.job.ID
	}
	rows, err := tx.Query(ctx, `SELECT id FROM jobs WHERE id = ANY($1::text[])`, ids)
	if err != nil {
		return 0, err
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	seen := make(map[string]bool, len(encoded))
	for _, id := range existing {
		seen[id] = true
	}
	fresh := encoded[:0:0]
	for _, e := range encoded {
		if !seen[e.job.ID] {
			seen[e.job.ID] = true
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	var lowest int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(min(seq), 1) FROM jobs`).Scan(&lowest); err != nil {
		return 0, fmt.Errorf("read lowest seq: %w", err)
	}
	// The inserts go in batches of importBatch jobs: one round trip each, and a bounded
	// amount of queued statements however long the history is.
	seq := lowest - int64(len(fresh))
	for chunk := range slices.Chunk(fresh, importBatch) {
		b := &pgx.Batch{}
		for _, e := range chunk {
			queueImported(b, seq, e)
			seq++
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return 0, err
		}
	}
	return len(fresh), nil
}

// queueImported queues the inserts of one imported job (its pipeline's row, which every job's
// pipeline has, the job at seq, its tasks) in b.
func queueImported(b *pgx.Batch, seq int64, e importedJob) {
	j := e.job
	b.Queue(createPipelineSQL, j.Pipeline)
	b.Queue(`INSERT INTO jobs (seq, id, pipeline, status, variables, user_name, queue_partition,
		created_at, start_after, started_at, ended_at, last_error, errored, replaced_by, definition,
		schedule_id, scheduled_for)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		seq, j.ID, j.Pipeline, string(j.Status), e.vars, j.User, j.QueuePartition, nanos(j.Created),
		nanos(j.StartAfter), nanosPtr(j.Start), nanosPtr(j.End), j.LastError, j.Errored, j.ReplacedBy,
		e.def, j.Schedule, nanosPtr(j.ScheduledFor))
	queueTasks(b, j.ID, j.Tasks, e.tasks)
}
