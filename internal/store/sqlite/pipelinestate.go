package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// PipelineStates implements store.Store. Running and queued jobs are read with two equality
// lookups of the status index, so the cost does not grow with the history of finished jobs.
func (s *Store) PipelineStates(ctx context.Context) (map[string]pipeline.AdmissionState, error) {
	states := make(map[string]pipeline.AdmissionState)
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT pipeline, count(*) FROM jobs WHERE status = ? GROUP BY pipeline`,
			string(pipeline.JobRunning))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				name string
				st   pipeline.AdmissionState
			)
			if err := rows.Scan(&name, &st.Running); err != nil {
				return err
			}
			states[name] = st
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT pipeline, id, queue_partition, start_after
			FROM jobs WHERE status = ? ORDER BY seq`, string(pipeline.JobQueued))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				name       string
				w          pipeline.WaitingJob
				startAfter intCol
			)
			if err := rows.Scan(&name, &w.ID, &w.Partition, &startAfter); err != nil {
				return err
			}
			w.StartAfter = timeOf(startAfter)
			st := states[name]
			st.Waiting = append(st.Waiting, w)
			states[name] = st
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read pipeline states: %w", err)
	}
	return states, nil
}

// QueuedPipelines implements store.Store. The names are sorted.
func (s *Store) QueuedPipelines(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT pipeline FROM jobs WHERE status = ? ORDER BY pipeline`,
		string(pipeline.JobQueued))
	if err != nil {
		return nil, fmt.Errorf("list queued pipelines: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list queued pipelines: %w", err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list queued pipelines: %w", err)
	}
	return names, nil
}
