package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/api"
	"github.com/prunner-dev/prunner/internal/auth"
	"github.com/prunner-dev/prunner/internal/dashboard"
	"github.com/prunner-dev/prunner/internal/metrics"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/runner"
	"github.com/prunner-dev/prunner/internal/scheduler"
	"github.com/prunner-dev/prunner/internal/store/legacyimport"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

// The runner is what the API and the dashboard need of it, without adapters: their interfaces
// are declared with them, and newApp hands the runner to both.
var (
	_ api.Runner          = (*runner.Runner)(nil)
	_ dashboard.Runner    = (*runner.Runner)(nil)
	_ api.Schedules       = (*scheduler.Scheduler)(nil)
	_ dashboard.Schedules = (*scheduler.Scheduler)(nil)
	_ scheduler.Firer     = (*runner.Runner)(nil)
)

// serve runs the server until a signal stops it: start, wait, shutdown.
func serve(ctx context.Context, cfg *config, env map[string]string, log *slog.Logger) error {
	// Signals are caught from the start: one that arrives while the server starts is handled as
	// soon as it serves (a SIGUSR1 must never kill it).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	s, err := start(ctx, cfg, env, log)
	if err != nil {
		return err
	}
	return s.shutdown(s.wait(sigs), sigs)
}

// server is a started prunner: what serves, and what its shutdown stops.
type server struct {
	cfg *config
	log *slog.Logger

	unlock func()
	st     store.Store
	runner *runner.Runner
	// sched fires the schedules; it starts after the runner, in the background (startSchedules).
	sched *scheduler.Scheduler
	app   *fiber.App
	dash  *dashboard.Dashboard

	// gate holds the HTTP server's connections back until the server is ready (see
	// gatedListener); it is closed when the start-up is done or has failed.
	gate     chan struct{}
	gateOnce sync.Once
	// served receives the HTTP server's error when it stops serving by itself.
	served chan error
	// liveDone is closed when the HTTP shutdown starts: it ends the API's live log streams.
	liveDone chan struct{}
	// stopOutputListener ends the listener for other nodes' task output (nil when none runs).
	stopOutputListener context.CancelFunc
	// fingerprint is the definition files' fingerprint taken before they loaded (--watch).
	fingerprint string
}

// start brings the server up and returns it serving; when the start-up fails, what it opened is
// closed again.
//
// The start-up runs in three strands, so that it takes about as long as its longest part rather
// than the sum of them: the pipeline files load in one goroutine; the data directory is locked,
// the store opened and the runner and the HTTP app that serves it built in another (build); this
// goroutine binds the listener meanwhile. The HTTP server starts as soon as the app exists, but
// it accepts connections only once crash recovery is done (see gatedListener): until then they
// wait in the listen backlog, so no request is answered from a store that still shows the jobs
// of a crashed server as running, and a client that connects early gets its answer as soon as
// the server can give it. Requests that need the definitions (scheduling a job, the pipelines)
// wait for the runner's start, which follows the definitions' load.
func start(ctx context.Context, cfg *config, env map[string]string, log *slog.Logger) (*server, error) {
	started := time.Now()
	// Parsing the pipeline files is the longest step of an idle start-up; it needs nothing else.
	defsDone := make(chan struct{})
	var (
		defs        *pipeline.Set
		defsErr     error
		fingerprint string
	)
	go func() {
		defer close(defsDone)
		// --watch compares with the files as they were before this load: an edit made while
		// they load is a change (at worst one reload more), never one that goes unnoticed.
		if cfg.watch {
			fingerprint = definitionsFingerprint(cfg)
		}
		defs, defsErr = loadDefinitions(cfg, log)
	}()

	secret, err := auth.ResolveSecret(cfg.jwtSecret, cfg.configFile)
	if err != nil {
		<-defsDone
		return nil, err
	}
	taskEnv, err := buildTaskEnv(env, cfg.envFiles, secret)
	if err != nil {
		// A broken definition file is reported first, as when the steps ran one after the other.
		<-defsDone
		if defsErr != nil {
			return nil, defsErr
		}
		return nil, err
	}

	s := &server{
		cfg:      cfg,
		log:      log,
		gate:     make(chan struct{}),
		served:   make(chan error, 1),
		liveDone: make(chan struct{}),
	}
	built := make(chan error, 1)
	go func() { built <- s.build(ctx, secret, taskEnv) }()

	ln, lnErr := net.Listen("tcp", cfg.address)
	if lnErr != nil {
		lnErr = fmt.Errorf("listen on %s: %w", cfg.address, lnErr)
	}
	buildErr := <-built
	if buildErr == nil && lnErr == nil {
		go func() { s.served <- s.app.Listener(gatedListener{Listener: ln, open: s.gate}) }()
	}
	// failed reports a start-up error after the definitions loaded, so that a broken definition
	// file is reported first, as when the steps ran one after the other.
	failed := func(err error) error {
		<-defsDone
		s.abort(ln)
		if defsErr != nil {
			return defsErr
		}
		return err
	}
	for _, err := range []error{buildErr, lnErr} {
		if err != nil {
			return nil, failed(err)
		}
	}
	// The history of an original prunner in the same data directory (data.json, logs/) is
	// imported once, before anything runs; a broken data.json stops the start-up.
	if _, err := legacyimport.Run(ctx, cfg.data, s.st, log); err != nil {
		return nil, failed(err)
	}
	// Once the jobs an unclean stop left running are recovered, every read is answered as it
	// will be: the server serves while its definitions may still load (the longest step with a
	// big pipelines file). What needs them (a schedule request, the pipelines) waits for the
	// runner's start below.
	if err := s.runner.Recover(ctx); err != nil {
		return nil, failed(err)
	}
	s.openGate()
	<-defsDone
	s.fingerprint = fingerprint
	if defsErr != nil {
		s.abort(ln)
		return nil, defsErr
	}
	s.runner.SetDefinitions(defs)
	if err := s.runner.Start(ctx); err != nil {
		s.abort(ln)
		return nil, err
	}
	s.startSchedules(defs)
	log.Info("prunner started", "address", ln.Addr().String(), "pipelines", len(defs.Pipelines), "data", cfg.data, "version", version, "startup_ms", time.Since(started).Milliseconds())
	return s, nil
}

// openGate lets the HTTP server accept the connections waiting in the backlog (see
// gatedListener). It is idempotent.
func (s *server) openGate() {
	s.gateOnce.Do(func() { close(s.gate) })
}

// startSchedules gives the scheduler the definitions and starts it in the background, once the
// server serves: reading the schedules and catching up missed fire times is no part of the
// start-up time. The API's schedule requests wait until it has read them.
func (s *server) startSchedules(defs *pipeline.Set) {
	// Before Start, SetDefinitions only remembers the definitions.
	_ = s.sched.SetDefinitions(context.Background(), defs)
	go func() {
		if err := s.sched.Start(context.Background()); err != nil {
			s.log.Error("schedules not started; no schedule fires", "error", err)
		}
	}()
}

// build locks the data directory, opens the store and builds what stands on it: the runner
// (not started yet) and the HTTP app that serves it. start runs it in its own goroutine and
// reads the fields it sets once it has returned.
func (s *server) build(ctx context.Context, secret []byte, taskEnv []string) error {
	if err := os.MkdirAll(s.cfg.data, 0o755); err != nil {
		return fmt.Errorf("data directory %s: %w", s.cfg.data, err)
	}
	unlock, err := lockDataDir(s.cfg.data)
	if err != nil {
		return err
	}
	s.unlock = unlock
	st, err := openStore(ctx, s.cfg)
	if err != nil {
		return err
	}
	s.st = st
	logs := s.taskLogs(st)
	workDir, _ := os.Getwd()
	// The metrics observe the runner, so they exist first; their gauges read the runner.
	m := metrics.New()
	s.runner = runner.New(runner.Config{
		Store:        st,
		DataDir:      s.cfg.data,
		WorkDir:      workDir,
		Env:          taskEnv,
		KillGrace:    s.cfg.killGrace,
		Logger:       s.log,
		Observer:     m,
		TaskLogs:     logs,
		Node:         store.NodeInfo{ID: s.cfg.nodeID, Address: s.cfg.address, Version: version},
		Lease:        s.cfg.lease,
		PollInterval: s.cfg.clusterPoll,
		MaxJobs:      s.cfg.maxJobs,
	})
	s.sched = scheduler.New(scheduler.Config{Store: st, Firer: s.runner, Logger: s.log})
	s.app, s.dash = newApp(s.cfg, secret, s.log, m, s.liveDone, s.runner, s.sched)
	return nil
}

// openStore opens the job store: PostgreSQL when --database-url is set, else the embedded SQLite
// store in the data directory. A server without --node-id holds its PostgreSQL database
// exclusively; the nodes of a cluster share it.
func openStore(ctx context.Context, cfg *config) (store.Store, error) {
	if cfg.databaseURL != "" {
		// Without a node ID the database is this server's alone: its start-up ends every running
		// job of the database, so another server must not use it meanwhile. The nodes of a
		// cluster share it with each other, but not with such a server.
		st, err := postgres.OpenWith(ctx, cfg.databaseURL, postgres.Options{Exclusive: cfg.nodeID == "", Member: cfg.nodeID != ""})
		if err != nil {
			return nil, fmt.Errorf("--database-url %s: %w", redactURL(cfg.databaseURL), err)
		}
		return st, nil
	}
	st, err := sqlite.OpenWith(ctx, filepath.Join(cfg.data, "prunner.db"), sqlite.Options{SynchronousFull: cfg.syncFull})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.data, err)
	}
	return st, nil
}

// taskLogs returns where the output of tasks is kept: in the database with the PostgreSQL
// store, so that every node reads it and it outlives the node that ran the task; nil (the
// runner's default: files in the data directory) with SQLite. A node of a cluster also hears
// when another node stores output, so that its followers read it at once.
func (s *server) taskLogs(st store.Store) tasklog.Store {
	pg, ok := st.(*postgres.Store)
	if !ok {
		return nil
	}
	live := tasklog.NewLive(pg.TaskLogs(postgres.TaskLogOptions{Notify: s.cfg.nodeID != ""}))
	if s.cfg.nodeID != "" {
		ctx, cancel := context.WithCancel(context.Background())
		s.stopOutputListener = cancel
		go func() {
			if err := pg.ListenOutput(ctx, live.Wake); err != nil && ctx.Err() == nil {
				s.log.Warn("listening for the task output of other nodes stopped; followers poll", "error", err)
			}
		}()
	}
	return live
}

// redactURL is a database URL for messages: without its password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparsable URL)"
		}
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// abort undoes a start-up that failed before the runner started: the listener (and with it an
// HTTP server waiting at the gate) closes, then the store, then the data directory's lock.
func (s *server) abort(ln net.Listener) {
	if ln != nil {
		ln.Close()
	}
	s.openGate()
	if s.runner != nil {
		// Requests that wait for the runner's start (awaitStart) get their answer: it stopped.
		_ = s.runner.Stop(context.Background())
		s.leaveCluster()
	}
	if s.dash != nil {
		s.dash.Close()
	}
	s.closeStore()
}

// stopRequest is why the server stops: a signal (SIGINT or SIGTERM), or the HTTP server's error
// when it stopped serving by itself.
type stopRequest struct {
	signal os.Signal
	err    error
}

// wait serves until the server must stop and says why. Meanwhile SIGUSR1, and with --watch a
// change of the definition files, reload the definitions.
func (s *server) wait(sigs <-chan os.Signal) stopRequest {
	var poll <-chan time.Time
	fingerprint := s.fingerprint
	if s.cfg.watch {
		t := time.NewTicker(s.cfg.pollInterval)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case err := <-s.served:
			return stopRequest{err: err}
		case <-poll:
			if fp := definitionsFingerprint(s.cfg); fp != fingerprint {
				fingerprint = fp
				reload(s.cfg, s.runner, s.sched, s.log)
			}
		case sig := <-sigs:
			if sig == syscall.SIGUSR1 {
				reload(s.cfg, s.runner, s.sched, s.log)
				continue
			}
			return stopRequest{signal: sig}
		}
	}
}

// shutdown stops the server in the order that loses nothing: first the intake (the runner
// accepts no new jobs; schedule requests get 503 while the HTTP server still answers everything
// else, so that clients can follow the jobs that are ending), then the runner's running jobs
// (see stopRunner), then the HTTP server, last the store and the data directory's lock.
func (s *server) shutdown(stop stopRequest, sigs <-chan os.Signal) error {
	defer s.closeStore()
	// No schedule fires once the server stops; firings in flight end first.
	s.sched.Stop()
	if stop.err != nil {
		// Nothing answers requests any longer, so no client can follow the running jobs: they
		// are canceled.
		s.runner.Stop(context.Background())
		s.leaveCluster()
		s.dash.Close()
		return fmt.Errorf("http server: %w", stop.err)
	}
	s.stopRunner(stop.signal, sigs)
	s.leaveCluster()
	// Live streams end first: the HTTP shutdown waits for open connections.
	s.dash.Close()
	close(s.liveDone)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		s.log.Warn("http shutdown", "error", err)
	}
	s.log.Info("prunner stopped", "signal", stop.signal.String())
	return nil
}

// stopRunner stops the runner as the signal asks. SIGINT drains: running jobs finish, and a
// second signal, or the end of --drain-timeout, cancels them (queued jobs stay queued). SIGTERM cancels the running jobs and waits until they have ended,
// unless a second signal says not to wait any longer.
func (s *server) stopRunner(sig os.Signal, sigs <-chan os.Signal) {
	r := s.runner
	done := make(chan error, 1)
	switch sig {
	case syscall.SIGINT:
		s.log.Info("SIGINT: draining, new schedules get 503; running jobs finish (send another signal to stop them)", "running", r.Running(), "drain_timeout", s.cfg.drainTimeout.String())
		go func() { done <- r.Drain(context.Background()) }()
		var timeout <-chan time.Time
		if s.cfg.drainTimeout > 0 {
			t := time.NewTimer(s.cfg.drainTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-done:
		case <-timeout:
			s.log.Warn("drain timeout elapsed: canceling running jobs", "drain_timeout", s.cfg.drainTimeout.String(), "running", r.Running())
			r.CancelAllBecause("the drain timeout of " + s.cfg.drainTimeout.String() + " elapsed")
			<-done
		case sig2 := <-sigs:
			s.log.Warn("second signal: canceling running jobs", "signal", sig2.String())
			r.CancelAll()
			<-done
		}
	case syscall.SIGTERM:
		s.log.Info("SIGTERM: canceling running jobs", "running", r.Running())
		go func() { done <- r.Stop(context.Background()) }()
		select {
		case <-done:
		case <-sigs:
			s.log.Warn("second signal: not waiting for jobs any longer")
		}
	}
}

// leaveCluster marks a node of a cluster stopped once its jobs have ended (runner.Leave), so
// that the other nodes list it as stopped, not lost, and wait for nothing of it.
func (s *server) leaveCluster() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.runner.Leave(ctx); err != nil {
		s.log.Warn("node not marked stopped in the cluster", "error", err)
	}
}

// closeStore closes the store and then unlocks the data directory, so that a next server can
// only open a store that this one has closed.
func (s *server) closeStore() {
	if s.stopOutputListener != nil {
		s.stopOutputListener()
	}
	if s.st != nil {
		if err := s.st.Close(); err != nil {
			s.log.Warn("close store", "error", err)
		}
	}
	if s.unlock != nil {
		s.unlock()
	}
}

// gatedListener holds the server's connections back until open is closed: they wait in the
// listen backlog meanwhile. It lets the HTTP server start (and clients connect) while the
// start-up is still running.
type gatedListener struct {
	net.Listener
	open <-chan struct{}
}

func (l gatedListener) Accept() (net.Conn, error) {
	<-l.open
	return l.Listener.Accept()
}

// newApp builds the HTTP app: the API and the dashboard, on the routes they are served, both
// served by r and, for schedules, by sched; /metrics reads its gauges from r.
func newApp(cfg *config, secret []byte, log *slog.Logger, m *metrics.Metrics, liveDone chan struct{},
	r *runner.Runner, sched *scheduler.Scheduler) (*fiber.App, *dashboard.Dashboard) {
	app := api.New(api.Config{
		Done:            liveDone,
		Secret:          secret,
		Logger:          log,
		EnableProfiling: cfg.enableProfiling,
		Ready:           r.Ready,
		Metrics:         m.Handler(r),
		MetricsPublic:   cfg.metricsPublic,
		Schedules:       sched,
	}, r)
	dcfg := dashboard.Config{Secret: secret, BasePath: cfg.basePath, Logger: log, Schedules: sched}
	if cfg.nodeID != "" {
		dcfg.Nodes = r
	}
	dash := dashboard.Register(app, dcfg, r)
	return app, dash
}
