package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliPipelines are the pipelines the client command tests run.
const cliPipelines = `pipelines:
  ok:
    tasks:
      hello: {script: ["echo hello {{ .name | default \"world\" }}", "echo warn >&2"]}
  fail:
    tasks:
      boom: {script: ["echo failing", "exit 4"]}
  slow:
    tasks:
      sleep: {script: ["echo started", "sleep 30"]}
  two:
    tasks:
      first: {script: ["echo one", "sleep 0.3", "echo two"]}
      second: {script: ["sleep 0.1", "echo three >&2"]}
`

// cliResult is what a run of the binary printed and its exit code.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs the binary with args in the server's directory, with the server's address and secret
// as flags after the command, and returns its output and exit code.
func (s *server) cli(args ...string) cliResult {
	s.t.Helper()
	return s.cliEnv(nil, append(args, "--address", s.addr, "--jwt-secret", s.secret)...)
}

// cliEnv runs the binary with args and extra environment variables, without adding flags.
func (s *server) cliEnv(env []string, args ...string) cliResult {
	s.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = s.dir
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// expect fails the test unless the run exited with code and its output contains every want.
func (r cliResult) expect(t *testing.T, code int, wantStdout, wantStderr []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range wantStdout {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
		}
	}
	for _, w := range wantStderr {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
}

// TestCLIJobs: `prunner jobs` lists jobs newest first in aligned columns, filters by pipeline,
// status and limit, prints the API's JSON with --json, and finds the server by host:port or URL
// with the secret from a flag, the environment or the config file.
func TestCLIJobs(t *testing.T) {
	t.Parallel()
	s := newServer(t, cliPipelines).start()
	first := s.schedule("ok", nil)
	s.waitFinished(first)
	second := s.schedule("fail", nil)
	s.waitFinished(second)
	third := s.schedule("ok", nil)
	s.waitFinished(third)
	writeFile(t, filepath.Join(s.dir, "server.yml"), "jwt_secret: "+s.secret+"\n")

	tests := []struct {
		name     string
		env      []string
		args     []string
		wantIDs  []string // in order
		notIDs   []string
		wantText []string
	}{
		{"all, newest first", nil, []string{"jobs", "--address", s.addr, "--jwt-secret", s.secret},
			[]string{third[:8], second[:8], first[:8]}, nil, []string{"ID", "PIPELINE", "STATUS", "CREATED", "STARTED", "DURATION", "succeeded", "failed"}},
		{"by pipeline", nil, []string{"jobs", "--pipeline", "ok", "--address", s.addr, "--jwt-secret", s.secret},
			[]string{third[:8], first[:8]}, []string{second[:8]}, nil},
		{"by status", nil, []string{"jobs", "--status", "failed", "--address", s.addr, "--jwt-secret", s.secret},
			[]string{second[:8]}, []string{first[:8], third[:8]}, nil},
		{"limit", nil, []string{"jobs", "--limit", "1", "--address", s.addr, "--jwt-secret", s.secret},
			[]string{third[:8]}, []string{first[:8], second[:8]}, nil},
		{"global flags before the command, address as URL", nil, []string{"--address", s.url + "/", "--jwt-secret", s.secret, "jobs"},
			[]string{third[:8]}, nil, nil},
		{"environment", []string{"PRUNNER_ADDRESS=" + s.addr, "PRUNNER_JWT_SECRET=" + s.secret}, []string{"jobs"},
			[]string{third[:8]}, nil, nil},
		{"config file", nil, []string{"jobs", "--config", "server.yml", "--address", s.addr},
			[]string{third[:8]}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := s.cliEnv(tt.env, tt.args...)
			r.expect(t, 0, tt.wantText, nil)
			last := -1
			for _, id := range tt.wantIDs {
				i := strings.Index(r.stdout, id)
				if i < 0 || i < last {
					t.Errorf("want %s after the jobs before it:\n%s", id, r.stdout)
				}
				last = i
			}
			for _, id := range tt.notIDs {
				if strings.Contains(r.stdout, id) {
					t.Errorf("%s should not be listed:\n%s", id, r.stdout)
				}
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		r := s.cli("jobs", "--json")
		r.expect(t, 0, nil, nil)
		var list struct {
			Jobs []struct {
				ID string `json:"id"`
			} `json:"jobs"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Jobs) != 3 || list.Jobs[0].ID != third {
			t.Errorf("want the API's list of 3 jobs, newest first (%v):\n%s", err, r.stdout)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		r := s.cliEnv(nil, "jobs", "--address", s.addr, "--jwt-secret", "another-secret-0123456789")
		r.expect(t, 1, nil, []string{"prunner jobs:"})
	})
	t.Run("no secret and no config file", func(t *testing.T) {
		t.Parallel()
		r := s.cliEnv(nil, "jobs", "--address", s.addr)
		r.expect(t, 1, nil, []string{"no JWT secret"})
	})
	t.Run("nodes of a server without a cluster", func(t *testing.T) {
		t.Parallel()
		s.cli("nodes").expect(t, 0, []string{"no node of a cluster"}, nil)
		s.cli("nodes", "--json").expect(t, 0, []string{`{"nodes":[]}`}, nil)
	})
}

// TestCLICancel: `prunner cancel JOB` cancels a running job; an unknown job is an error with the
// API's message and exit code 1.
func TestCLICancel(t *testing.T) {
	t.Parallel()
	s := newServer(t, cliPipelines).start()
	id := s.schedule("slow", nil)
	s.waitJob(id, 10*time.Second, "running", func(j jobJSON) bool { return j.task("sleep").Status == "running" })

	s.cli("cancel", id).expect(t, 0, []string{"canceled job " + id}, nil)
	if j := s.waitFinished(id); !j.Canceled {
		t.Errorf("job not canceled: %+v", j)
	}
	s.cli("cancel", "00000000-0000-0000-0000-000000000000").expect(t, 1, nil, []string{"prunner cancel: ", "not found"})
	s.cli("cancel").expect(t, 2, nil, []string{"want one job ID"})
}

// TestCLIScheduleWait: `prunner schedule --wait` prints the job's ID and exits with the job's
// outcome: 0 succeeded, 1 failed, 2 usage error, 3 canceled.
func TestCLIScheduleWait(t *testing.T) {
	t.Parallel()
	s := newServer(t, cliPipelines).start()
	tests := []struct {
		name       string
		args       []string
		cancel     bool
		code       int
		wantStderr []string
	}{
		{"succeeded", []string{"schedule", "ok", "--wait", "-v", "name=cli"}, false, 0, []string{"succeeded"}},
		{"failed", []string{"schedule", "--wait", "fail"}, false, 1, []string{"failed"}},
		{"usage: no pipeline", []string{"schedule", "--wait"}, false, 2, []string{"want one pipeline name"}},
		{"usage: bad variable", []string{"schedule", "ok", "-v", "novalue", "--wait"}, false, 2, []string{"key=value"}},
		{"canceled", []string{"schedule", "slow", "--wait"}, true, 3, []string{"canceled"}},
		{"unknown pipeline", []string{"schedule", "nope", "--wait"}, false, 1, []string{"prunner schedule: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.cancel {
				go s.cancelWhenRunning("slow")
			}
			r := s.cli(tt.args...)
			r.expect(t, tt.code, nil, tt.wantStderr)
			if tt.code != 2 && tt.name != "unknown pipeline" && len(strings.TrimSpace(r.stdout)) != 36 {
				t.Errorf("want the job ID on stdout, got %q", r.stdout)
			}
		})
	}
	t.Run("variables and partition reach the job; --json", func(t *testing.T) {
		t.Parallel()
		r := s.cli("schedule", "ok", "-v", "name=vars", "--partition", "p1", "--json", "--wait")
		r.expect(t, 0, []string{`{"jobId":"`}, nil)
		var answer struct {
			JobID string `json:"jobId"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &answer); err != nil {
			t.Fatal(err)
		}
		if out, _ := s.logs(answer.JobID, "hello"); out != "hello vars\n" {
			t.Errorf("stdout %q, want the variable's value", out)
		}
	})
}

// cancelWhenRunning cancels the first running job of pipeline as soon as there is one, from the
// side, as an operator would; it gives up after 15 s (the test then fails on the job's outcome).
func (s *server) cancelWhenRunning(pipeline string) {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		_, body := s.do("GET", "/jobs?status=running&pipeline="+pipeline, nil)
		var list struct {
			Jobs []struct {
				ID string `json:"id"`
			} `json:"jobs"`
		}
		if json.Unmarshal(body, &list) == nil && len(list.Jobs) > 0 {
			s.do("POST", "/job/cancel?id="+list.Jobs[0].ID, nil)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCLILogs: `prunner logs JOB TASK` prints the task's stdout and stderr; without TASK every
// task's after a header; -f follows a running task until it ends.
func TestCLILogs(t *testing.T) {
	t.Parallel()
	s := newServer(t, cliPipelines).start()
	id := s.schedule("two", nil)
	s.waitFinished(id)

	s.cli("logs", id, "first").expect(t, 0, []string{"one\ntwo\n"}, nil)
	s.cli("logs", id, "second").expect(t, 0, nil, []string{"three\n"})
	all := s.cli("logs", id)
	all.expect(t, 0, []string{"==> first (done) <==\none\ntwo\n", "==> second (done) <=="}, []string{"three"})
	s.cli("logs", id, "nope").expect(t, 1, nil, []string{"prunner logs: "})
	s.cli("logs").expect(t, 2, nil, []string{"want a job ID"})

	t.Run("follow one task", func(t *testing.T) {
		t.Parallel()
		id := s.schedule("two", nil)
		s.cli("logs", "-f", id, "first").expect(t, 0, []string{"one\ntwo\n"}, nil)
	})
	t.Run("follow all tasks", func(t *testing.T) {
		t.Parallel()
		id := s.schedule("two", nil)
		s.cli("logs", id, "-f").expect(t, 0, []string{"[first] one\n", "[first] two\n"}, []string{"[second] three\n"})
	})
}

// TestCLIScheduleFollow: `prunner schedule --follow` streams the tasks' output as it is
// produced, prefixed with the task's name when several tasks run, and exits as --wait.
func TestCLIScheduleFollow(t *testing.T) {
	t.Parallel()
	s := newServer(t, cliPipelines).start()
	tests := []struct {
		name                   string
		pipeline               string
		code                   int
		wantStdout, wantStderr []string
	}{
		{"one task: no prefix", "ok", 0, []string{"hello world\n"}, []string{"warn\n", "succeeded"}},
		{"several tasks: prefixed", "two", 0, []string{"[first] one\n", "[first] two\n"}, []string{"[second] three\n"}},
		{"failed", "fail", 1, []string{"failing\n"}, []string{"failed"}},
		{"canceled", "slow", 3, nil, []string{"canceled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.pipeline == "slow" {
				go s.cancelWhenRunning("slow")
			}
			s.cli("schedule", tt.pipeline, "--follow").expect(t, tt.code, tt.wantStdout, tt.wantStderr)
		})
	}
}

// TestCLIScheduleWaitInterrupted: Ctrl-C while `prunner schedule --wait` waits stops the waiting,
// not the job: the command says so and exits 130, and the job runs on.
func TestCLIScheduleWaitInterrupted(t *testing.T) {
	t.Parallel()
	s := newServer(t, cliPipelines).start()
	cmd := exec.Command(binary, "schedule", "slow", "--wait", "--address", s.addr, "--jwt-secret", s.secret)
	cmd.Dir = s.dir
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	id := strings.TrimSpace(line)
	if err != nil || len(id) != 36 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("want the job ID on stdout, got %q (%v)", line, err)
	}
	waitLog(t, s, id, "sleep", "started")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Errorf("exit %v, want code 130; stderr: %s", err, stderr.String())
	}
	if want := "stopped waiting; job " + id + " goes on on the server"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
	if j := s.job(id); j.Status != "running" {
		t.Errorf("the job is %s after the interrupt, want still running", j.Status)
	}
	s.do("POST", "/job/cancel?id="+id, nil)
}
