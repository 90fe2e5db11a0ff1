// Command prunner serves pipelines declared in pipelines.yml files: it runs their jobs and offers
// the prunner HTTP API (compatible with the original Flowpack/prunner) on one address.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/joho/godotenv"

	"github.com/prunner-dev/prunner/internal/api"
	"github.com/prunner-dev/prunner/internal/auth"
	"github.com/prunner-dev/prunner/internal/dashboard"
	"github.com/prunner-dev/prunner/internal/metrics"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/runner"
	"github.com/prunner-dev/prunner/internal/store/legacyimport"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], environ(), os.Stdout, os.Stderr))
}

func environ() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, env, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "prunner: %v\n", err)
		return 2
	}
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	switch cfg.command {
	case "":
		if err := serve(ctx, cfg, env, log); err != nil {
			log.Error("prunner stopped", "error", err)
			fmt.Fprintf(stderr, "prunner: %v\n", err)
			return 1
		}
		return 0
	case "version":
		fmt.Fprintf(stdout, "prunner %s\n", version)
		return 0
	case "debug":
		secret, err := auth.ResolveSecret(cfg.jwtSecret, cfg.configFile)
		if err != nil {
			fmt.Fprintf(stderr, "prunner: %v\n", err)
			return 1
		}
		token, err := auth.DebugToken(secret, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "prunner: %v\n", err)
			return 1
		}
		if env["MINIMAL_OUTPUT"] == "1" {
			fmt.Fprintf(stdout, "Bearer %s\n", token)
			return 0
		}
		fmt.Fprintf(stdout, "Send this header with API requests (the token does not expire; keep it secret):\n\nAuthorization: Bearer %s\n", token)
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		fmt.Fprintln(stdout, "Run `prunner -h` for the flags.")
		return 0
	default:
		fmt.Fprintf(stderr, "prunner: unknown command %q (commands: debug, version, help)\n", cfg.command)
		return 2
	}
}

// serve runs the server until a signal stops it.
//
// The start-up runs in three strands, so that it takes about as long as its longest part rather
// than the sum of them: the pipeline files load in one goroutine; the data directory is locked
// and the store opened in another; this goroutine binds the listener meanwhile. The runner and
// the HTTP app that serves it are built once the store is open; the HTTP server accepts
// connections only once crash recovery is done and the runner has started (see gatedListener): until then
// they wait in the listen backlog, so no request is answered by a server that is not ready, and
// a client that connects early gets its answer as soon as the server is.
func serve(ctx context.Context, cfg *config, env map[string]string, log *slog.Logger) error {
	started := time.Now()
	// Signals are caught from the start: one that arrives while the server starts is handled as
	// soon as it serves (a SIGUSR1 must never kill it).
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	// Parsing the pipeline files is the longest step of an idle start-up; it needs nothing else.
	defsDone := make(chan struct{})
	var (
		defs    *pipeline.Set
		defsErr error
	)
	go func() {
		defer close(defsDone)
		defs, defsErr = loadDefinitions(cfg, log)
	}()

	secret, err := auth.ResolveSecret(cfg.jwtSecret, cfg.configFile)
	if err != nil {
		<-defsDone
		return err
	}

	storeDone := make(chan storeResult, 1)
	go func() { storeDone <- openStore(ctx, cfg) }()

	taskEnv, envErr := buildTaskEnv(env, cfg.envFiles, secret)
	ln, lnErr := net.Listen("tcp", cfg.address)
	if lnErr != nil {
		lnErr = fmt.Errorf("listen on %s: %w", cfg.address, lnErr)
	}

	<-defsDone
	sr := <-storeDone
	if sr.unlock != nil {
		defer sr.unlock()
	}
	if sr.st != nil {
		defer sr.st.Close()
	}
	// abort ends a failed start-up; the deferred calls close the store and unlock the data
	// directory.
	abort := func(err error) error {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	// The errors in the order of the steps that used to run one after the other.
	for _, err := range []error{defsErr, envErr, sr.err, lnErr} {
		if err != nil {
			return abort(err)
		}
	}
	workDir, _ := os.Getwd()
	m := metrics.New()
	r := runner.New(runner.Config{
		Store:     sr.st,
		DataDir:   cfg.data,
		WorkDir:   workDir,
		Env:       taskEnv,
		KillGrace: cfg.killGrace,
		Logger:    log,
		Observer:  m,
	})
	// Closed when the HTTP shutdown starts: it ends the live log streams.
	liveDone := make(chan struct{})
	app, dash := newApp(cfg, secret, log, m, liveDone, r)
	defer dash.Close()
	// gate is closed when the server is ready, or when the start-up failed (after ln is closed).
	gate := make(chan struct{})
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(gatedListener{Listener: ln, open: gate}) }()
	abort = func(err error) error {
		ln.Close()
		close(gate)
		return err
	}
	st := sr.st
	// The history of an original prunner in the same data directory (data.json, logs/) is
	// imported once, before anything runs; a broken data.json stops the start-up.
	if _, err := legacyimport.Run(ctx, cfg.data, st, log); err != nil {
		return abort(err)
	}

	r.SetDefinitions(defs)
	if err := r.Start(ctx); err != nil {
		return abort(err)
	}
	close(gate)
	log.Info("prunner started", "address", ln.Addr().String(), "pipelines", len(defs.Pipelines), "data", cfg.data, "version", version, "startup_ms", time.Since(started).Milliseconds())

	var pollC <-chan time.Time
	var fingerprint string
	if cfg.watch {
		fingerprint = definitionsFingerprint(cfg)
		t := time.NewTicker(cfg.pollInterval)
		defer t.Stop()
		pollC = t.C
	}

	for {
		select {
		case err := <-serveErr:
			r.Stop(context.Background())
			return fmt.Errorf("http server: %w", err)
		case <-pollC:
			if fp := definitionsFingerprint(cfg); fp != fingerprint {
				fingerprint = fp
				reload(cfg, r, log)
			}
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				reload(cfg, r, log)
				continue
			case syscall.SIGINT:
				log.Info("SIGINT: draining, new schedules get 503; running jobs finish (send another signal to stop them)", "running", r.Running())
				done := make(chan error, 1)
				go func() { done <- r.Drain(context.Background()) }()
				select {
				case <-done:
				case sig2 := <-sigs:
					log.Warn("second signal: canceling running jobs", "signal", sig2.String())
					r.CancelAll()
					<-done
				}
			case syscall.SIGTERM:
				log.Info("SIGTERM: canceling running jobs", "running", r.Running())
				done := make(chan error, 1)
				go func() { done <- r.Stop(context.Background()) }()
				select {
				case <-done:
				case <-sigs:
					log.Warn("second signal: not waiting for jobs any longer")
				}
			}
			// Live dashboard streams end first: the HTTP shutdown waits for open connections.
			dash.Close()
			close(liveDone)
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := app.ShutdownWithContext(shutdownCtx); err != nil {
				log.Warn("http shutdown", "error", err)
			}
			cancel()
			log.Info("prunner stopped", "signal", sig.String())
			return nil
		}
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

// storeResult is what openStore hands over: the data directory's lock and the open store, or
// the first error.
type storeResult struct {
	unlock func()
	st     *sqlite.Store
	err    error
}

// openStore locks the data directory and opens the store.
func openStore(ctx context.Context, cfg *config) (res storeResult) {
	if err := os.MkdirAll(cfg.data, 0o755); err != nil {
		res.err = fmt.Errorf("data directory %s: %w", cfg.data, err)
		return res
	}
	if res.unlock, res.err = lockDataDir(cfg.data); res.err != nil {
		return res
	}
	if res.st, res.err = sqlite.Open(ctx, filepath.Join(cfg.data, "prunner.db")); res.err != nil {
		res.err = fmt.Errorf("open store in %s: %w", cfg.data, res.err)
		return res
	}
	return res
}

// The runner is what the API and the dashboard need of it, without adapters: their interfaces
// are declared with them, and newApp below hands the runner to both.
var (
	_ api.Runner       = (*runner.Runner)(nil)
	_ dashboard.Runner = (*runner.Runner)(nil)
)

// newApp builds the HTTP app: the API and the dashboard, on the routes they are served, both
// served by r; /metrics reads its gauges from r.
func newApp(cfg *config, secret []byte, log *slog.Logger, m *metrics.Metrics, liveDone chan struct{},
	r *runner.Runner) (*fiber.App, *dashboard.Dashboard) {
	app := api.New(api.Config{
		Done:            liveDone,
		Secret:          secret,
		Logger:          log,
		EnableProfiling: cfg.enableProfiling,
		Ready:           r.Ready,
		Metrics:         m.Handler(r),
		MetricsPublic:   cfg.metricsPublic,
	}, r)
	dash := dashboard.Register(app, dashboard.Config{Secret: secret, BasePath: cfg.basePath, Logger: log}, r)
	return app, dash
}

// loadDefinitions loads the pipeline files and logs their warnings.
func loadDefinitions(cfg *config, log *slog.Logger) (*pipeline.Set, error) {
	set, warnings, err := pipeline.Load(cfg.path, cfg.pattern)
	for _, w := range warnings {
		log.Warn("pipeline definitions: " + w.String())
	}
	if err != nil {
		return nil, fmt.Errorf("loading pipelines from %s:\n%w", cfg.path, err)
	}
	return set, nil
}

// reload loads the definitions again; a broken file keeps the old ones.
func reload(cfg *config, r *runner.Runner, log *slog.Logger) {
	set, warnings, err := pipeline.Load(cfg.path, cfg.pattern)
	for _, w := range warnings {
		log.Warn("pipeline definitions: " + w.String())
	}
	if err != nil {
		log.Error("reload failed; keeping the previous definitions", "error", err.Error())
		return
	}
	r.SetDefinitions(set)
	log.Info("pipeline definitions reloaded", "pipelines", len(set.Pipelines))
}

// definitionsFingerprint summarises the pipeline files (names, sizes, modification times) so that
// --watch notices changes without reading them. It looks at the files a load reads
// (pipeline.Files): a new or removed definition file changes it as much as an edited one. A
// directory that cannot be searched has its error as the fingerprint, so that its return is a
// change as well.
func definitionsFingerprint(cfg *config) string {
	files, err := pipeline.Files(cfg.path, cfg.pattern)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, f := range files {
		if info, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s|%d|%d\n", f, info.Size(), info.ModTime().UnixNano())
		}
	}
	return b.String()
}

// buildTaskEnv returns the base environment of tasks: the server's environment, overridden by the
// dotenv files in order (missing files are ignored). Variables that carry the JWT secret are left
// out, so no task can read it.
func buildTaskEnv(env map[string]string, files []string, secret []byte) ([]string, error) {
	merged := make(map[string]string, len(env))
	for k, v := range env {
		merged[k] = v
	}
	for _, f := range files {
		vars, err := godotenv.Read(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("env file %s: %w", f, err)
		}
		for k, v := range vars {
			merged[k] = v
		}
	}
	delete(merged, "PRUNNER_JWT_SECRET")
	list := make([]string, 0, len(merged))
	for k, v := range merged {
		if v == string(secret) {
			continue
		}
		list = append(list, k+"="+v)
	}
	return list, nil
}
