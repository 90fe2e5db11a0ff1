// Command bench is prunner's own benchmark: it starts the real binary on 127.0.0.1 and measures,
// through the HTTP API only, every scenario of ../shared/docs/performance.md (the same scenarios
// as the black-box harness in ../shared/bench), then prints one table: scenario, median, spread,
// target and pass/miss.
//
//	go run ./bench --bin bin/prunner              # full run, 1–3 minutes on 2 cores
//	go run ./bench --quick                        # smoke run, under a minute
//	go run ./bench --only latency,graph --out results.jsonl
//	go run ./bench --pprof /tmp/prof              # also CPU/heap profiles of every scenario
//	go run ./bench --only cluster --postgres postgres://postgres@127.0.0.1:5432/test  # 1 node vs 3
//
// Every loop is bounded in count and time; servers are killed on exit, errors and Ctrl-C.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/prunner-dev/prunner/internal/auth"
)

var allGroups = []string{"startup", "latency", "graph", "throughput", "huge", "history", "history-100k", "schedules", "cluster"}

// defaultGroups are the groups a run without --only runs: schedules takes more than a minute
// (it waits for a minute to begin) and runs only on demand (--only schedules); cluster needs
// --postgres and runs only on demand (--only cluster --postgres URL).
var defaultGroups = []string{"startup", "latency", "graph", "throughput", "huge", "history", "history-100k"}

type config struct {
	bin        string
	out        string
	quick      bool
	keep       bool
	strict     bool
	groups     []string
	serverArgs []string
	postgres   string
	timeout    time.Duration

	latencyN      int
	latencyWarmup int
	poll          time.Duration
	graphPoll     time.Duration
	graphReps     int
	wide, chain   int
	tpJobs        int
	tpReps        int
	tpConcurrency int
	clients       int
	hugeBytes     int64
	hugeReps      int
	logsReps      int
	historyN      int
	historyLargeN int
	listReps      int
	pageReps      int
	restartReps   int
	startupReps   int

	pprofDir     string
	pprofSeconds int
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.bin, "bin", "bin/prunner", "the prunner binary to measure")
	fs.StringVar(&c.out, "out", "", "append one JSON line per result to this file")
	fs.BoolVar(&c.quick, "quick", false, "smoke run (under a minute): fewer repetitions, 1,000-job history, 20 MB output")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (data dirs, server logs)")
	fs.BoolVar(&c.strict, "strict", false, "exit 2 when a target is missed")
	only := fs.String("only", "", "comma-separated groups to run: "+strings.Join(allGroups, ","))
	serverArgs := fs.String("server-args", "", "extra flags for the server, space-separated")
	fs.StringVar(&c.postgres, "postgres", "", "run every server on PostgreSQL: the URL of a server where the bench may create a database per server (dropped at the end), like postgres://postgres@127.0.0.1:5432/test")
	fs.DurationVar(&c.timeout, "timeout", 0, "bound of the whole run (default 20m, 3m with --quick)")
	fs.IntVar(&c.latencyN, "latency-n", 0, "1-task jobs measured (default 200, 30 with --quick)")
	fs.DurationVar(&c.poll, "poll", time.Millisecond, "poll interval of /job/detail for the latency and throughput scenarios")
	fs.DurationVar(&c.graphPoll, "graph-poll", 2*time.Millisecond, "poll interval of /job/detail for the DAG scenarios")
	fs.IntVar(&c.graphReps, "graph-reps", 0, "runs of each DAG (default 10, 2 with --quick)")
	fs.IntVar(&c.wide, "wide", 200, "tasks of the wide DAG")
	fs.IntVar(&c.chain, "chain", 200, "tasks of the chain")
	fs.IntVar(&c.tpJobs, "tp-jobs", 500, "jobs per throughput run")
	fs.IntVar(&c.tpReps, "tp-reps", 0, "throughput runs (default 5, 1 with --quick)")
	fs.IntVar(&c.tpConcurrency, "tp-concurrency", 8, "concurrency of bench_tp and bench_hist")
	fs.IntVar(&c.clients, "clients", 4, "HTTP clients scheduling at once (throughput, history fill)")
	fs.Int64Var(&c.hugeBytes, "huge-bytes", 0, "stdout bytes of bench_huge (default 200 MB, 20 MB with --quick)")
	fs.IntVar(&c.hugeReps, "huge-reps", 0, "bench_huge jobs (default 3, 1 with --quick)")
	fs.IntVar(&c.logsReps, "logs-reps", 0, "GET /job/logs per bench_huge job (default 2)")
	fs.IntVar(&c.historyN, "history", 0, "finished jobs in the history scenario (default 10000, 1000 with --quick)")
	fs.IntVar(&c.historyLargeN, "history-large", 0, "finished jobs in the history-100k scenario (default 100000, 20000 with --quick)")
	fs.IntVar(&c.listReps, "list-reps", 0, "full GET /pipelines/jobs per measurement (default 20, 5 with --quick)")
	fs.IntVar(&c.pageReps, "page-reps", 0, "GET of one page of 50 per route (default 50, 10 with --quick)")
	fs.IntVar(&c.restartReps, "restart-reps", 0, "restarts with the history (default 10, 2 with --quick)")
	fs.IntVar(&c.startupReps, "startup-reps", 0, "idle start-ups of each kind (default 20, 3 with --quick)")
	fs.StringVar(&c.pprofDir, "pprof", "", "start servers with --enable-profiling and write CPU/heap/allocs profiles of each scenario into this directory (after the measurements)")
	fs.IntVar(&c.pprofSeconds, "pprof-seconds", 5, "length of each CPU profile")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	def := func(p *int, full, quick int) {
		if *p <= 0 {
			*p = full
			if c.quick {
				*p = quick
			}
		}
	}
	def(&c.latencyN, 200, 30)
	def(&c.graphReps, 10, 2)
	def(&c.tpReps, 5, 1)
	def(&c.hugeReps, 3, 1)
	def(&c.logsReps, 2, 2)
	def(&c.historyN, 10000, 1000)
	def(&c.historyLargeN, historyLarge, 20000)
	def(&c.listReps, 20, 5)
	def(&c.pageReps, 50, 10)
	def(&c.restartReps, 10, 2)
	def(&c.startupReps, 20, 3)
	c.latencyWarmup = 5
	if c.hugeBytes <= 0 {
		c.hugeBytes = 200_000_000
		if c.quick {
			c.hugeBytes = 20_000_000
		}
	}
	if c.timeout <= 0 {
		c.timeout = 20 * time.Minute
		if c.quick {
			c.timeout = 3 * time.Minute
		}
	}
	c.groups = defaultGroups
	if *only != "" {
		c.groups = nil
		for _, g := range strings.Split(*only, ",") {
			g = strings.TrimSpace(g)
			if !slices.Contains(allGroups, g) {
				return nil, fmt.Errorf("unknown group %q (groups: %s)", g, strings.Join(allGroups, ","))
			}
			c.groups = append(c.groups, g)
		}
	}
	if slices.Contains(c.groups, "cluster") && c.postgres == "" {
		return nil, errors.New("the cluster group runs nodes on one PostgreSQL database: give --postgres URL (a server where the bench may create databases, like postgres://postgres@127.0.0.1:5432/test)")
	}
	c.serverArgs = strings.Fields(*serverArgs)
	if c.pprofDir != "" {
		c.serverArgs = append(c.serverArgs, "--enable-profiling")
	}
	c.clients = max(1, c.clients)
	return c, nil
}

// bench holds the state of one run.
type bench struct {
	cfg     *config
	workDir string
	pipeDir string
	secret  string
	token   string
	label   string
	results []*result
	nserver int
	pg      *pgDatabases
}

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	bin, err := filepath.Abs(cfg.bin)
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: binary %s: %v (build it with `make build`)\n", cfg.bin, err)
		return 2
	}
	cfg.bin = bin

	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "bench: %s: stopping the servers\n", s)
		killAllServers()
		cancel()
		<-sigs
		os.Exit(130)
	}()
	defer killAllServers()

	b := &bench{cfg: cfg}
	if cfg.postgres != "" {
		b.pg = &pgDatabases{admin: cfg.postgres}
		defer b.pg.dropAll()
	}
	b.workDir, err = os.MkdirTemp("", "prunner-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer func() {
		killAllServers()
		if cfg.keep {
			fmt.Fprintln(os.Stderr, "bench: work directory kept:", b.workDir)
			return
		}
		os.RemoveAll(b.workDir)
	}()
	if cfg.pprofDir != "" {
		if err := os.MkdirAll(cfg.pprofDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	b.pipeDir = filepath.Join(b.workDir, "pipelines")
	if err := writePipelines(b.pipeDir, pipelineParams{wide: cfg.wide, chain: cfg.chain, hugeBytes: cfg.hugeBytes, tpConcurrency: cfg.tpConcurrency}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	b.secret = hex.EncodeToString(raw)
	b.token, err = auth.Mint([]byte(b.secret), jwt.MapClaims{"sub": "bench"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	mode := "full"
	if cfg.quick {
		mode = "quick"
	}
	b.label = mode + "-" + time.Now().UTC().Format("20060102T150405Z")
	version := binaryVersion(bin)
	fmt.Fprintf(os.Stderr, "bench: %s run of %s (%s), %d CPUs, groups %s, work dir %s\n",
		mode, bin, version, runtime.NumCPU(), strings.Join(cfg.groups, ","), b.workDir)

	start := time.Now()
	for _, g := range cfg.groups {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "bench: group %s\n", g)
		var err error
		switch g {
		case "startup":
			err = b.groupStartup(ctx)
		case "latency":
			err = b.groupLatency(ctx)
		case "graph":
			err = b.groupGraph(ctx)
		case "throughput":
			err = b.groupThroughput(ctx)
		case "huge":
			err = b.groupHuge(ctx)
		case "history":
			err = b.groupHistory(ctx)
		case "history-100k":
			err = b.groupHistoryLarge(ctx)
		case "schedules":
			err = b.groupSchedules(ctx)
		case "cluster":
			err = b.groupCluster(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
			}
			b.add(&result{Group: g, Scenario: g + ": aborted", Err: err.Error()})
		}
		killAllServers()
	}
	elapsed := time.Since(start)

	fmt.Printf("\nprunner bench (%s, %s, %d CPUs, %s, %s)\n\n", mode, version, runtime.NumCPU(),
		time.Now().UTC().Format(time.RFC3339), elapsed.Round(time.Second))
	printTable(os.Stdout, b.results)
	errs, misses := 0, 0
	for _, r := range b.results {
		switch r.verdict() {
		case "error":
			errs++
		case "miss":
			misses++
		}
	}
	fmt.Printf("\n%d rows: %d missed targets, %d errors\n", len(b.results), misses, errs)
	if ctx.Err() != nil {
		fmt.Printf("the run was cut short (%v): the table is incomplete\n", context.Cause(ctx))
	}
	if cfg.out != "" {
		if err := b.writeResults(version, elapsed); err != nil {
			fmt.Fprintln(os.Stderr, "bench: write results:", err)
			errs++
		}
	}
	switch {
	case ctx.Err() != nil || errs > 0:
		return 1
	case misses > 0 && cfg.strict:
		return 2
	}
	return 0
}

// add records a result and prints it at once (the table comes at the end).
func (b *bench) add(r *result) *result {
	b.results = append(b.results, r)
	row := r.row()
	fmt.Fprintf(os.Stderr, "bench:   %s: %s [%s] %s %s\n", row[0], row[2], row[3], row[4], row[5])
	return r
}

func (b *bench) writeResults(version string, elapsed time.Duration) error {
	f, err := os.OpenFile(b.cfg.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	meta := fmt.Sprintf(`{"label":%q,"scenario":"meta","binary":%q,"version":%q,"cpus":%d,"quick":%t,"elapsed_s":%.1f}`,
		b.label, b.cfg.bin, version, runtime.NumCPU(), b.cfg.quick, elapsed.Seconds())
	lines := []string{meta}
	for _, r := range b.results {
		j, err := r.jsonLine(b.label)
		if err != nil {
			return err
		}
		lines = append(lines, string(j))
	}
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func binaryVersion(bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "version unknown"
	}
	return strings.TrimSpace(string(out))
}

// newServer prepares a server with a fresh run directory.
func (b *bench) newServer(name string) (*server, error) {
	b.nserver++
	args := b.cfg.serverArgs
	if b.pg != nil {
		dbURL, err := b.pg.create(context.Background(), b.nserver)
		if err != nil {
			return nil, err
		}
		args = append(append([]string(nil), args...), "--database-url", dbURL)
	}
	return newServer(fmt.Sprintf("%02d-%s", b.nserver, name), b.cfg.bin, b.workDir, b.pipeDir, b.secret, args)
}

// startServer starts a server and waits for its first 200 on /pipelines/jobs.
func (b *bench) startServer(ctx context.Context, s *server) (time.Duration, error) {
	t0, err := s.start()
	if err != nil {
		return 0, err
	}
	d, _, err := s.waitFirst200(ctx, t0, b.token, "/pipelines/jobs", time.Millisecond, 2*time.Minute)
	return d, err
}

// startFresh prepares and starts a server with a fresh data directory, and returns it with a client.
func (b *bench) startFresh(ctx context.Context, name string) (*server, *client, error) {
	s, err := b.newServer(name)
	if err != nil {
		return nil, nil, err
	}
	if _, err := b.startServer(ctx, s); err != nil {
		s.kill()
		return nil, nil, err
	}
	return s, newClient(s.baseURL, b.token), nil
}
