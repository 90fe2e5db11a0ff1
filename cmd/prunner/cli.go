package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prunner-dev/prunner/internal/auth"
	"github.com/prunner-dev/prunner/internal/client"
)

// clientCommands are the commands that talk to a running server. They parse their own flags,
// after the command name and between its arguments.
var clientCommands = map[string]bool{"jobs": true, "cancel": true, "schedule": true, "logs": true, "nodes": true}

// Exit codes of the client commands; schedule --wait and --follow end with the job's.
const (
	exitOK       = 0
	exitFailed   = 1 // the job failed, or the request did
	exitUsage    = 2
	exitCanceled = 3 // the job was canceled or replaced
	// exitInterrupted: Ctrl-C (or SIGTERM) stopped the command, as shells report a SIGINT.
	exitInterrupted = 130
)

// commandFlags are the flags every client command takes: where the server is and how to sign
// its token, with the values of the global flags and environment variables as defaults.
type commandFlags struct {
	*flag.FlagSet
	address, jwtSecret, configFile string
}

// newCommandFlags returns the flag set of a client command; synopsis and help head its -h.
func newCommandFlags(cfg *config, name, synopsis, help string, stderr io.Writer) *commandFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &commandFlags{FlagSet: fs}
	fs.StringVar(&f.address, "address", cfg.address, "the server's address: host:port (its --address) or a URL [PRUNNER_ADDRESS]")
	fs.StringVar(&f.jwtSecret, "jwt-secret", cfg.jwtSecret, "the server's JWT secret [PRUNNER_JWT_SECRET]")
	fs.StringVar(&f.configFile, "config", cfg.configFile, "the server's config file with jwt_secret [PRUNNER_CONFIG]")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: prunner %s %s\n\n%s\n\nFlags:\n", name, synopsis, help)
		fs.PrintDefaults()
	}
	return f
}

// parse parses flags and arguments in any order and returns the arguments.
func (f *commandFlags) parse(args []string) ([]string, error) {
	var positional []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, err
		}
		if f.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, f.Arg(0))
		args = f.Args()[1:]
	}
}

// client returns an API client with a token signed by the server's secret. Unlike the server and
// `prunner debug`, it never creates the config file: a new secret would not be the server's.
func (f *commandFlags) client() (*client.Client, error) {
	if f.jwtSecret == "" {
		if _, err := os.Stat(f.configFile); err != nil {
			return nil, fmt.Errorf("no JWT secret: pass --jwt-secret, set PRUNNER_JWT_SECRET or point --config at the server's config file (%v)", err)
		}
	}
	secret, err := auth.ResolveSecret(f.jwtSecret, f.configFile)
	if err != nil {
		return nil, err
	}
	token, err := auth.DebugToken(secret, time.Now())
	if err != nil {
		return nil, err
	}
	return client.New(f.address, token)
}

// runClientCommand runs one of clientCommands and returns the exit code. Ctrl-C (SIGINT) or
// SIGTERM ends the command's requests, and it exits with exitInterrupted.
func runClientCommand(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := clientCommand(ctx, cfg, stdout, stderr)
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return code
}

// clientCommand dispatches to the command cfg names.
func clientCommand(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	switch cfg.command {
	case "jobs":
		return jobsCommand(ctx, cfg, stdout, stderr)
	case "cancel":
		return cancelCommand(ctx, cfg, stdout, stderr)
	case "schedule":
		return scheduleCommand(ctx, cfg, stdout, stderr)
	case "logs":
		return logsCommand(ctx, cfg, stdout, stderr)
	case "nodes":
		return nodesCommand(ctx, cfg, stdout, stderr)
	}
	return exitUsage
}

// usageError prints a usage problem and returns its exit code.
func usageError(stderr io.Writer, f *commandFlags, format string, a ...any) int {
	fmt.Fprintf(stderr, "prunner %s: %s (see prunner %s -h)\n", f.Name(), fmt.Sprintf(format, a...), f.Name())
	return exitUsage
}

// requestError prints a failed request and returns its exit code. A request ended by Ctrl-C
// prints nothing: the interrupt is no error to report.
func requestError(stderr io.Writer, f *commandFlags, err error) int {
	if errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	fmt.Fprintf(stderr, "prunner %s: %v\n", f.Name(), err)
	return exitFailed
}

// parseError returns the exit code of a flag error; -h is no error.
func parseError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

func jobsCommand(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	f := newCommandFlags(cfg, "jobs", "[--pipeline P] [--status S] [--limit N] [--json]",
		"Lists the server's jobs, newest first, with times in the local time zone.", stderr)
	var q client.JobQuery
	var asJSON bool
	f.StringVar(&q.Pipeline, "pipeline", "", "only jobs of this pipeline")
	f.StringVar(&q.Status, "status", "", "only jobs with these statuses, comma-separated: queued, running, succeeded, failed, canceled, replaced")
	f.IntVar(&q.Limit, "limit", 20, "at most this many jobs (1-1000)")
	f.BoolVar(&asJSON, "json", false, "print the API's JSON as it is")
	args, err := f.parse(cfg.args)
	if err != nil {
		return parseError(err)
	}
	if len(args) > 0 {
		return usageError(stderr, f, "unexpected argument %q", args[0])
	}
	c, err := f.client()
	if err != nil {
		return requestError(stderr, f, err)
	}
	list, err := c.Jobs(ctx, q)
	if err != nil {
		return requestError(stderr, f, err)
	}
	if asJSON {
		stdout.Write(list.Raw)
		fmt.Fprintln(stdout)
		return exitOK
	}
	printJobs(stdout, list.Jobs, time.Now(), useColor(stdout))
	return exitOK
}

// printJobs prints jobs as aligned columns, their statuses in colour when color is set.
func printJobs(w io.Writer, jobs []client.Job, now time.Time, color bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPIPELINE\tSTATUS\tCREATED\tSTARTED\tDURATION")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortID(j.ID), j.Pipeline, statusCell(j.Status, color),
			localTime(&j.Created), localTime(j.Start), duration(j.Start, j.End, now))
	}
	tw.Flush()
}

// statusColors are the ANSI colours of the job statuses: green, red, yellow, cyan; the others
// keep the terminal's colour (39). Every code has the same length, so that the columns that
// tabwriter aligns by bytes stay aligned.
var statusColors = map[string]string{
	"succeeded": "32", "failed": "31", "canceled": "33", "replaced": "33", "running": "36",
}

// statusCell is a job status for the list, in its colour when color is set.
func statusCell(status string, color bool) string {
	if !color {
		return status
	}
	code, ok := statusColors[status]
	if !ok {
		code = "39"
	}
	return "\x1b[" + code + "m" + status + "\x1b[0m"
}

// useColor reports whether w is a terminal that wants colours: a character device, unless
// NO_COLOR is set (https://no-color.org) or TERM is dumb.
func useColor(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// shortID is the start of a job ID, enough to tell jobs apart in a list.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// localTime formats a time in the local time zone; no time is "-".
func localTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// duration is how long a job ran, or has been running until now.
func duration(start, end *time.Time, now time.Time) string {
	if start == nil {
		return "-"
	}
	until := now
	if end != nil {
		until = *end
	}
	return until.Sub(*start).Round(time.Second).String()
}

func cancelCommand(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	f := newCommandFlags(cfg, "cancel", "JOB", "Cancels a job: a waiting job leaves the wait list, a running job's tasks are stopped.", stderr)
	args, err := f.parse(cfg.args)
	if err != nil {
		return parseError(err)
	}
	if len(args) != 1 {
		return usageError(stderr, f, "want one job ID")
	}
	c, err := f.client()
	if err != nil {
		return requestError(stderr, f, err)
	}
	if err := c.Cancel(ctx, args[0]); err != nil {
		return requestError(stderr, f, err)
	}
	fmt.Fprintf(stdout, "canceled job %s\n", args[0])
	return exitOK
}

const scheduleHelp = `Schedules a job of PIPELINE and prints its ID.

With --wait the command waits until the job has ended, with --follow it also prints the output of
the job's tasks as they produce it (each line prefixed with the task's name when the job has
several tasks). Both then exit with the job's outcome:
  0  the job succeeded
  1  the job failed (or a request failed)
  2  usage error
  3  the job was canceled (or replaced by another job)`

func scheduleCommand(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	f := newCommandFlags(cfg, "schedule", "PIPELINE [-v key=value ...] [--partition P] [--wait | --follow] [--json]", scheduleHelp, stderr)
	req := client.ScheduleRequest{Variables: map[string]any{}}
	var wait, follow, asJSON bool
	f.Func("v", "a variable of the job, key=value (repeatable)", func(kv string) error {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, got %q", kv)
		}
		req.Variables[k] = v
		return nil
	})
	f.StringVar(&req.QueuePartition, "partition", "", "the job's queue partition (partitioned_replace)")
	f.BoolVar(&wait, "wait", false, "wait until the job has ended; exit with its outcome")
	f.BoolVar(&follow, "follow", false, "print the tasks' output live until the job has ended; exit with its outcome")
	f.BoolVar(&asJSON, "json", false, `print {"jobId": …} instead of the ID`)
	args, err := f.parse(cfg.args)
	if err != nil {
		return parseError(err)
	}
	if len(args) != 1 {
		return usageError(stderr, f, "want one pipeline name")
	}
	req.Pipeline = args[0]
	c, err := f.client()
	if err != nil {
		return requestError(stderr, f, err)
	}
	id, err := c.Schedule(ctx, req)
	if err != nil {
		return requestError(stderr, f, err)
	}
	if asJSON {
		b, _ := json.Marshal(map[string]string{"jobId": id})
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		fmt.Fprintln(stdout, id)
	}
	if !wait && !follow {
		return exitOK
	}
	if follow {
		if err := followJob(ctx, c, id, stdout, stderr); err != nil {
			return waitError(stderr, f, id, err)
		}
	}
	job, err := waitJob(ctx, c, id, 200*time.Millisecond)
	if err != nil {
		return waitError(stderr, f, id, err)
	}
	return reportOutcome(stderr, job)
}

// waitError reports an error while waiting for job id; after Ctrl-C it says that only the
// waiting stopped, not the job.
func waitError(stderr io.Writer, f *commandFlags, id string, err error) int {
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "prunner %s: stopped waiting; job %s goes on on the server (prunner cancel %s stops it)\n", f.Name(), id, id)
		return exitInterrupted
	}
	return requestError(stderr, f, err)
}

// waitJob polls a job until it has ended.
func waitJob(ctx context.Context, c *client.Client, id string, every time.Duration) (*client.Job, error) {
	for {
		job, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if job.Ended() {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(every):
		}
	}
}

// reportOutcome prints how an ended job ended and returns the exit code for it.
func reportOutcome(stderr io.Writer, job *client.Job) int {
	msg := fmt.Sprintf("job %s %s", job.ID, job.Status)
	if job.LastError != "" {
		msg += ": " + job.LastError
	}
	fmt.Fprintln(stderr, msg)
	switch job.Status {
	case "succeeded":
		return exitOK
	case "canceled", "replaced":
		return exitCanceled
	}
	return exitFailed
}

func logsCommand(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	f := newCommandFlags(cfg, "logs", "JOB [TASK] [-f]",
		"Prints a task's stdout (to stdout) and stderr (to stderr); without TASK every task's, each after a header.\nWith -f follows the output live until the task (or job) has ended.", stderr)
	var follow bool
	f.BoolVar(&follow, "f", false, "follow the output live")
	args, err := f.parse(cfg.args)
	if err != nil {
		return parseError(err)
	}
	if len(args) < 1 || len(args) > 2 {
		return usageError(stderr, f, "want a job ID and optionally a task name")
	}
	c, err := f.client()
	if err != nil {
		return requestError(stderr, f, err)
	}
	id := args[0]
	switch {
	case follow && len(args) == 2:
		err = followTasks(ctx, c, id, args[1:], stdout, stderr)
	case follow:
		err = followJob(ctx, c, id, stdout, stderr)
	case len(args) == 2:
		err = printLogs(ctx, c, id, args[1], stdout, stderr)
	default:
		err = printJobLogs(ctx, c, id, stdout, stderr)
	}
	if err != nil {
		return requestError(stderr, f, err)
	}
	return exitOK
}

// printLogs prints one task's output.
func printLogs(ctx context.Context, c *client.Client, id, task string, stdout, stderr io.Writer) error {
	logs, err := c.Logs(ctx, id, task)
	if err != nil {
		return err
	}
	io.WriteString(stdout, logs.Stdout)
	io.WriteString(stderr, logs.Stderr)
	return nil
}

// printJobLogs prints every task's output, each after a header on stdout.
func printJobLogs(ctx context.Context, c *client.Client, id string, stdout, stderr io.Writer) error {
	job, err := c.Job(ctx, id)
	if err != nil {
		return err
	}
	for i, t := range job.Tasks {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "==> %s (%s) <==\n", t.Name, t.Status)
		if err := printLogs(ctx, c, id, t.Name, stdout, stderr); err != nil {
			return err
		}
	}
	return nil
}

// followJob follows the output of all of a job's tasks at once.
func followJob(ctx context.Context, c *client.Client, id string, stdout, stderr io.Writer) error {
	job, err := c.Job(ctx, id)
	if err != nil {
		return err
	}
	names := make([]string, len(job.Tasks))
	for i, t := range job.Tasks {
		names[i] = t.Name
	}
	return followTasks(ctx, c, id, names, stdout, stderr)
}

// followTasks follows tasks' output live, each in its own stream, until every task has ended.
// With several tasks each line is prefixed with its task's name.
func followTasks(ctx context.Context, c *client.Client, id string, tasks []string, stdout, stderr io.Writer) error {
	var mu sync.Mutex
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, task := range tasks {
		prefix := ""
		if len(tasks) > 1 {
			prefix = "[" + task + "] "
		}
		out := &linePrefixer{mu: &mu, w: stdout, prefix: prefix}
		errOut := &linePrefixer{mu: &mu, w: stderr, prefix: prefix}
		wg.Go(func() {
			errs[i] = c.Follow(ctx, id, task, func(ev client.Event) {
				switch ev.Name {
				case "stdout":
					out.write(ev.Text())
				case "stderr":
					errOut.write(ev.Text())
				}
			})
			out.flush()
			errOut.flush()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// linePrefixer writes whole lines with a prefix; writers sharing mu never interleave within a
// line. A partial line waits for its end (or flush).
type linePrefixer struct {
	mu      *sync.Mutex
	w       io.Writer
	prefix  string
	pending string
}

func (p *linePrefixer) write(text string) {
	p.pending += text
	for {
		i := strings.IndexByte(p.pending, '\n')
		if i < 0 {
			return
		}
		p.emit(p.pending[:i+1])
		p.pending = p.pending[i+1:]
	}
}

func (p *linePrefixer) flush() {
	if p.pending != "" {
		p.emit(p.pending + "\n")
		p.pending = ""
	}
}

func (p *linePrefixer) emit(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	io.WriteString(p.w, p.prefix+line)
}
