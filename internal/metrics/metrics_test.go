package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// pipelines is a PipelineSource that answers with infos, or with err.
type pipelines struct {
	infos []pipeline.Info
	err   error
}

func (p pipelines) Pipelines(context.Context) ([]pipeline.Info, error) { return p.infos, p.err }

func scrape(t *testing.T, m *Metrics, src PipelineSource) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestMetricsContent(t *testing.T) {
	t.Parallel()
	m := New()
	src := pipelines{infos: []pipeline.Info{{Name: "release", RunningJobs: 2, WaitingJobs: 5}}}
	m.JobFinished("release", pipeline.JobSucceeded, 1500*time.Millisecond)
	m.JobFinished("release", pipeline.JobFailed, time.Second)
	m.TaskFinished("release", pipeline.TaskDone, 10*time.Millisecond)
	m.ScheduleRejected("release", "queue_full")
	body := scrape(t, m, src)
	for _, want := range []string{
		`prunner_jobs_finished_total{pipeline="release",status="succeeded"} 1`,
		`prunner_jobs_finished_total{pipeline="release",status="failed"} 1`,
		`prunner_job_duration_seconds_count{pipeline="release",status="succeeded"} 1`,
		`prunner_job_duration_seconds_sum{pipeline="release",status="succeeded"} 1.5`,
		`prunner_tasks_finished_total{pipeline="release",status="done"} 1`,
		`prunner_task_duration_seconds_count{pipeline="release"} 1`,
		`prunner_schedule_rejections_total{pipeline="release",reason="queue_full"} 1`,
		`prunner_jobs_running{pipeline="release"} 2`,
		`prunner_wait_list_length{pipeline="release"} 5`,
		`prunner_store_up 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMetricsStoreDown(t *testing.T) {
	t.Parallel()
	m := New()
	if body := scrape(t, m, pipelines{err: errors.New("down")}); !strings.Contains(body, "prunner_store_up 0") {
		t.Errorf("store failure not reported:\n%s", body)
	}
}

func TestMetricsWithoutSourceLeaveGaugesOut(t *testing.T) {
	t.Parallel()
	m := New()
	m.ScheduleRejected("release", "no_queue")
	body := scrape(t, m, nil)
	if !strings.Contains(body, `prunner_schedule_rejections_total{pipeline="release",reason="no_queue"} 1`) {
		t.Errorf("counters missing without a gauge source:\n%s", body)
	}
	if strings.Contains(body, "prunner_store_up") {
		t.Errorf("gauges reported without a source:\n%s", body)
	}
}
