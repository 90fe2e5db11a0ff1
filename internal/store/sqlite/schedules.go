package sqlite

// Schedules (migration 0005): the API schedules, the state of every schedule and the firing
// records. A firing is Admit with AdmitParams.Firing (admitFiring): its key check, the cursor,
// overlap, admission, the job and the firing's record are one transaction on the writer, so a
// crash at any point either left all of it or none of it, and a fire time never starts twice.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// pruneMargin is how many firing records beyond store.KeptFirings a schedule gathers before
// the oldest are deleted: a prune reads about KeptFirings+pruneMargin rows of the primary key,
// once every pruneMargin firings, so bounding the records costs O(1) per firing amortised.
const pruneMargin = store.KeptFirings / 4

// activeStatuses is the WHERE term of the partial index jobs_schedule_active, spelled as there
// so that the planner can use the index.
var activeStatuses = "status IN " + sqlList(pipeline.JobQueued, pipeline.JobRunning)

// firingStmts are the statements of a firing, prepared once on the writer connection.
type firingStmts struct {
	exists    *sql.Stmt
	take      *sql.Stmt
	advance   *sql.Stmt
	activeJob *sql.Stmt
	insert    *sql.Stmt
	count     *sql.Stmt
	prune     *sql.Stmt
	recount   *sql.Stmt
}

// firingStatements lists the statements of firingStmts with their queries, for prepare.
func (s *Store) firingStatements() []struct {
	dst   **sql.Stmt
	query string
} {
	return []struct {
		dst   **sql.Stmt
		query string
	}{
		{&s.fs.exists, `SELECT 1 FROM schedule_firings WHERE schedule_id = ? AND fire_time = ?`},
		// A cron firing's check, cursor and record count in one statement: it returns the
		// count only when the fire time comes after the cursor (a new state starts at it).
		{&s.fs.take, `INSERT INTO schedule_states (id, cursor, firings) VALUES (?1, ?2, 1)
			ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor, firings = firings + 1
			WHERE cursor IS NULL OR cursor < excluded.cursor RETURNING firings`},
		// AdvanceScheduleCursor: forward only; a schedule without a state gets one at t.
		{&s.fs.advance, `INSERT INTO schedule_states (id, cursor) VALUES (?1, ?2)
			ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor
			WHERE cursor IS NULL OR cursor < excluded.cursor`},
		{&s.fs.activeJob, `SELECT id, status FROM jobs INDEXED BY jobs_schedule_active
			WHERE schedule_id = ?1 AND schedule_id <> '' AND ` + activeStatuses + ` LIMIT 1`},
		{&s.fs.insert, `INSERT INTO schedule_firings (schedule_id, fire_time, kind, outcome, detail, job_id, recorded)
			VALUES (?, ?, ?, ?, ?, ?, ?)`},
		// A firing of a schedule without a state (a trigger before EnsureScheduleStates) gives
		// it one, with the cursor at the firing's admission (now).
		{&s.fs.count, `INSERT INTO schedule_states (id, cursor, firings) VALUES (?1, ?2, 1)
			ON CONFLICT (id) DO UPDATE SET firings = firings + 1 RETURNING firings`},
		{&s.fs.prune, `DELETE FROM schedule_firings WHERE schedule_id = ?1 AND fire_time <
			(SELECT fire_time FROM schedule_firings WHERE schedule_id = ?1 ORDER BY fire_time DESC LIMIT 1 OFFSET ?2)`},
		{&s.fs.recount, `UPDATE schedule_states SET firings =
			(SELECT count(*) FROM schedule_firings WHERE schedule_id = ?1) WHERE id = ?1`},
	}
}

// admitFiring is Admit of a firing (store.Firing) inside the write transaction. A rejection by
// admission is recorded, committed, and handed back in *rejected rather than as the error
// (which would roll the record back).
func (s *Store) admitFiring(ctx context.Context, p store.AdmitParams, enc encodedJob, res *store.AdmitResult, rejected *error) error {
	if found, err := s.lookupIdempotencyKey(ctx, p.IdempotencyKey, res); found || err != nil {
		return err
	}
	fired, counted, err := s.takeFireTime(ctx, p.Firing)
	if err != nil || fired {
		res.AlreadyFired = fired
		return err
	}
	if p.Firing.SkipIfActive {
		if detail, err := s.activeJobOf(ctx, p.Firing.ScheduleID); err != nil || detail != "" {
			if err != nil {
				return err
			}
			res.Skipped = detail
			return s.recordFiring(ctx, p, pipeline.FiringSkipped, detail, "", counted)
		}
	}
	err = s.admit(ctx, p, enc, res)
	var rej errRejected
	if errors.As(err, &rej) {
		*rejected = rej.err
		return s.recordFiring(ctx, p, pipeline.FiringRejected, rej.err.Error(), "", counted)
	}
	if err != nil {
		return err
	}
	return s.recordFiring(ctx, p, pipeline.FiringStarted, "", p.Job.ID, counted)
}

// takeFireTime reports whether the firing f was handled before: a record of its key exists, or
// (kind cron) its fire time is not after the schedule's cursor. Otherwise a cron firing moves
// the cursor to its fire time and counts its record ahead: counted is the schedule's new
// record count (0 for other kinds, which recordFiring counts).
func (s *Store) takeFireTime(ctx context.Context, f *store.Firing) (fired bool, counted int, err error) {
	err = s.fs.exists.QueryRowContext(ctx, f.ScheduleID, nanos(f.FireTime)).Scan(new(int))
	if err == nil {
		return true, 0, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, 0, fmt.Errorf("look up firing: %w", err)
	}
	if f.Kind != pipeline.FiringCron {
		return false, 0, nil
	}
	err = s.fs.take.QueryRowContext(ctx, f.ScheduleID, nanos(f.FireTime)).Scan(&counted)
	if errors.Is(err, sql.ErrNoRows) {
		return true, 0, nil // not after the cursor
	}
	if err != nil {
		return false, 0, fmt.Errorf("advance cursor: %w", err)
	}
	return false, counted, nil
}

// activeJobOf returns, when a job of the schedule is queued or running, the detail of a skipped
// firing that names it; "" when none is.
func (s *Store) activeJobOf(ctx context.Context, scheduleID string) (string, error) {
	var id, status string
	err := s.fs.activeJob.QueryRowContext(ctx, scheduleID).Scan(&id, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up active job of schedule: %w", err)
	}
	return fmt.Sprintf("job %s of the schedule is still %s", id, status), nil
}

// recordFiring stores the firing's record and keeps the schedule's records bounded. count is
// the schedule's record count with this one when takeFireTime counted it already, else 0.
func (s *Store) recordFiring(ctx context.Context, p store.AdmitParams, outcome pipeline.FiringOutcome, detail, jobID string, count int) error {
	f := p.Firing
	if _, err := s.fs.insert.ExecContext(ctx, f.ScheduleID, nanos(f.FireTime), string(f.Kind),
		string(outcome), detail, jobID, nanos(p.Now)); err != nil {
		return fmt.Errorf("record firing: %w", err)
	}
	if count == 0 {
		if err := s.fs.count.QueryRowContext(ctx, f.ScheduleID, nanos(p.Now)).Scan(&count); err != nil {
			return fmt.Errorf("count firings: %w", err)
		}
	}
	if count < store.KeptFirings+pruneMargin {
		return nil
	}
	if _, err := s.fs.prune.ExecContext(ctx, f.ScheduleID, store.KeptFirings-1); err != nil {
		return fmt.Errorf("prune firings: %w", err)
	}
	if _, err := s.fs.recount.ExecContext(ctx, f.ScheduleID); err != nil {
		return fmt.Errorf("prune firings: %w", err)
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
	err = s.groupTx(ctx, func(ctx context.Context) error {
		r, err := s.wconn.ExecContext(ctx, `INSERT INTO schedules (id, spec, created_at) VALUES (?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, id, string(text), nanos(now))
		if err := changedOne(r, err, pipeline.ErrScheduleExists); err != nil {
			return err
		}
		// A state left from an earlier schedule of the ID keeps no cursor before now.
		_, err = s.wconn.ExecContext(ctx, `INSERT INTO schedule_states (id, cursor) VALUES (?1, ?2)
			ON CONFLICT (id) DO UPDATE SET cursor = ?2 WHERE cursor IS NULL OR cursor < ?2`, id, nanos(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	return nil
}

// changedOne returns the error of an Exec (r, err), or errNone when it changed no row.
func changedOne(r sql.Result, err error, errNone error) error {
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
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
	err = s.groupTx(ctx, func(ctx context.Context) error {
		r, err := s.wconn.ExecContext(ctx, `UPDATE schedules SET spec = ? WHERE id = ?`, string(text), id)
		return changedOne(r, err, pipeline.ErrScheduleNotFound)
	})
	if err != nil {
		return fmt.Errorf("update schedule %s: %w", id, err)
	}
	return nil
}

// DeleteSchedule implements store.Store.
func (s *Store) DeleteSchedule(ctx context.Context, id string) error {
	err := s.groupTx(ctx, func(ctx context.Context) error {
		r, err := s.wconn.ExecContext(ctx, `DELETE FROM schedules WHERE id = ?`, id)
		if err := changedOne(r, err, pipeline.ErrScheduleNotFound); err != nil {
			return err
		}
		if _, err := s.wconn.ExecContext(ctx, `DELETE FROM schedule_states WHERE id = ?`, id); err != nil {
			return err
		}
		_, err = s.wconn.ExecContext(ctx, `DELETE FROM schedule_firings WHERE schedule_id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}

// APISchedules implements store.Store.
func (s *Store) APISchedules(ctx context.Context) ([]pipeline.ScheduleSpec, error) {
	specs := []pipeline.ScheduleSpec{}
	err := scanRows(s.read.QueryContext(ctx, `SELECT id, spec FROM schedules ORDER BY id`))(func(rows *sql.Rows) error {
		var id, text string
		if err := rows.Scan(&id, &text); err != nil {
			return err
		}
		var spec pipeline.ScheduleSpec
		if err := unmarshalJSON(text, &spec); err != nil {
			return fmt.Errorf("schedule %s: decode: %w", id, err)
		}
		specs = append(specs, spec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return specs, nil
}

// scanRows returns a function that calls fn for each row of a query's result (rows, err) and
// closes it.
func scanRows(rows *sql.Rows, err error) func(fn func(*sql.Rows) error) error {
	return func(fn func(*sql.Rows) error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
}

// EnsureScheduleStates implements store.Store: one statement for any number of IDs (a JSON
// array expanded by json_each), in one transaction.
func (s *Store) EnsureScheduleStates(ctx context.Context, ids []string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("ensure schedule states: %w", err)
	}
	err = s.groupTx(ctx, func(ctx context.Context) error {
		// "WHERE true" tells the parser that ON CONFLICT belongs to the INSERT, not to a join.
		_, err := s.wconn.ExecContext(ctx, `INSERT INTO schedule_states (id, cursor)
			SELECT value, ? FROM json_each(?) WHERE true ON CONFLICT (id) DO NOTHING`, nanos(now), string(list))
		return err
	})
	if err != nil {
		return fmt.Errorf("ensure schedule states: %w", err)
	}
	return nil
}

// ScheduleStates implements store.Store.
func (s *Store) ScheduleStates(ctx context.Context) (map[string]pipeline.ScheduleState, error) {
	states := map[string]pipeline.ScheduleState{}
	err := scanRows(s.read.QueryContext(ctx, `SELECT id, paused, pause_note, paused_at, cursor FROM schedule_states`))(func(rows *sql.Rows) error {
		var (
			st                     pipeline.ScheduleState
			paused, pausedAt, curs intCol
		)
		if err := rows.Scan(&st.ID, &paused, &st.PauseNote, &pausedAt, &curs); err != nil {
			return err
		}
		st.Paused, st.PausedAt, st.Cursor = paused.V != 0, timeOf(pausedAt), timeOf(curs)
		states[st.ID] = st
		return nil
	})
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
	err := s.groupTx(ctx, func(ctx context.Context) error {
		_, err := s.wconn.ExecContext(ctx, `INSERT INTO schedule_states (id, paused, pause_note, paused_at, cursor)
			VALUES (?1, ?2, ?3, ?4, ?5)
			ON CONFLICT (id) DO UPDATE SET paused = excluded.paused, pause_note = excluded.pause_note,
				paused_at = CASE WHEN excluded.paused AND paused THEN paused_at ELSE excluded.paused_at END`,
			id, paused, note, pausedAt, nanos(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("pause schedule %s: %w", id, err)
	}
	return nil
}

// AdvanceScheduleCursor implements store.Store. A schedule without a state gets one at t.
func (s *Store) AdvanceScheduleCursor(ctx context.Context, id string, t time.Time) error {
	err := s.groupTx(ctx, func(ctx context.Context) error {
		_, err := s.fs.advance.ExecContext(ctx, id, nanos(t))
		return err
	})
	if err != nil {
		return fmt.Errorf("advance cursor of schedule %s: %w", id, err)
	}
	return nil
}

// firingColumns selects a firing (alias f) with the current status of its job (alias j, joined
// by ID; NULL when retention deleted it), in scanFiring's order.
const firingColumns = `f.schedule_id, f.fire_time, f.kind, f.outcome, f.detail, f.job_id,
	COALESCE(j.status, ''), f.recorded`

// firingJoin joins each firing to its job, when it has one.
const firingJoin = ` LEFT JOIN jobs j ON f.job_id <> '' AND j.id = f.job_id`

func scanFiring(rows *sql.Rows) (pipeline.ScheduleFiring, error) {
	var (
		f                  pipeline.ScheduleFiring
		fireTime, recorded intCol
		kind, outcome, st  string
	)
	if err := rows.Scan(&f.ScheduleID, &fireTime, &kind, &outcome, &f.Detail, &f.JobID, &st, &recorded); err != nil {
		return f, err
	}
	f.FireTime, f.Recorded = timeOf(fireTime), timeOf(recorded)
	f.Kind, f.Outcome, f.JobStatus = pipeline.FiringKind(kind), pipeline.FiringOutcome(outcome), pipeline.JobStatus(st)
	return f, nil
}

// ScheduleFirings implements store.Store.
func (s *Store) ScheduleFirings(ctx context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	firings := []pipeline.ScheduleFiring{}
	err := scanRows(s.read.QueryContext(ctx, `SELECT `+firingColumns+` FROM schedule_firings f`+firingJoin+`
		WHERE f.schedule_id = ? ORDER BY f.fire_time DESC LIMIT ?`, id, limit))(func(rows *sql.Rows) error {
		f, err := scanFiring(rows)
		firings = append(firings, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("firings of schedule %s: %w", id, err)
	}
	return firings, nil
}

// lastFiringsQuery selects the newest firing of every schedule. CROSS JOIN makes the states the
// outer loop (SQLite does not reorder it); each finds its newest record with a probe of the key.
const lastFiringsQuery = `SELECT ` + firingColumns + ` FROM schedule_states st
	CROSS JOIN schedule_firings f ON f.schedule_id = st.id AND f.fire_time =
		(SELECT max(fire_time) FROM schedule_firings WHERE schedule_id = st.id)` + firingJoin

// LastFirings implements store.Store. Every schedule with firings has a state (a firing gives it
// one), so the query looks up the newest firing of each state: one primary-key probe per
// schedule, not a scan of every record.
func (s *Store) LastFirings(ctx context.Context) (map[string]pipeline.ScheduleFiring, error) {
	last := map[string]pipeline.ScheduleFiring{}
	err := scanRows(s.read.QueryContext(ctx, lastFiringsQuery))(func(rows *sql.Rows) error {
		f, err := scanFiring(rows)
		last[f.ScheduleID] = f
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("last firings: %w", err)
	}
	return last, nil
}
