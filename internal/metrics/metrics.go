// Package metrics exposes prunner's Prometheus metrics: counters and histograms fed by the
// runner's events, and gauges (running jobs, wait-list length) read from the runner when
// Prometheus scrapes.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// PipelineSource is what the gauges read at scrape time: the loaded pipelines with their counts.
// It is declared here, with its consumer; *runner.Runner implements it.
type PipelineSource interface {
	Pipelines(ctx context.Context) ([]pipeline.Info, error)
}

// Metrics is the runner's observer and the /metrics handler.
type Metrics struct {
	registry *prometheus.Registry
	// runtimeOnce registers the Go runtime and process collectors at the first scrape: they
	// describe dozens of metrics, which is wasted work for a server start-up until Prometheus
	// asks, and they read their values at scrape time anyway.
	runtimeOnce   sync.Once
	jobsFinished  *prometheus.CounterVec
	jobDuration   *prometheus.HistogramVec
	taskDuration  *prometheus.HistogramVec
	rejections    *prometheus.CounterVec
	tasksFinished *prometheus.CounterVec
}

// durationBuckets spans a builtin task (well under a millisecond) to long jobs (an hour).
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600}

// New creates the metrics. The gauges are given to Handler rather than here: the runner is both
// the metrics' observer (so it is created after them) and the gauges' source.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prunner_jobs_finished_total",
			Help: "Jobs that ended, by pipeline and final status (succeeded, failed, canceled).",
		}, []string{"pipeline", "status"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prunner_job_duration_seconds",
			Help:    "Time from a job's start to its end, by pipeline and final status.",
			Buckets: durationBuckets,
		}, []string{"pipeline", "status"}),
		tasksFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prunner_tasks_finished_total",
			Help: "Tasks that ended, by pipeline and status (done, error, canceled).",
		}, []string{"pipeline", "status"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prunner_task_duration_seconds",
			Help:    "Time from a task's start to its end, by pipeline.",
			Buckets: durationBuckets,
		}, []string{"pipeline"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prunner_schedule_rejections_total",
			Help: "Schedule requests refused, by pipeline and reason (queue_full, no_queue, unknown_pipeline, shutting_down).",
		}, []string{"pipeline", "reason"}),
	}
	m.registry.MustRegister(m.jobsFinished, m.jobDuration, m.tasksFinished, m.taskDuration, m.rejections)
	return m
}

// Handler serves the metrics in the Prometheus text format, with the running and waiting gauges
// read from src at scrape time (none when src is nil).
func (m *Metrics) Handler(src PipelineSource) http.Handler {
	gauges := prometheus.NewRegistry()
	if src != nil {
		gauges.MustRegister(&gaugeCollector{source: src})
	}
	h := promhttp.HandlerFor(prometheus.Gatherers{m.registry, gauges}, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.runtimeOnce.Do(func() {
			m.registry.MustRegister(
				collectors.NewGoCollector(),
				collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			)
		})
		h.ServeHTTP(w, r)
	})
}

// ScheduleRejected counts a refused schedule request.
func (m *Metrics) ScheduleRejected(pipeline, reason string) {
	m.rejections.WithLabelValues(pipeline, reason).Inc()
}

// JobFinished counts a finished job and observes its duration.
func (m *Metrics) JobFinished(p string, status pipeline.JobStatus, d time.Duration) {
	m.jobsFinished.WithLabelValues(p, string(status)).Inc()
	m.jobDuration.WithLabelValues(p, string(status)).Observe(d.Seconds())
}

// TaskFinished counts a finished task and observes its duration.
func (m *Metrics) TaskFinished(p string, status pipeline.TaskStatus, d time.Duration) {
	m.tasksFinished.WithLabelValues(p, string(status)).Inc()
	m.taskDuration.WithLabelValues(p).Observe(d.Seconds())
}

// gaugeCollector reports the running and waiting jobs per pipeline at scrape time, so the values
// come from the store (the truth) rather than from counters that a restart would reset.
type gaugeCollector struct {
	source PipelineSource
}

var (
	runningDesc = prometheus.NewDesc("prunner_jobs_running", "Jobs running now, by pipeline.", []string{"pipeline"}, nil)
	waitingDesc = prometheus.NewDesc("prunner_wait_list_length", "Jobs on the wait list now, by pipeline.", []string{"pipeline"}, nil)
	upDesc      = prometheus.NewDesc("prunner_store_up", "1 when the store answered the scrape's query.", nil, nil)
)

func (g *gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runningDesc
	ch <- waitingDesc
	ch <- upDesc
}

func (g *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	infos, err := g.source.Pipelines(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	for _, p := range infos {
		ch <- prometheus.MustNewConstMetric(runningDesc, prometheus.GaugeValue, float64(p.RunningJobs), p.Name)
		ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(p.WaitingJobs), p.Name)
	}
}
