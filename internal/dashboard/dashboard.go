// Package dashboard serves prunner's web UI: server-rendered templ pages for pipelines, jobs,
// job details with a live DAG graph, timeline and log tail, and the wait lists. It is
// registered on the same Fiber app as the JSON API, below <base>/ui/, and uses the same JWTs:
// a person pastes a token into the login page and gets a session cookie; a host app's proxy may
// send an Authorization header instead.
//
// Every action works as a plain link or form; htmx (vendored in web/static) adds live updates:
// the jobs table polls a fragment, and a job page listens to two SSE streams (its fragments,
// and the selected task's output). Responses carry a Content-Security-Policy that allows only
// the dashboard's own assets.
package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/web"
)

// Runner is what the dashboard needs of the runner. It is declared here, with its consumer;
// *runner.Runner implements it, as the compile-time assertion where cmd/prunner wires the two
// together makes sure.
type Runner interface {
	// Schedule admits a new job and returns its ID. Errors: wrapped
	// pipeline.ErrUnknownPipeline, ErrQueueFull, ErrNoQueue, ErrShuttingDown.
	Schedule(ctx context.Context, req pipeline.ScheduleRequest) (jobID string, err error)
	// Cancel cancels a queued or running job (pipeline.ErrJobNotFound, ErrJobFinished).
	Cancel(ctx context.Context, jobID string) error
	// Job returns one job, or pipeline.ErrJobNotFound.
	Job(ctx context.Context, jobID string) (*pipeline.Job, error)
	// Jobs lists jobs newest first; the dashboard always pages (Limit and Before).
	Jobs(ctx context.Context, q store.JobQuery) ([]*pipeline.Job, error)
	// Pipelines lists the loaded pipelines sorted by name.
	Pipelines(ctx context.Context) ([]pipeline.Info, error)
	// OpenLog opens one output stream of a task from the start; the caller closes it.
	OpenLog(ctx context.Context, jobID, task string, stream pipeline.LogStream) (io.ReadCloser, error)
	// FollowLog streams a task's output from the given offsets on, then live output, until the
	// task ended and all was sent, ctx ends, or the reader fell behind (resume from offsets).
	FollowLog(ctx context.Context, jobID, task string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error)
	// WaitInfo tells where and why a queued job waits; nil for a job that is not queued.
	WaitInfo(ctx context.Context, jobID string) (*pipeline.WaitInfo, error)
}

// Nodes is what the Nodes page needs: the nodes of the cluster (*runner.Runner implements it).
type Nodes interface {
	Nodes(ctx context.Context) ([]store.Node, error)
}

// Schedules is what the dashboard needs of the scheduler (issue 11); *scheduler.Scheduler
// implements it (it is a part of api.Schedules). Errors: pipeline.ErrScheduleNotFound,
// ErrScheduleExists, ErrScheduleFromFile, ErrInvalidSchedule, ErrUnknownPipeline, each with a
// message for people; Trigger's are those of admission.
type Schedules interface {
	// List returns every schedule (of one pipeline when pipelineName is not ""), sorted by ID.
	List(ctx context.Context, pipelineName string) ([]pipeline.ScheduleView, error)
	Get(ctx context.Context, id string) (pipeline.ScheduleView, error)
	// Create validates and stores an API schedule.
	Create(ctx context.Context, spec pipeline.ScheduleSpec) (pipeline.ScheduleView, error)
	// Update changes an API schedule, or pauses/resumes any schedule.
	Update(ctx context.Context, id string, patch pipeline.SchedulePatch) (pipeline.ScheduleView, error)
	Delete(ctx context.Context, id string) error
	// Trigger starts a job now with the schedule's variables, through normal admission.
	Trigger(ctx context.Context, id, user string) (jobID string, err error)
	// Firings returns the newest firings of a schedule, newest first, at most limit.
	Firings(ctx context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error)
}

// Config configures the dashboard.
type Config struct {
	// Secret is the HS256 key of the API's tokens. Required.
	Secret []byte
	// BasePath is the path prefix under which a host app serves prunner ("" or "/prunner"):
	// pages live at <BasePath>/ui/ and every link includes it.
	BasePath string
	Logger   *slog.Logger
	// Now is the clock (tests set it); defaults to time.Now.
	Now func() time.Time
	// PollInterval is how often a job page's live stream looks at the job (default 500 ms).
	PollInterval time.Duration
	// LogBatch is how long a live log pane gathers output before it sends it, as one event per
	// stream (default 100 ms): more than 256 KiB in one batch is cut to its newest 64 KiB.
	LogBatch time.Duration
	// PageSize is the number of jobs per page of the jobs list (default 50).
	PageSize int
	// MaxLogLines is how many lines of a task's output a page keeps (default 5000).
	MaxLogLines int
	// TailBytes is how much of a stream's end a job page shows at first (default 256 KiB).
	TailBytes int64
	// Nodes adds the Nodes page (the server is a node of a cluster); nil: it is none.
	Nodes Nodes
	// Schedules adds the schedules pages (and the pipelines' next runs); nil: the server has
	// no scheduler, and there are none.
	Schedules Schedules
}

// Dashboard is the registered UI. Close ends its live streams (call it before shutting the
// HTTP server down, which waits for open connections).
type Dashboard struct {
	cfg     Config
	runner  Runner
	paths   view.Paths
	assets  view.Assets
	logger  *slog.Logger
	csrfKey []byte
	ctx     context.Context
	cancel  context.CancelFunc
}

// NormalizeBasePath turns a configured base path into "" or "/a/b" (leading slash, no
// trailing slash).
func NormalizeBasePath(p string) string {
	p = strings.Trim(strings.TrimSpace(p), "/")
	if p == "" {
		return ""
	}
	return "/" + p
}

// Register adds the dashboard's routes to app: <base>/ui/... and, for browsers, a redirect
// from / (and <base>/) to <base>/ui/. With a base path the pages are also served without it,
// so that proxies that strip the prefix and proxies that keep it both work. It panics on an
// empty secret, a wiring bug.
func Register(app *fiber.App, cfg Config, r Runner) *Dashboard {
	if len(cfg.Secret) == 0 {
		panic("dashboard.Register: empty JWT secret")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.LogBatch <= 0 {
		cfg.LogBatch = logBatchWindow
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	if cfg.MaxLogLines <= 0 {
		cfg.MaxLogLines = 5000
	}
	if cfg.TailBytes <= 0 {
		cfg.TailBytes = 256 << 10
	}
	cfg.BasePath = NormalizeBasePath(cfg.BasePath)
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	mac := hmac.New(sha256.New, cfg.Secret)
	mac.Write([]byte("prunner dashboard csrf v1"))
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dashboard{
		cfg:     cfg,
		runner:  r,
		paths:   view.Paths{Base: cfg.BasePath},
		logger:  cfg.Logger,
		csrfKey: mac.Sum(nil),
		ctx:     ctx,
		cancel:  cancel,
	}
	d.assets = view.Assets{
		CSS:  d.assetURL("app.css"),
		HTMX: d.assetURL("htmx.min.js"),
		SSE:  d.assetURL("sse.min.js"),
		App:  d.assetURL("app.js"),
		Icon: d.assetURL("icon.svg"),
	}

	redirect := d.withHeaders(d.rootRedirect)
	app.Get("/", redirect)
	if cfg.BasePath != "" {
		app.Get(cfg.BasePath, redirect)
		d.routes(app.Group(cfg.BasePath + "/ui"))
	}
	d.routes(app.Group("/ui"))
	return d
}

// Close ends the live streams. It is idempotent.
func (d *Dashboard) Close() { d.cancel() }

func (d *Dashboard) assetURL(name string) string {
	a := web.Lookup(name)
	if a == nil {
		panic("dashboard: missing embedded asset " + name)
	}
	return d.paths.Static(name, a.Version)
}

func (d *Dashboard) routes(ui fiber.Router) {
	ui.Use(d.securityHeaders)
	ui.Get("/static/*", d.static)
	ui.Get("/login", d.loginPage)
	ui.Post("/login", d.loginSubmit)
	ui.Post("/logout", d.sameOrigin, d.logout)

	ui.Get("/", d.auth, d.pipelinesPage)
	ui.Get("/jobs", d.auth, d.jobsPage)
	ui.Get("/fragments/jobs", d.auth, d.jobsFragment)
	ui.Get("/jobs/:id", d.auth, d.jobPage)
	ui.Get("/jobs/:id/events", d.auth, d.jobEvents)
	ui.Get("/jobs/:id/tasks/:task/log/events", d.auth, d.logEvents)
	ui.Get("/jobs/:id/tasks/:task/log/:stream", d.auth, d.logDownload)
	ui.Get("/jobs/:id/cancel", d.auth, d.cancelConfirm)
	ui.Post("/jobs/:id/cancel", d.sameOrigin, d.auth, d.cancelJob)
	ui.Post("/jobs/:id/rerun", d.sameOrigin, d.auth, d.rerunJob)
	ui.Get("/pipelines/:name/queue", d.auth, d.queuePage)
	ui.Get("/pipelines/:name/start", d.auth, d.startPage)
	ui.Post("/pipelines/:name/start", d.sameOrigin, d.auth, d.startJob)
	if d.cfg.Schedules != nil {
		d.scheduleRoutes(ui)
	}
	if d.cfg.Nodes != nil {
		ui.Get("/nodes", d.auth, d.nodesPage)
	}
	ui.All("/*", d.auth, d.notFound)
}

func (d *Dashboard) now() time.Time { return d.cfg.Now().UTC() }

// rootRedirect sends browsers that open / to the dashboard; API clients get the usual 404.
func (d *Dashboard) rootRedirect(c *fiber.Ctx) error {
	if !strings.Contains(c.Get(fiber.HeaderAccept), "text/html") {
		return c.Next()
	}
	return c.Redirect(d.paths.Home(), fiber.StatusSeeOther)
}
