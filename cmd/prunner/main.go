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
	"os"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/prunner-dev/prunner/internal/auth"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/runner"
	"github.com/prunner-dev/prunner/internal/scheduler"
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
			// Exactly the header's value, without a newline, as the original prints it: host
			// apps read it with shell_exec() or the like and send it as it is.
			fmt.Fprintf(stdout, "Bearer %s", token)
			return 0
		}
		fmt.Fprintf(stdout, "Send this header with API requests (the token does not expire; keep it secret):\n\nAuthorization: Bearer %s\n", token)
		return 0
	case "validate":
		return validate(cfg, stdout)
	case "jobs", "cancel", "schedule", "logs", "nodes":
		return runClientCommand(ctx, cfg, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		fmt.Fprintln(stdout, "Run `prunner -h` for the flags.")
		return 0
	default:
		fmt.Fprintf(stderr, "prunner: unknown command %q (commands: validate, debug, jobs, cancel, schedule, logs, nodes, version, help)\n", cfg.command)
		return 2
	}
}

// validate loads the definitions exactly as the server would and prints every problem, errors
// first, each with its file and line, then a summary line. It returns the exit code: 1 when a
// definition has an error, 0 otherwise (warnings included), so that a host app's CI can run it.
func validate(cfg *config, stdout io.Writer) int {
	set, warnings, err := pipeline.Load(cfg.path, cfg.pattern)
	var errs []pipeline.Problem
	var loadErr *pipeline.LoadError
	if errors.As(err, &loadErr) {
		errs = loadErr.Problems
	} else if err != nil {
		errs = []pipeline.Problem{{File: cfg.path, Message: err.Error()}}
	}
	for _, p := range errs {
		fmt.Fprintf(stdout, "error: %s\n", p)
	}
	for _, p := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", p)
	}
	if len(errs) > 0 {
		fmt.Fprintf(stdout, "invalid: %d errors, %d warnings\n", len(errs), len(warnings))
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d pipelines, %d warnings\n", len(set.Pipelines), len(warnings))
	return 0
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

// reload loads the definitions again; a broken file keeps the old ones. The scheduler adds,
// changes and removes the file schedules they declare.
func reload(cfg *config, r *runner.Runner, sched *scheduler.Scheduler, log *slog.Logger) {
	set, warnings, err := pipeline.Load(cfg.path, cfg.pattern)
	for _, w := range warnings {
		log.Warn("pipeline definitions: " + w.String())
	}
	if err != nil {
		log.Error("reload failed; keeping the previous definitions", "error", err.Error())
		return
	}
	r.SetDefinitions(set)
	if err := sched.SetDefinitions(context.Background(), set); err != nil {
		log.Error("reload: schedules not updated", "error", err.Error())
	}
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
