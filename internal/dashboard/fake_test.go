package dashboard

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// fakeRunner is an in-memory Runner for the handler tests.
type fakeRunner struct {
	mu        sync.Mutex
	pipelines []pipeline.Info
	jobs      map[string]*pipeline.Job
	// seq orders jobs by creation (the store's cursor order).
	seq  map[string]int
	next int
	// logs holds each stream's output by "job/task/stream".
	logs map[string]string
	// live, when set for "job/task", feeds FollowLog after the stored output.
	live map[string]chan pipeline.LogChunk
	wait map[string]*pipeline.WaitInfo

	scheduleErr error
	newID       string
	scheduled   []pipeline.ScheduleRequest
	canceled    []string
	queries     []store.JobQuery
	follows     []map[pipeline.LogStream]int64
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{
		jobs: map[string]*pipeline.Job{},
		seq:  map[string]int{},
		logs: map[string]string{},
		live: map[string]chan pipeline.LogChunk{},
		wait: map[string]*pipeline.WaitInfo{},
	}
}

func (f *fakeRunner) addJob(j *pipeline.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[j.ID] = j
	if _, ok := f.seq[j.ID]; !ok {
		f.next++
		f.seq[j.ID] = f.next
	}
}

// update changes a stored job under the lock.
func (f *fakeRunner) update(id string, fn func(j *pipeline.Job)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.jobs[id])
}

func (f *fakeRunner) setLog(job, task string, stream pipeline.LogStream, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[job+"/"+task+"/"+string(stream)] = text
}

func (f *fakeRunner) Schedule(_ context.Context, req pipeline.ScheduleRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.scheduleErr != nil {
		return "", f.scheduleErr
	}
	known := false
	for _, p := range f.pipelines {
		known = known || p.Name == req.Pipeline
	}
	if !known {
		return "", fmt.Errorf("schedule %q: %w", req.Pipeline, pipeline.ErrUnknownPipeline)
	}
	f.scheduled = append(f.scheduled, req)
	id := f.newID
	if id == "" {
		id = fmt.Sprintf("new-%d", len(f.scheduled))
	}
	return id, nil
}

func (f *fakeRunner) Cancel(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	switch {
	case !ok:
		return fmt.Errorf("cancel %s: %w", id, pipeline.ErrJobNotFound)
	case j.Status == pipeline.JobCanceled:
		return nil
	case j.Status.Final():
		return fmt.Errorf("cancel %s: %w", id, pipeline.ErrJobFinished)
	}
	f.canceled = append(f.canceled, id)
	j.Status = pipeline.JobCanceled
	return nil
}

func copyJob(j *pipeline.Job) *pipeline.Job {
	cp := *j
	cp.Tasks = append([]pipeline.Task(nil), j.Tasks...)
	return &cp
}

func (f *fakeRunner) Job(_ context.Context, id string) (*pipeline.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %s: %w", id, pipeline.ErrJobNotFound)
	}
	return copyJob(j), nil
}

// Jobs pages like the store: newest first, Before is a job ID cursor.
func (f *fakeRunner) Jobs(_ context.Context, q store.JobQuery) ([]*pipeline.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	var out []*pipeline.Job
	for _, j := range f.jobs {
		if q.Pipeline != "" && j.Pipeline != q.Pipeline {
			continue
		}
		if len(q.Statuses) > 0 {
			ok := false
			for _, s := range q.Statuses {
				ok = ok || s == j.Status
			}
			if !ok {
				continue
			}
		}
		if q.Before != "" && f.seq[j.ID] >= f.seq[q.Before] {
			continue
		}
		cp := copyJob(j)
		if q.WithoutTasks {
			cp.Tasks = nil
		}
		out = append(out, cp)
	}
	sort.Slice(out, func(a, b int) bool { return f.seq[out[a].ID] > f.seq[out[b].ID] })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (f *fakeRunner) Pipelines(context.Context) ([]pipeline.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pipeline.Info(nil), f.pipelines...), nil
}

func (f *fakeRunner) OpenLog(_ context.Context, id, task string, stream pipeline.LogStream) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return nil, pipeline.ErrJobNotFound
	}
	if j.Task(task) == nil {
		return nil, pipeline.ErrTaskNotFound
	}
	return io.NopCloser(strings.NewReader(f.logs[id+"/"+task+"/"+string(stream)])), nil
}

// FollowLog sends the stored output from the offsets, then what the test feeds into live.
func (f *fakeRunner) FollowLog(ctx context.Context, id, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error) {
	f.mu.Lock()
	j, ok := f.jobs[id]
	if !ok {
		f.mu.Unlock()
		return nil, pipeline.ErrJobNotFound
	}
	if j.Task(task) == nil {
		f.mu.Unlock()
		return nil, pipeline.ErrTaskNotFound
	}
	f.follows = append(f.follows, map[pipeline.LogStream]int64{pipeline.Stdout: from[pipeline.Stdout], pipeline.Stderr: from[pipeline.Stderr]})
	var chunks []pipeline.LogChunk
	for _, s := range []pipeline.LogStream{pipeline.Stdout, pipeline.Stderr} {
		text := f.logs[id+"/"+task+"/"+string(s)]
		if off := from[s]; off < int64(len(text)) {
			chunks = append(chunks, pipeline.LogChunk{Stream: s, Offset: off, Data: []byte(text[off:])})
		}
	}
	live := f.live[id+"/"+task]
	f.live[id+"/"+task] = nil
	f.mu.Unlock()
	out := make(chan pipeline.LogChunk)
	go func() {
		defer close(out)
		for _, c := range chunks {
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
		if live == nil {
			return
		}
		for {
			select {
			case c, ok := <-live:
				if !ok {
					return
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *fakeRunner) WaitInfo(_ context.Context, id string) (*pipeline.WaitInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wait[id], nil
}

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func tp(t time.Time) *time.Time { return &t }
