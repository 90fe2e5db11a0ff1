package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// config holds the server's settings from flags and environment variables. Every flag has the
// environment variable of the original prunner; a flag given on the command line wins.
type config struct {
	path            string
	pattern         string
	data            string
	address         string
	configFile      string
	jwtSecret       string
	envFiles        []string
	watch           bool
	pollInterval    time.Duration
	drainTimeout    time.Duration
	syncFull        bool
	databaseURL     string
	nodeID          string
	lease           time.Duration
	clusterPoll     time.Duration
	maxJobs         int
	verbose         bool
	disableANSI     bool
	enableProfiling bool
	metricsPublic   bool
	killGrace       time.Duration
	basePath        string

	command string
	args    []string
}

const usage = `prunner — an embeddable pipeline runner

Usage:
  prunner [flags]            serve the pipelines and the API (default)
  prunner [flags] validate   load the pipeline files as the server would (--path, --pattern) and
                             print every error and warning with file:line; exit 1 on an error
  prunner [flags] debug      print an Authorization header with a token for the API
  prunner jobs [flags]       list jobs of a running server, newest first
  prunner cancel JOB         cancel a job
  prunner schedule PIPELINE  schedule a job; --wait or --follow until it ends
  prunner logs JOB [TASK]    print a job's task output; -f follows it live
  prunner nodes              list the nodes of a running server's cluster
  prunner version            print the version
  prunner help               show this help

Flags (each also read from the environment variable in brackets):
`

// parseConfig reads flags from args and defaults from env.
func parseConfig(args []string, env map[string]string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("prunner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(p *string, name, envName, def, help string) {
		if v, ok := env[envName]; ok && v != "" {
			def = v
		}
		fs.StringVar(p, name, def, fmt.Sprintf("%s [%s]", help, envName))
	}
	boolean := func(p *bool, name, envName, help string) error {
		def := false
		if v, ok := env[envName]; ok && v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: not a boolean", envName, v)
			}
			def = b
		}
		fs.BoolVar(p, name, def, fmt.Sprintf("%s [%s]", help, envName))
		return nil
	}
	duration := func(p *time.Duration, name, envName string, def time.Duration, help string) error {
		if v, ok := env[envName]; ok && v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s=%q: not a duration (like 30s)", envName, v)
			}
			def = d
		}
		fs.DurationVar(p, name, def, fmt.Sprintf("%s [%s]", help, envName))
		return nil
	}
	integer := func(p *int, name, envName string, def int, help string) error {
		if v, ok := env[envName]; ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s=%q: not a whole number", envName, v)
			}
			def = n
		}
		fs.IntVar(p, name, def, fmt.Sprintf("%s [%s]", help, envName))
		return nil
	}
	str(&c.path, "path", "PRUNNER_PATH", ".", "directory to search for pipeline files")
	str(&c.pattern, "pattern", "PRUNNER_PATTERN", "**/pipelines.{yml,yaml}", "pattern of pipeline files below --path")
	str(&c.data, "data", "PRUNNER_DATA", ".prunner", "data directory (job store, task output)")
	str(&c.databaseURL, "database-url", "PRUNNER_DATABASE_URL", "", "PostgreSQL URL (postgres://user:pass@host/db) of the job store and task output, instead of SQLite and files in --data")
	str(&c.nodeID, "node-id", "PRUNNER_NODE_ID", "", "this node's name in a cluster of nodes sharing the --database-url (unique per node; empty: the database is this node's alone)")
	str(&c.address, "address", "PRUNNER_ADDRESS", "localhost:9009", "address to listen on")
	str(&c.configFile, "config", "PRUNNER_CONFIG", ".prunner.yml", "config file with jwt_secret (created when missing)")
	str(&c.jwtSecret, "jwt-secret", "PRUNNER_JWT_SECRET", "", "secret for HS256 tokens (at least 16 characters); overrides the config file")
	str(&c.basePath, "base-path", "PRUNNER_BASE_PATH", "", "path prefix under which a reverse proxy serves prunner (like /prunner); the dashboard is at <base-path>/ui/")
	envFiles := ".env,.env.local"
	if v, ok := env["PRUNNER_ENV_FILES"]; ok {
		envFiles = v
	}
	var envFilesSet []string
	fs.Func("env-files", "dotenv files loaded into the task environment, later ones override earlier ones; repeat or separate by commas; empty disables [PRUNNER_ENV_FILES] (default \".env,.env.local\")", func(v string) error {
		envFilesSet = append(envFilesSet, v)
		return nil
	})
	var errs []error
	errs = append(errs, boolean(&c.watch, "watch", "PRUNNER_WATCH", "reload pipeline files when they change"))
	errs = append(errs, duration(&c.pollInterval, "poll-interval", "PRUNNER_POLL_INTERVAL", 30*time.Second, "how often --watch looks for changes"))
	errs = append(errs, boolean(&c.verbose, "verbose", "PRUNNER_VERBOSE", "debug logging"))
	fs.BoolVar(&c.verbose, "v", c.verbose, "short for --verbose")
	errs = append(errs, boolean(&c.disableANSI, "disable-ansi", "PRUNNER_DISABLE_ANSI", "no ANSI colours in logs (prunner's logs never use them; accepted for compatibility)"))
	errs = append(errs, boolean(&c.enableProfiling, "enable-profiling", "PRUNNER_ENABLE_PROFILING", "serve pprof at /debug/pprof/ (behind auth)"))
	errs = append(errs, boolean(&c.metricsPublic, "metrics-public", "PRUNNER_METRICS_PUBLIC", "serve /metrics without a token (for a Prometheus on a trusted network)"))
	errs = append(errs, boolean(&c.syncFull, "sync-full", "PRUNNER_SYNC_FULL", "fsync the store on every commit (SQLite synchronous=FULL): an acknowledged job survives a power loss too, not only a crash of the process"))
	errs = append(errs, duration(&c.drainTimeout, "drain-timeout", "PRUNNER_DRAIN_TIMEOUT", 0, "after SIGINT, how long running jobs get to finish before they are canceled as on SIGTERM (0: no limit)"))
	errs = append(errs, duration(&c.lease, "lease", "PRUNNER_LEASE", 20*time.Second, "with --node-id: how long the node's lease lasts without a heartbeat; a node silent for longer is lost and its running jobs fail"))
	errs = append(errs, duration(&c.clusterPoll, "cluster-poll", "PRUNNER_CLUSTER_POLL", time.Second, "with --node-id: how often the node looks for waiting jobs and cancel requests besides the notifications of the other nodes"))
	errs = append(errs, integer(&c.maxJobs, "max-jobs", "PRUNNER_MAX_JOBS", 0, "the most jobs this node runs at once, over all pipelines; jobs beyond it wait (in a cluster, for a node with room) (0: no limit)"))
	errs = append(errs, duration(&c.killGrace, "kill-grace", "PRUNNER_KILL_GRACE", 2*time.Second, "time a canceled task gets after SIGINT and again after SIGTERM before SIGKILL"))
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	rest := fs.Args()
	if len(rest) > 0 {
		c.command = rest[0]
		if clientCommands[c.command] {
			// A client command parses its own flags (and the global ones it needs, with the
			// values read so far as defaults): see cli.go.
			c.args = rest[1:]
			rest = nil
		}
	}
	if len(rest) > 0 {
		// Flags may also follow the command (prunner debug --config x).
		if err := fs.Parse(rest[1:]); err != nil {
			return nil, err
		}
		c.args = fs.Args()
	}
	if envFilesSet != nil {
		envFiles = strings.Join(envFilesSet, ",")
	}
	for _, f := range strings.Split(envFiles, ",") {
		if f = strings.TrimSpace(f); f != "" {
			c.envFiles = append(c.envFiles, f)
		}
	}
	if c.pollInterval <= 0 {
		return nil, fmt.Errorf("--poll-interval must be greater than 0")
	}
	if c.drainTimeout < 0 {
		return nil, fmt.Errorf("--drain-timeout must not be negative (0: no limit)")
	}
	if c.nodeID != "" && c.databaseURL == "" {
		return nil, fmt.Errorf("--node-id needs --database-url: the nodes of a cluster share one PostgreSQL database")
	}
	if c.lease < time.Second {
		return nil, fmt.Errorf("--lease must be at least 1s")
	}
	if c.maxJobs < 0 {
		return nil, fmt.Errorf("--max-jobs must not be negative (0: no limit)")
	}
	if c.clusterPoll <= 0 {
		return nil, fmt.Errorf("--cluster-poll must be greater than 0")
	}
	return c, nil
}
