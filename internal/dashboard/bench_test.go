package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"github.com/prunner-dev/prunner/internal/auth"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// storeRunner serves jobs from a real store, for the benchmarks.
type storeRunner struct {
	st   store.Store
	defs []pipeline.Info
	log  []byte
}

func (r *storeRunner) Schedule(context.Context, pipeline.ScheduleRequest) (string, error) {
	return "", errors.New("not in benchmarks")
}
func (r *storeRunner) Cancel(context.Context, string) error { return errors.New("not in benchmarks") }
func (r *storeRunner) Job(ctx context.Context, id string) (*pipeline.Job, error) {
	return r.st.Job(ctx, id)
}
func (r *storeRunner) Jobs(ctx context.Context, q store.JobQuery) ([]*pipeline.Job, error) {
	return r.st.Jobs(ctx, q)
}
func (r *storeRunner) Pipelines(context.Context) ([]pipeline.Info, error) { return r.defs, nil }
func (r *storeRunner) OpenLog(context.Context, string, string, pipeline.LogStream) (io.ReadCloser, error) {
	return struct {
		*bytes.Reader
		io.Closer
	}{bytes.NewReader(r.log), io.NopCloser(nil)}, nil
}
func (r *storeRunner) FollowLog(context.Context, string, string, map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error) {
	ch := make(chan pipeline.LogChunk)
	close(ch)
	return ch, nil
}
func (r *storeRunner) WaitInfo(context.Context, string) (*pipeline.WaitInfo, error) { return nil, nil }

// benchDefinition is a 6-task DAG: checkout → {build, lint} → test → {package, docs}.
func benchDefinition() *pipeline.Definition {
	return &pipeline.Definition{Name: "release", Concurrency: 1 << 20, QueueStrategy: pipeline.QueueAppend,
		Tasks: map[string]pipeline.TaskDefinition{
			"checkout": {Name: "checkout"},
			"build":    {Name: "build", DependsOn: []string{"checkout"}},
			"lint":     {Name: "lint", DependsOn: []string{"checkout"}},
			"test":     {Name: "test", DependsOn: []string{"build", "lint"}},
			"package":  {Name: "package", DependsOn: []string{"test"}},
			"docs":     {Name: "docs", DependsOn: []string{"test"}},
		}}
}

// benchApp opens a SQLite store with 10,000 finished jobs of 6 tasks and returns the app and
// the newest job's ID, whose tasks carry real times.
func benchApp(b *testing.B) (*fiber.App, string) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "prunner.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	def := benchDefinition()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 10000
	var last string
	for i := range n {
		created := start.Add(time.Duration(i) * time.Minute)
		j := &pipeline.Job{
			ID:         fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Pipeline:   def.Name,
			Created:    created,
			User:       "ci",
			Variables:  map[string]any{"branch": "main", "build": json.Number(strconv.Itoa(i))},
			Definition: def,
			Tasks:      pipeline.NewJobTasks(def),
		}
		if _, err := st.Admit(ctx, store.AdmitParams{Job: j, Definition: def, Now: created}); err != nil {
			b.Fatalf("Admit: %v", err)
		}
		if i == n-1 {
			at := created
			for _, t := range j.Tasks {
				s, e := at, at.Add(7*time.Second)
				t.Status, t.Start, t.End = pipeline.TaskDone, &s, &e
				if err := st.UpdateTask(ctx, j.ID, t); err != nil {
					b.Fatalf("UpdateTask: %v", err)
				}
				at = e
			}
		}
		status := pipeline.JobSucceeded
		if i%7 == 0 {
			status = pipeline.JobFailed
		}
		if err := st.FinishJob(ctx, store.FinishParams{JobID: j.ID, Status: status, End: created.Add(40 * time.Second),
			PendingTasks: pipeline.TaskDone, RunningTasks: pipeline.TaskCanceled}); err != nil {
			b.Fatalf("FinishJob: %v", err)
		}
		last = j.ID
	}
	var log strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&log, "step %d: compiling package %d of 2000 <ok>\n", i, i)
	}
	r := &storeRunner{st: st, defs: []pipeline.Info{{Name: def.Name, Schedulable: true, Definition: def}}, log: []byte(log.String())}
	app := fiber.New(fiber.Config{Immutable: true, DisableStartupMessage: true})
	Register(app, Config{Secret: []byte(testSecret)}, r)
	return app, last
}

// benchRequest serves path through the app's handler directly: the server time of a page.
func benchRequest(b *testing.B, app *fiber.App, path string, wantRows int) {
	b.Helper()
	token, err := auth.Mint([]byte(testSecret), jwt.MapClaims{"sub": "bench"})
	if err != nil {
		b.Fatal(err)
	}
	h := app.Handler()
	var fctx fasthttp.RequestCtx
	serve := func() {
		fctx.Request.Reset()
		fctx.Response.Reset()
		fctx.Request.SetRequestURI(path)
		fctx.Request.Header.SetCookie(jwtCookie, token)
		fctx.Request.Header.Set("Accept", "text/html")
		h(&fctx)
	}
	serve()
	if got := fctx.Response.StatusCode(); got != fiber.StatusOK {
		b.Fatalf("GET %s = %d: %s", path, got, fctx.Response.Body())
	}
	if got := bytes.Count(fctx.Response.Body(), []byte(`data-testid="job-row"`)); got != wantRows {
		b.Fatalf("GET %s: %d job rows, want %d", path, got, wantRows)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serve()
	}
	b.ReportMetric(float64(len(fctx.Response.Body())), "bytes/page")
}

// BenchmarkJobsPage renders the first page of the jobs list with 10,000 jobs in history.
func BenchmarkJobsPage(b *testing.B) {
	app, _ := benchApp(b)
	benchRequest(b, app, "/ui/jobs", 50)
}

// BenchmarkJobsPageFiltered renders a filtered older page (cursor in the middle of history).
func BenchmarkJobsPageFiltered(b *testing.B) {
	app, _ := benchApp(b)
	benchRequest(b, app, "/ui/jobs?pipeline=release&status=failed&before=00000000-0000-4000-8000-000000005000", 50)
}

// BenchmarkJobPage renders a job page (graph, timeline, task list, log tail of 2,000 lines)
// with 10,000 jobs in history.
func BenchmarkJobPage(b *testing.B) {
	app, id := benchApp(b)
	benchRequest(b, app, "/ui/jobs/"+id, 0)
}

// BenchmarkPipelinesPage renders the pipelines page with 10,000 jobs in history.
func BenchmarkPipelinesPage(b *testing.B) {
	app, _ := benchApp(b)
	benchRequest(b, app, "/ui/", 0)
}
