package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Interrupt requests (interrupt_running across nodes) are cancel requests that also name the
// newer job (jobs.cancel_replaced_by, migration 0005). They are sent and polled as cancel
// requests are (see notify.go): the owner hears prunner_cancel or finds the request when it
// polls, and asks InterruptedBy how to end the job.

const (
	requestInterruptSQL = `UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, $2),
		cancel_replaced_by = COALESCE(cancel_replaced_by, $3) WHERE id = $1`
	interruptedBySQL = `SELECT COALESCE(cancel_replaced_by, '') FROM jobs WHERE id = $1`
)

// RequestInterrupt implements store.RemoteCancel: RequestCancel with the interrupting job
// recorded, in the same transaction.
func (s *Store) RequestInterrupt(ctx context.Context, jobID, by string, now time.Time) (pipeline.JobStatus, string, error) {
	if by == "" {
		return "", "", errors.New("request interrupt: the interrupting job is required")
	}
	status, owner, err := s.requestCancel(ctx, jobID, requestInterruptSQL, jobID, nanos(now), by)
	if err != nil {
		return "", "", fmt.Errorf("request interrupt of job %s: %w", jobID, err)
	}
	return status, owner, nil
}

// InterruptedBy implements store.RemoteCancel.
func (s *Store) InterruptedBy(ctx context.Context, jobID string) (string, error) {
	var by string
	err := s.pool.QueryRow(ctx, interruptedBySQL, jobID).Scan(&by)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("job %s: %w", jobID, pipeline.ErrJobNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read the interrupt request of job %s: %w", jobID, err)
	}
	return by, nil
}
