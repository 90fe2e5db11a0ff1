// Package legacyimport takes over the history of an original Flowpack/prunner installation: when
// the data directory holds the original's data.json (and its logs/), Run stores its jobs, with
// their IDs, variables, users, times and task records, in our store and makes their task output
// readable in our log layout, so that users who switch keep their history and host applications
// keep working with the job IDs they stored.
//
// Once the jobs are committed, data.json is renamed to data.json.imported: the rename is the
// record that the import happened, so it never runs twice (our retention may delete imported
// jobs later, and they must not come back). Nothing of the original is deleted: the renamed file
// and the original log files stay where they were. A crash between the commit and the rename only
// repeats the import at the next start, which skips the jobs that are already stored.
package legacyimport

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// DataFile is the name of the original's data file inside the data directory.
const DataFile = "data.json"

// ImportedSuffix is appended to DataFile once its jobs are imported.
const ImportedSuffix = ".imported"

// UnfinishedError is the LastError of the jobs that the original left without an end: it
// stopped (crashed or restarted) while they ran or waited. They are imported as failed.
const UnfinishedError = "imported from the original prunner data directory without an end (the original server stopped while it ran or waited)"

// Store is what the import needs of the store.
type Store interface {
	Job(ctx context.Context, jobID string) (*pipeline.Job, error)
	ImportJobs(ctx context.Context, jobs []*pipeline.Job) (int, error)
}

// Result tells what an import did.
type Result struct {
	// Found is the number of jobs in data.json.
	Found int
	// Imported is the number of jobs stored now; Skipped the number already in the store.
	Imported, Skipped int
	// LogFiles is the number of task output files taken over (linked or copied).
	LogFiles int
	// RenamedTo is where data.json was moved ("" when there was nothing to import).
	RenamedTo string
}

// Run imports DATA/data.json of the original prunner into st, once; see the package comment.
// Without a data.json it does nothing. A data.json that cannot be read or decoded is an error
// that names the file and says how to start without it: nothing is imported then, and nothing
// of the user's data is touched.
func Run(ctx context.Context, dataDir string, st Store, log *slog.Logger) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dataDir, DataFile)
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Result{}, nil
	}
	if err != nil {
		return Result{}, importError(path, err)
	}
	if info.IsDir() {
		return Result{}, importError(path, errors.New("is a directory, not the original's data file"))
	}

	data, err := decode(path)
	if err != nil {
		return Result{}, importError(path, err)
	}
	jobs := make([]*pipeline.Job, 0, len(data.Jobs))
	for i := range data.Jobs {
		j, err := convert(&data.Jobs[i])
		if err != nil {
			return Result{}, importError(path, fmt.Errorf("job %d: %w", i+1, err))
		}
		jobs = append(jobs, j)
	}
	// The original writes its jobs in no particular order (it ranges over a map); our store
	// keeps creation order.
	slices.SortStableFunc(jobs, func(a, b *pipeline.Job) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})

	res := Result{Found: len(jobs)}
	fresh := jobs[:0:0]
	for _, j := range jobs {
		_, err := st.Job(ctx, j.ID)
		switch {
		case err == nil:
			res.Skipped++
			continue
		case !errors.Is(err, pipeline.ErrJobNotFound):
			return Result{}, fmt.Errorf("import original prunner data %s: %w", path, err)
		}
		fresh = append(fresh, j)
	}

	// Logs first: once the jobs are committed, their output must be readable. Files taken over
	// for jobs that a failed commit then leaves out are harmless; the next attempt replaces them.
	logs := filepath.Join(dataDir, "logs")
	for _, j := range fresh {
		n, err := takeOverLogs(ctx, logs, j, log)
		res.LogFiles += n
		if err != nil {
			return Result{}, fmt.Errorf("import original prunner data %s: job %s: %w", path, j.ID, err)
		}
	}
	if res.Imported, err = st.ImportJobs(ctx, fresh); err != nil {
		return Result{}, fmt.Errorf("import original prunner data %s: %w", path, err)
	}
	// ImportJobs skips IDs stored in the meantime; count them as skipped too.
	res.Skipped += len(fresh) - res.Imported

	if res.RenamedTo, err = markImported(path); err != nil {
		return Result{}, fmt.Errorf("import original prunner data %s: the %d jobs are imported, but marking the file as imported failed (rename it yourself to %s): %w",
			path, res.Imported, path+ImportedSuffix, err)
	}
	log.Info("imported the history of the original prunner",
		"file", path, "jobs", res.Imported, "skipped", res.Skipped, "log_files", res.LogFiles,
		"renamed_to", res.RenamedTo)
	return res, nil
}

// importError names the file and tells how to start without importing it.
func importError(path string, err error) error {
	return fmt.Errorf("original prunner data file %s: %w (fix or restore the file; to start without importing its history, move it away: mv %s %s.skip)",
		path, err, path, path)
}

// decode reads data.json. Numbers in variables stay json.Number, so that 12345678901 keeps its
// form.
func decode(path string) (*legacyData, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.UseNumber()
	var data legacyData
	if err := dec.Decode(&data); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("decode JSON at byte %d: %w", syntax.Offset, err)
		}
		if errors.Is(err, io.EOF) {
			return nil, errors.New("decode JSON: the file is empty")
		}
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode JSON: unexpected data after the top-level object")
	}
	return &data, nil
}

// convert maps one job of the original to ours.
//
// Statuses: a job with an end that completed or was canceled keeps its outcome: failed when a
// task errored (the original cancels the other tasks after a failure, so this wins over
// canceled), else canceled when canceled, else succeeded. A job canceled before it started
// (canceled or replaced on the wait list) is canceled. Every other job has no end or never
// completed: the original stopped while it ran or waited (and, when it restarted, marked it
// canceled without an end). Those are failed with UnfinishedError, like our own recovery after
// a crash: their running tasks end as errors with that message, their waiting ones skipped.
//
// A job without an end gets the last time the original recorded for it (its creation, start
// or the end of a task), so that retention periods apply to it. The original did not persist
// a job's last error; a failed job gets the error of its first failed task, as ours do.
func convert(lj *legacyJob) (*pipeline.Job, error) {
	if err := checkID(lj.ID); err != nil {
		return nil, err
	}
	j := &pipeline.Job{
		ID:        lj.ID,
		Pipeline:  lj.Pipeline,
		Variables: lj.Variables,
		User:      lj.User,
		Created:   lj.Created.UTC(),
		Start:     utc(lj.Start),
		End:       utc(lj.End),
		Tasks:     make([]pipeline.Task, 0, len(lj.Tasks)),
	}
	if lj.Pipeline == "" {
		return nil, fmt.Errorf("job %s has no pipeline", lj.ID)
	}
	firstFailure := -1
	for i := range lj.Tasks {
		t := convertTask(&lj.Tasks[i])
		j.Tasks = append(j.Tasks, t)
		if t.Errored {
			j.Errored = true
			if firstFailure < 0 || endsBefore(t.End, j.Tasks[firstFailure].End) {
				firstFailure = i
			}
		}
	}

	finished := lj.End != nil && (lj.Completed || lj.Canceled)
	unfinished := false
	switch {
	case finished && j.Errored:
		j.Status = pipeline.JobFailed
		j.LastError = j.Tasks[firstFailure].Error
	case finished && lj.Canceled:
		j.Status = pipeline.JobCanceled
	case finished:
		j.Status = pipeline.JobSucceeded
	case lj.Start == nil && lj.Canceled:
		j.Status = pipeline.JobCanceled
	default:
		unfinished = true
		j.Status = pipeline.JobFailed
		j.Errored = true
		j.LastError = UnfinishedError
	}
	if j.End == nil {
		end := lastRecorded(j)
		j.End = &end
	}

	// Tasks of a finished job that are not final: as FinishJob ends them.
	for i := range j.Tasks {
		t := &j.Tasks[i]
		switch t.Status {
		case pipeline.TaskWaiting:
			t.Status = pipeline.TaskSkipped
		case pipeline.TaskRunning:
			if unfinished {
				t.Status, t.Errored, t.Error = pipeline.TaskError, true, UnfinishedError
			} else {
				t.Status = pipeline.TaskCanceled
			}
			if t.End == nil {
				end := *j.End
				t.End = &end
			}
		}
	}
	return j, nil
}

// convertTask maps one task record of the original to ours.
func convertTask(lt *legacyTask) pipeline.Task {
	t := pipeline.Task{
		Name:      lt.Name,
		DependsOn: lt.DependsOn,
		Start:     utc(lt.Start),
		End:       utc(lt.End),
		ExitCode:  lt.ExitCode,
		Errored:   lt.Errored,
		// The original ran a task at most once.
		Attempt: 1,
	}
	if lt.Error != nil {
		t.Error = *lt.Error
	}
	switch s := pipeline.TaskStatus(lt.Status); {
	case lt.Skipped:
		t.Status = pipeline.TaskSkipped
	case s == pipeline.TaskWaiting || s == pipeline.TaskRunning || s.Final():
		t.Status = s
	case lt.Errored:
		t.Status = pipeline.TaskError
	case lt.End != nil:
		t.Status = pipeline.TaskDone
	case lt.Start != nil:
		t.Status = pipeline.TaskRunning
	default:
		t.Status = pipeline.TaskWaiting
	}
	return t
}

// checkID accepts the IDs that can name a log directory (the original's are UUIDs).
func checkID(id string) error {
	if id == "" {
		return errors.New("a job has no ID")
	}
	if strings.ContainsAny(id, `/\.`+"\x00") {
		return fmt.Errorf("job ID %q is not a valid ID", id)
	}
	return nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// endsBefore orders task ends, unknown ends last.
func endsBefore(a, b *time.Time) bool {
	switch {
	case a == nil:
		return false
	case b == nil:
		return true
	default:
		return a.Before(*b)
	}
}

// lastRecorded returns the latest time recorded for a job: its creation, start, or a task's
// start or end.
func lastRecorded(j *pipeline.Job) time.Time {
	last := j.Created
	later := func(t *time.Time) {
		if t != nil && t.After(last) {
			last = *t
		}
	}
	later(j.Start)
	for i := range j.Tasks {
		later(j.Tasks[i].Start)
		later(j.Tasks[i].End)
	}
	return last
}

// markImported renames data.json to data.json.imported (or .imported.2, … when an earlier
// import left that name) and returns the new path. It never replaces a file. The data directory
// is locked by the server, so no one else takes the name in between.
func markImported(path string) (string, error) {
	for n := 1; n < 1000; n++ {
		dst := path + ImportedSuffix
		if n > 1 {
			dst += "." + strconv.Itoa(n)
		}
		if _, err := os.Lstat(dst); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if err := os.Rename(path, dst); err != nil {
			return "", err
		}
		return dst, nil
	}
	return "", errors.New("no free name for the imported data file")
}
