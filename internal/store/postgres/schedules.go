package postgres

// Schedules: the API schedules, the state of every schedule and the firing records. A firing is
// Admit with AdmitParams.Firing (admitFiring): its key, the cursor, overlap, admission, the job
// and the firing's record are one transaction, so a fire time never starts twice, whichever
// nodes fire it at once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// pruneMargin is how many firing records beyond store.KeptFirings a schedule gathers before
// the oldest are deleted, so that bounding the records costs O(1) per firing amortised.
const pruneMargin = store.KeptFirings / 4

// errAlreadyFired ends a firing's transaction (rolling back what it wrote) when its fire time
// was handled before; Admit turns it into AdmitResult.AlreadyFired.
var errAlreadyFired = errors.New("already fired")

const (
	// takeFireTimeSQL is a cron firing's cursor check: it moves the cursor to the fire time and
	// counts the record ahead, returning the count, only when the fire time comes after the
	// cursor (a new state starts at it). The row lock serialises the schedule's cron firings.
	takeFireTimeSQL = `INSERT INTO schedule_states AS st (id, cursor, firings) VALUES ($1, $2, 1)
		ON CONFLICT (id) DO UPDATE SET cursor = EXCLUDED.cursor, firings = st.firings + 1
		WHERE st.cursor IS NULL OR st.cursor < EXCLUDED.cursor RETURNING st.firings`
	// countFiringSQL counts the record of a firing of another kind; a schedule without a state
	// (a trigger before EnsureScheduleStates) gets one, with the cursor at now.
	countFiringSQL = `INSERT INTO schedule_states AS st (id, cursor, firings) VALUES ($1, $2, 1)
		ON CONFLICT (id) DO UPDATE SET firings = st.firings + 1 RETURNING st.firings`
	// insertFiringSQL claims the firing's key: a concurrent firing of the same key waits for
	// this transaction and then inserts nothing.
	insertFiringSQL = `INSERT INTO schedule_firings (schedule_id, fire_time, kind, outcome, detail, job_id, recorded)
		VALUES ($1, $2, $3, $4, '', '', $5) ON CONFLICT (schedule_id, fire_time) DO NOTHING`
	setFiringOutcomeSQL = `UPDATE schedule_firings SET outcome = $3, detail = $4, job_id = $5
		WHERE schedule_id = $1 AND fire_time = $2`
	activeJobSQL = `SELECT id, status FROM jobs
		WHERE schedule_id = $1 AND schedule_id <> '' AND status IN ('queued', 'running') LIMIT 1`
	pruneFiringsSQL = `DELETE FROM schedule_firings WHERE schedule_id = $1 AND fire_time <
		(SELECT fire_time FROM schedule_firings WHERE schedule_id = $1 ORDER BY fire_time DESC LIMIT 1 OFFSET $2)`
	recountFiringsSQL = `UPDATE schedule_states SET firings =
		(SELECT count(*) FROM schedule_firings WHERE schedule_id = $1) WHERE id = $1`
	advanceCursorSQL = `INSERT INTO schedule_states AS st (id, cursor) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET cursor = EXCLUDED.cursor
		WHERE st.cursor IS NULL OR st.cursor < EXCLUDED.cursor`
)

// admitFiring is Admit of a firing (store.Firing) inside the transaction. A rejection by
// admission is recorded, committed, and handed back in *rejected rather than as the error
// (which would roll the record back).
func (s *Store) admitFiring(ctx context.Context, tx pgx.Tx, p store.AdmitParams, enc encodedJob, res *store.AdmitResult, rejected *error) error {
	if found, err := lookupIdempotencyKey(ctx, tx, p.IdempotencyKey, res); found || err != nil {
		return err
	}
	count, err := takeFiring(ctx, tx, p)
	if err != nil {
		return err
	}
	outcome, detail, jobID := pipeline.FiringStarted, "", p.Job.ID
	if p.Firing.SkipIfActive {
		if detail, err = activeJobOf(ctx, tx, p.Firing.ScheduleID); err != nil {
			return err
		}
		if detail != "" {
			res.Skipped = detail
			return finishFiring(ctx, tx, p, pipeline.FiringSkipped, detail, "", count)
		}
	}
	err = s.admit(ctx, tx, p, enc, res)
	var rej errRejected
	if errors.As(err, &rej) {
		*rejected = rej.err
		outcome, detail, jobID = pipeline.FiringRejected, rej.err.Error(), ""
	} else if err != nil {
		return err
	}
	return finishFiring(ctx, tx, p, outcome, detail, jobID, count)
}

// takeFiring claims the firing's key and returns the schedule's record count with it, or
// errAlreadyFired when its record exists or (kind cron) its fire time is not after the
// schedule's cursor; a cron firing moves the cursor to its fire time.
func takeFiring(ctx context.Context, tx pgx.Tx, p store.AdmitParams) (count int, err error) {
	f := p.Firing
	if f.Kind == pipeline.FiringCron {
		err = tx.QueryRow(ctx, takeFireTimeSQL, f.ScheduleID, nanos(f.FireTime)).Scan(&count)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, errAlreadyFired // not after the cursor
		}
		if err != nil {
			return 0, fmt.Errorf("advance cursor: %w", err)
		}
	}
	tag, err := tx.Exec(ctx, insertFiringSQL, f.ScheduleID, nanos(f.FireTime), string(f.Kind),
		string(pipeline.FiringStarted), nanos(p.Now))
	if err != nil {
		return 0, fmt.Errorf("record firing: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, errAlreadyFired
	}
	if count == 0 {
		if err := tx.QueryRow(ctx, countFiringSQL, f.ScheduleID, nanos(p.Now)).Scan(&count); err != nil {
			return 0, fmt.Errorf("count firings: %w", err)
		}
	}
	return count, nil
}

// activeJobOf returns, when a job of the schedule is queued or running, the detail of a skipped
// firing that names it; "" when none is.
func activeJobOf(ctx context.Context, tx pgx.Tx, scheduleID string) (string, error) {
	var id, status string
	err := tx.QueryRow(ctx, activeJobSQL, scheduleID).Scan(&id, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up active job of schedule: %w", err)
	}
	return fmt.Sprintf("job %s of the schedule is still %s", id, status), nil
}

// finishFiring writes the firing's outcome into its record and keeps the schedule's records
// bounded (count is the schedule's record count with this one).
func finishFiring(ctx context.Context, tx pgx.Tx, p store.AdmitParams, outcome pipeline.FiringOutcome, detail, jobID string, count int) error {
	f := p.Firing
	b := &pgx.Batch{}
	b.Queue(setFiringOutcomeSQL, f.ScheduleID, nanos(f.FireTime), string(outcome), detail, jobID)
	if count >= store.KeptFirings+pruneMargin {
		b.Queue(pruneFiringsSQL, f.ScheduleID, store.KeptFirings-1)
		b.Queue(recountFiringsSQL, f.ScheduleID)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record firing: %w", err)
	}
	return nil
}

// CreateSchedule implements store.Store.
func (s *Store) CreateSchedule(ctx context.Context, spec pipeline.ScheduleSpec, now time.Time) error {
	id := spec.ID()
	text, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("create schedule %s: encode: %w", id, err)
	}
	err = s.writeTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO schedules (id, spec, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO NOTHING`, id, string(text), nanos(now))
		if err := changedOne(tag, err, pipeline.ErrScheduleExists); err != nil {
			return err
		}
		// A state left from an earlier schedule of the ID keeps no cursor before now.
		_, err = tx.Exec(ctx, advanceCursorSQL, id, nanos(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	return nil
}

// changedOne returns the error of an Exec (tag, err), or errNone when it changed no row.
func changedOne(tag pgconn.CommandTag, err error, errNone error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return errNone
	}
	return nil
}

// UpdateSchedule implements store.Store.
func (s *Store) UpdateSchedule(ctx context.Context, spec pipeline.ScheduleSpec) error {
	id := spec.ID()
	text, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("update schedule %s: encode: %w", id, err)
	}
	tag, err := s.exec(ctx, `UPDATE schedules SET spec = $1 WHERE id = $2`, string(text), id)
	if err := changedOne(tag, err, pipeline.ErrScheduleNotFound); err != nil {
		return fmt.Errorf("update schedule %s: %w", id, err)
	}
	return nil
}

// DeleteSchedule implements store.Store.
func (s *Store) DeleteSchedule(ctx context.Context, id string) error {
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM schedules WHERE id = $1`, id)
		if err := changedOne(tag, err, pipeline.ErrScheduleNotFound); err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM schedule_states WHERE id = $1`, id)
		b.Queue(`DELETE FROM schedule_firings WHERE schedule_id = $1`, id)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}

// APISchedules implements store.Store.
func (s *Store) APISchedules(ctx context.Context) ([]pipeline.ScheduleSpec, error) {
	specs := []pipeline.ScheduleSpec{}
	rows, err := s.query(ctx, `SELECT id, spec FROM schedules ORDER BY id`)
	if err == nil {
		var id, text string
		_, err = pgx.ForEachRow(rows, []any{&id, &text}, func() error {
			var spec pipeline.ScheduleSpec
			if err := unmarshalJSON(text, &spec); err != nil {
				return fmt.Errorf("schedule %s: decode: %w", id, err)
			}
			specs = append(specs, spec)
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return specs, nil
}

// EnsureScheduleStates implements store.Store: one statement for any number of IDs.
func (s *Store) EnsureScheduleStates(ctx context.Context, ids []string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.exec(ctx, `INSERT INTO schedule_states (id, cursor)
		SELECT DISTINCT unnest($1::text[]), $2::bigint ON CONFLICT (id) DO NOTHING`, ids, nanos(now))
	if err != nil {
		return fmt.Errorf("ensure schedule states: %w", err)
	}
	return nil
}

// ScheduleStates implements store.Store.
func (s *Store) ScheduleStates(ctx context.Context) (map[string]pipeline.ScheduleState, error) {
	states := map[string]pipeline.ScheduleState{}
	rows, err := s.query(ctx, `SELECT id, paused, pause_note, paused_at, cursor FROM schedule_states`)
	if err == nil {
		var (
			st             pipeline.ScheduleState
			pausedAt, curs *int64
		)
		_, err = pgx.ForEachRow(rows, []any{&st.ID, &st.Paused, &st.PauseNote, &pausedAt, &curs}, func() error {
			st.PausedAt, st.Cursor = timeOf(pausedAt), timeOf(curs)
			states[st.ID] = st
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("read schedule states: %w", err)
	}
	return states, nil
}

// SetSchedulePaused implements store.Store. Pausing a paused schedule again changes its note
// and keeps the time it was paused at.
func (s *Store) SetSchedulePaused(ctx context.Context, id string, paused bool, note string, now time.Time) error {
	pausedAt := nanos(now)
	if !paused {
		note, pausedAt = "", nil
	}
	_, err := s.exec(ctx, `INSERT INTO schedule_states AS st (id, paused, pause_note, paused_at, cursor)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO UPDATE SET paused = EXCLUDED.paused, pause_note = EXCLUDED.pause_note,
			paused_at = CASE WHEN EXCLUDED.paused AND st.paused THEN st.paused_at ELSE EXCLUDED.paused_at END`,
		id, paused, note, pausedAt, nanos(now))
	if err != nil {
		return fmt.Errorf("pause schedule %s: %w", id, err)
	}
	return nil
}

// AdvanceScheduleCursor implements store.Store. A schedule without a state gets one at t.
func (s *Store) AdvanceScheduleCursor(ctx context.Context, id string, t time.Time) error {
	if _, err := s.exec(ctx, advanceCursorSQL, id, nanos(t)); err != nil {
		return fmt.Errorf("advance cursor of schedule %s: %w", id, err)
	}
	return nil
}

// firingColumns selects a firing (alias f) with the current status of its job (alias j, joined
// by ID; NULL when retention deleted it), in scanFirings' order.
const firingColumns = `f.schedule_id, f.fire_time, f.kind, f.outcome, f.detail, f.job_id,
	COALESCE(j.status, ''), f.recorded`

// firingJoin joins each firing to its job, when it has one.
const firingJoin = ` LEFT JOIN jobs j ON f.job_id <> '' AND j.id = f.job_id`

// scanFirings calls fn with each firing of rows.
func scanFirings(rows pgx.Rows, err error, fn func(pipeline.ScheduleFiring)) error {
	if err != nil {
		return err
	}
	var (
		f                  pipeline.ScheduleFiring
		fireTime, recorded int64
		kind, outcome, st  string
	)
	_, err = pgx.ForEachRow(rows, []any{&f.ScheduleID, &fireTime, &kind, &outcome, &f.Detail, &f.JobID, &st, &recorded}, func() error {
		f.FireTime, f.Recorded = time.Unix(0, fireTime).UTC(), time.Unix(0, recorded).UTC()
		f.Kind, f.Outcome, f.JobStatus = pipeline.FiringKind(kind), pipeline.FiringOutcome(outcome), pipeline.JobStatus(st)
		fn(f)
		return nil
	})
	return err
}

// ScheduleFirings implements store.Store.
func (s *Store) ScheduleFirings(ctx context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	firings := []pipeline.ScheduleFiring{}
	rows, err := s.query(ctx, `SELECT `+firingColumns+` FROM schedule_firings f`+firingJoin+`
		WHERE f.schedule_id = $1 ORDER BY f.fire_time DESC LIMIT $2::bigint`, id, lim)
	err = scanFirings(rows, err, func(f pipeline.ScheduleFiring) { firings = append(firings, f) })
	if err != nil {
		return nil, fmt.Errorf("firings of schedule %s: %w", id, err)
	}
	return firings, nil
}

// LastFirings implements store.Store: the newest record of each schedule (DISTINCT ON walks the
// primary key).
func (s *Store) LastFirings(ctx context.Context) (map[string]pipeline.ScheduleFiring, error) {
	last := map[string]pipeline.ScheduleFiring{}
	rows, err := s.query(ctx, `SELECT DISTINCT ON (f.schedule_id) `+firingColumns+`
		FROM schedule_firings f`+firingJoin+` ORDER BY f.schedule_id, f.fire_time DESC`)
	err = scanFirings(rows, err, func(f pipeline.ScheduleFiring) { last[f.ScheduleID] = f })
	if err != nil {
		return nil, fmt.Errorf("last firings: %w", err)
	}
	return last, nil
}
