package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// A finished job never changes, so the transaction that ends it also stores its whole record —
// the job and its tasks, without the definition — in one compact binary column
// (jobs.final_record). A list of thousands of finished jobs then reads one value per job instead
// of some fifty columns over two tables: the per-value cost of the driver, not SQLite, is what
// makes a list of 10,000 jobs slow.
//
// The record is a cache of the columns, never the only copy: every job row and task row stays
// complete. The triggers of migration 0004 drop the record when a column it holds changes (a
// late task update of a finished job), and readers fall back to the columns for a job without
// one.

// recordsVersion is the schema version (migration 0004) that added the records.
const recordsVersion = 4

// recordVersion is the first byte of every record; a record of another version is ignored
// (the columns are read instead).
const recordVersion = 1

// Flags of a job in its record.
const (
	recErrored = 1 << iota
	recCreated
	recStartAfter
	recStart
	recEnd
	recVariables
	// Since migration 0005: a job started by a schedule. Records written before have neither
	// flag and decode as jobs without a schedule.
	recSchedule
	recScheduledFor
)

// Flags of a task in its record.
const (
	recTaskErrored = 1 << iota
	recTaskStart
	recTaskEnd
	recTaskDeps
	recTaskAttempts
)

// encodeRecord returns the record of j (which must be complete: read back from the columns).
func encodeRecord(j *pipeline.Job) ([]byte, error) {
	b := make([]byte, 0, 128+64*len(j.Tasks))
	b = append(b, recordVersion)
	var flags byte
	if j.Errored {
		flags |= recErrored
	}
	if !j.Created.IsZero() {
		flags |= recCreated
	}
	if !j.StartAfter.IsZero() {
		flags |= recStartAfter
	}
	if j.Start != nil {
		flags |= recStart
	}
	if j.End != nil {
		flags |= recEnd
	}
	if j.Variables != nil {
		flags |= recVariables
	}
	if j.Schedule != "" {
		flags |= recSchedule
	}
	if j.ScheduledFor != nil {
		flags |= recScheduledFor
	}
	b = append(b, flags)
	for _, s := range []string{j.ID, j.Pipeline, string(j.Status), j.User, j.QueuePartition, j.LastError, j.ReplacedBy} {
		b = appendString(b, s)
	}
	if !j.Created.IsZero() {
		b = binary.AppendVarint(b, j.Created.UnixNano())
	}
	if !j.StartAfter.IsZero() {
		b = binary.AppendVarint(b, j.StartAfter.UnixNano())
	}
	if j.Start != nil {
		b = binary.AppendVarint(b, j.Start.UnixNano())
	}
	if j.End != nil {
		b = binary.AppendVarint(b, j.End.UnixNano())
	}
	if j.Variables != nil {
		vars, err := encodeVariables(j.Variables)
		if err != nil {
			return nil, err
		}
		b = appendString(b, vars.(string))
	}
	if j.Schedule != "" {
		b = appendString(b, j.Schedule)
	}
	if j.ScheduledFor != nil {
		b = binary.AppendVarint(b, j.ScheduledFor.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(j.Tasks)))
	for _, t := range j.Tasks {
		var tf byte
		if t.Errored {
			tf |= recTaskErrored
		}
		if t.Start != nil {
			tf |= recTaskStart
		}
		if t.End != nil {
			tf |= recTaskEnd
		}
		if t.DependsOn != nil {
			tf |= recTaskDeps
		}
		if t.Attempts != nil {
			tf |= recTaskAttempts
		}
		b = append(b, tf)
		b = appendString(b, t.Name)
		b = appendString(b, string(t.Status))
		b = appendString(b, t.Error)
		b = binary.AppendVarint(b, int64(t.ExitCode))
		b = binary.AppendVarint(b, int64(t.Attempt))
		if t.Start != nil {
			b = binary.AppendVarint(b, t.Start.UnixNano())
		}
		if t.End != nil {
			b = binary.AppendVarint(b, t.End.UnixNano())
		}
		if t.DependsOn != nil {
			b = binary.AppendUvarint(b, uint64(len(t.DependsOn)))
			for _, d := range t.DependsOn {
				b = appendString(b, d)
			}
		}
		if t.Attempts != nil {
			e, err := encodeTask(pipeline.Task{Attempts: t.Attempts})
			if err != nil {
				return nil, err
			}
			b = appendString(b, e.attempts.(string))
		}
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errBadRecord reports a record that cannot be decoded (truncated or of another version).
var errBadRecord = errors.New("malformed job record")

// recordReader reads a record. It holds the record as one string, so that every string of
// the job is a substring of it: one allocation per job instead of one per field.
type recordReader struct {
	s   string
	pos int
	err error
}

func (r *recordReader) byte() byte {
	if r.err != nil || r.pos >= len(r.s) {
		r.err = errBadRecord
		return 0
	}
	c := r.s[r.pos]
	r.pos++
	return c
}

func (r *recordReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if r.pos >= len(r.s) {
			break
		}
		c := r.s[r.pos]
		r.pos++
		if c < 0x80 {
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.err = errBadRecord
	return 0
}

func (r *recordReader) varint() int64 {
	ux := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (r *recordReader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)-r.pos) {
		r.err = errBadRecord
		return ""
	}
	s := r.s[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s
}

// decodeRecord decodes a record into a job allocated from a (tasks from b). With varsAsJSON the
// job gets VariablesJSON instead of Variables.
func decodeRecord(raw []byte, a *arena, b *taskBlocks, varsAsJSON bool) (*pipeline.Job, error) {
	if len(raw) == 0 || raw[0] != recordVersion {
		return nil, errBadRecord
	}
	r := recordReader{s: string(raw), pos: 1}
	j := a.job()
	flags := r.byte()
	j.ID = r.string()
	j.Pipeline = r.string()
	j.Status = pipeline.JobStatus(r.string())
	j.User = r.string()
	j.QueuePartition = r.string()
	j.LastError = r.string()
	j.ReplacedBy = r.string()
	j.Errored = flags&recErrored != 0
	if flags&recCreated != 0 {
		j.Created = time.Unix(0, r.varint()).UTC()
	}
	if flags&recStartAfter != 0 {
		j.StartAfter = time.Unix(0, r.varint()).UTC()
	}
	if flags&recStart != 0 {
		j.Start = a.time(intCol{V: r.varint(), Valid: true})
	}
	if flags&recEnd != 0 {
		j.End = a.time(intCol{V: r.varint(), Valid: true})
	}
	if flags&recVariables != 0 {
		vars := r.string()
		if varsAsJSON {
			j.VariablesJSON = vars
		} else if r.err == nil {
			var err error
			if j.Variables, err = decodeVariables(sql.NullString{String: vars, Valid: true}); err != nil {
				return nil, fmt.Errorf("job %s: %w", j.ID, err)
			}
		}
	}
	if flags&recSchedule != 0 {
		j.Schedule = r.string()
	}
	if flags&recScheduledFor != 0 {
		j.ScheduledFor = a.time(intCol{V: r.varint(), Valid: true})
	}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.s)) {
		return nil, errBadRecord
	}
	for range n {
		tf := r.byte()
		t := pipeline.Task{
			Name:   r.string(),
			Status: pipeline.TaskStatus(r.string()),
			Error:  r.string(),
		}
		t.ExitCode = int(r.varint())
		t.Attempt = int(r.varint())
		t.Errored = tf&recTaskErrored != 0
		if tf&recTaskStart != 0 {
			t.Start = a.time(intCol{V: r.varint(), Valid: true})
		}
		if tf&recTaskEnd != 0 {
			t.End = a.time(intCol{V: r.varint(), Valid: true})
		}
		if tf&recTaskDeps != 0 {
			nd := r.uvarint()
			if r.err != nil || nd > uint64(len(r.s)) {
				return nil, errBadRecord
			}
			t.DependsOn = make([]string, nd)
			for i := range t.DependsOn {
				t.DependsOn[i] = r.string()
			}
		}
		if tf&recTaskAttempts != 0 {
			text := r.string()
			if r.err == nil {
				var err error
				if t.Attempts, err = decodeAttempts(sql.NullString{String: text, Valid: true}); err != nil {
					return nil, fmt.Errorf("job %s: task %q: %w", j.ID, t.Name, err)
				}
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		b.add(t)
	}
	if r.err != nil {
		return nil, r.err
	}
	if n > 0 {
		j.Tasks = b.take()
	}
	return j, nil
}

// writeRecords stores the record of each of the jobs with the given seqs (ascending), inside a
// write transaction, after the transaction has made them final.
func (s *Store) writeRecords(ctx context.Context, seqs []int64) error {
	for _, seq := range seqs {
		j, err := s.jobWithTasks(ctx, s.ws.recordJob, seq)
		if err != nil {
			return fmt.Errorf("read finished job: %w", err)
		}
		if !j.Status.Final() {
			continue
		}
		rec, err := encodeRecord(j)
		if err != nil {
			return fmt.Errorf("job %s: record: %w", j.ID, err)
		}
		if _, err := s.ws.setRecord.ExecContext(ctx, rec, seq); err != nil {
			return fmt.Errorf("job %s: store record: %w", j.ID, err)
		}
	}
	return nil
}

// backfillRecords stores the records of the finished jobs that have none (jobs finished before
// migration 0004, or whose record a late update dropped), in batches, inside a write
// transaction.
func (s *Store) backfillRecords(ctx context.Context) error {
	if s.migratedFrom == 0 {
		return nil // a new file has no jobs
	}
	rows, err := s.wconn.QueryContext(ctx, `SELECT seq FROM jobs
		WHERE final_record IS NULL AND status IN `+finalJobStatuses+` ORDER BY seq`)
	if err != nil {
		return err
	}
	var seqs []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return err
		}
		seqs = append(seqs, seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for len(seqs) > 0 {
		n := min(len(seqs), 500)
		if err := s.writeRecords(ctx, seqs[:n]); err != nil {
			return err
		}
		seqs = seqs[n:]
	}
	return nil
}
