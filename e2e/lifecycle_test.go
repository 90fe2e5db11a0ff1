package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestSIGINTDrainsRunningJobsAndKeepsQueuedOnes(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p:
    tasks:
      t: {script: ["sleep 1", "echo finished"]}
`).start()
	running := s.schedule("p", nil)
	queued := s.schedule("p", nil)
	s.waitJob(running, 10*time.Second, "running", func(j jobJSON) bool { return j.task("t").Status == "running" })
	s.signal(syscall.SIGINT)
	// New schedules are refused while the running job finishes.
	eventually(t, 5*time.Second, "503 while draining", func() bool {
		_, status, _ := s.trySchedule("p", nil, "")
		return status == 503
	})
	if code := s.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	s.start()
	if j := s.job(running); !j.Completed || j.Errored || j.task("t").Status != "done" {
		t.Errorf("drained job = %+v, want finished normally", j)
	}
	// The queued job survived the shutdown and runs now.
	j := s.waitFinished(queued)
	if j.Errored || j.Canceled {
		t.Errorf("queued job after restart = %+v", j)
	}
}

func TestSIGTERMCancelsRunningJobs(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p:
    tasks:
      t: {script: ["sh -c 'sleep 300 & echo $! > gc.pid; trap \"\" TERM INT; wait'"]}
`, "--kill-grace", "300ms").start()
	id := s.schedule("p", nil)
	pid := readPid(t, filepath.Join(s.dir, "gc.pid"))
	begin := time.Now()
	s.signal(syscall.SIGTERM)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("SIGTERM exit took %v", d)
	}
	if pidAlive(pid) {
		t.Errorf("grandchild %d survived SIGTERM", pid)
	}
	s.start()
	if j := s.job(id); !j.Completed || !j.Canceled || j.End == nil {
		t.Errorf("job after SIGTERM = %+v", j)
	}
}

func TestKill9Recovery(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p:
    tasks:
      t: {script: ["sh -c 'sleep 300 & echo $! > orphan.pid; wait'"]}
  q:
    tasks:
      t: {script: ["echo ran"]}
    concurrency: 1
`).start()
	running := s.schedule("p", nil)
	queued := s.schedule("p", nil)
	orphan := readPid(t, filepath.Join(s.dir, "orphan.pid"))
	s.kill9()
	if !pidAlive(orphan) {
		t.Fatalf("orphan %d died with the server; the test needs it alive", orphan)
	}
	os.Remove(filepath.Join(s.dir, "orphan.pid"))
	s.start()
	j := s.job(running)
	if !j.Completed || !j.Errored || j.End == nil || !strings.Contains(j.LastError, "server stopped") {
		t.Errorf("crashed job = %+v, want completed, errored, end set and a clear lastError", j)
	}
	if task := j.task("t"); task.Status != "error" || task.End == nil {
		t.Errorf("crashed task = %+v", task)
	}
	eventually(t, 5*time.Second, "orphaned process to be killed", func() bool { return !pidAlive(orphan) })
	// The queued job runs after the restart.
	s.waitJob(queued, 10*time.Second, "started", func(j jobJSON) bool { return j.Start != nil })
	s.do("POST", "/job/cancel?id="+queued, nil)
}

func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p:
    tasks:
      t: {script: ["echo persisted {{ .x }}"]}
`).start()
	id := s.schedule("p", map[string]any{"x": "value"})
	s.waitFinished(id)
	_, before := s.do("GET", "/job/detail?id="+id, nil)
	s.signal(syscall.SIGINT)
	s.wait(10 * time.Second)
	s.start()
	_, after := s.do("GET", "/job/detail?id="+id, nil)
	if string(before) != string(after) {
		t.Errorf("job changed across restart:\nbefore %s\nafter  %s", before, after)
	}
	if out, _ := s.logs(id, "t"); out != "persisted value\n" {
		t.Errorf("logs after restart = %q", out)
	}
}

func TestSecondServerOnSameDataDirRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, "pipelines: {}\n").start()
	second := newServer(t, "pipelines: {}\n")
	second.dataDir = s.dataDir
	second.startNoWait()
	begin := time.Now()
	if code := second.wait(2 * time.Second); code == 0 {
		t.Errorf("second server exited 0")
	}
	if !strings.Contains(second.output.String(), "in use by another prunner") {
		t.Errorf("message = %q", second.output.String())
	}
	if time.Since(begin) > 2*time.Second {
		t.Errorf("refusal took %v", time.Since(begin))
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  keep2:
    retention_count: 2
    tasks: {t: {script: ["echo out"]}}
  byage:
    retention_period: 1s
    tasks: {t: {script: ["echo out"]}}
`).start()
	var ids []string
	for i := 0; i < 4; i++ {
		id := s.schedule("keep2", nil)
		s.waitFinished(id)
		ids = append(ids, id)
	}
	eventually(t, 5*time.Second, "retention by count", func() bool {
		status, _ := s.do("GET", "/job/detail?id="+ids[0], nil)
		status2, _ := s.do("GET", "/job/detail?id="+ids[1], nil)
		return status == 404 && status2 == 404
	})
	for _, id := range ids[2:] {
		if status, _ := s.do("GET", "/job/detail?id="+id, nil); status != 200 {
			t.Errorf("newest job %s removed", id)
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "logs", ids[0])); !os.IsNotExist(err) {
		t.Errorf("log directory of a removed job still exists: %v", err)
	}
	old := s.schedule("byage", nil)
	s.waitFinished(old)
	time.Sleep(1100 * time.Millisecond)
	fresh := s.schedule("byage", nil)
	s.waitFinished(fresh)
	eventually(t, 5*time.Second, "retention by period", func() bool {
		status, _ := s.do("GET", "/job/detail?id="+old, nil)
		return status == 404
	})
	if status, _ := s.do("GET", "/job/detail?id="+fresh, nil); status != 200 {
		t.Errorf("fresh job removed")
	}
}

func TestReloadOnSIGUSR1(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  first:
    tasks: {t: {script: ["sleep 1", "echo first-v1"]}}
`).start()
	running := s.schedule("first", nil)
	writeFile(t, filepath.Join(s.dir, "pipelines.yml"), `
pipelines:
  first:
    tasks: {t: {script: ["echo first-v2"]}}
  second:
    tasks: {t: {script: ["true"]}}
`)
	s.signal(syscall.SIGUSR1)
	eventually(t, 5*time.Second, "second pipeline after reload", func() bool {
		_, status, _ := s.trySchedule("second", nil, "")
		return status == 202
	})
	s.waitFinished(running)
	if out, _ := s.logs(running, "t"); out != "first-v1\n" {
		t.Errorf("running job used %q, want the definition it was scheduled with", out)
	}
	// A broken file keeps the old definitions.
	writeFile(t, filepath.Join(s.dir, "pipelines.yml"), "pipelines:\n  first:\n    tasks: [broken\n")
	s.signal(syscall.SIGUSR1)
	eventually(t, 5*time.Second, "reload failure logged", func() bool {
		return strings.Contains(s.output.String(), "reload failed")
	})
	id := s.schedule("second", nil)
	s.waitFinished(id)
	if !strings.Contains(s.output.String(), "pipelines.yml") {
		t.Errorf("reload error does not name the file")
	}
	// So does a file whose pipeline could never accept a job: "second" stays as it was.
	writeFile(t, filepath.Join(s.dir, "pipelines.yml"), "pipelines:\n  second:\n    start_delay: 1s\n    queue_limit: 0\n    tasks: {t: {script: [\"true\"]}}\n")
	s.signal(syscall.SIGUSR1)
	eventually(t, 5*time.Second, "dead-queue reload failure logged", func() bool {
		return strings.Contains(s.output.String(), "can never accept a job")
	})
	if !strings.Contains(s.output.String(), `pipelines.yml:4: pipeline \"second\": start_delay with queue_limit: 0`) &&
		!strings.Contains(s.output.String(), `pipelines.yml:4: pipeline "second": start_delay with queue_limit: 0`) {
		t.Errorf("reload error does not name the file and line:\n%s", s.output.String())
	}
	s.waitFinished(s.schedule("second", nil))
}

func TestWatchReloads(t *testing.T) {
	t.Parallel()
	s := newServer(t, "pipelines:\n  a:\n    tasks: {t: {script: [\"true\"]}}\n", "--watch", "--poll-interval", "100ms").start()
	// The new file differs in size, so that the change shows even if its modification time
	// falls in the same clock tick as the first write's.
	writeFile(t, filepath.Join(s.dir, "pipelines.yml"), "# edited\npipelines:\n  b:\n    tasks: {t: {script: [\"true\"]}}\n")
	eventually(t, 5*time.Second, "pipeline b after watch", func() bool {
		_, status, _ := s.trySchedule("b", nil, "")
		return status == 202
	})
}

func TestBadDefinitionsStopStartup(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p:
    concurrency: 0
    tasks:
      a: {script: ["true"], depends_on: [missing]}
`)
	s.startNoWait()
	if code := s.wait(5 * time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	out := s.output.String()
	for _, want := range []string{"pipelines.yml", "concurrency must be greater than 0", `missing task "missing" referenced in depends_on of task "a"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSecretSources(t *testing.T) {
	t.Parallel()
	t.Run("config file is created and used", func(t *testing.T) {
		s := newServer(t, "pipelines: {}\n")
		s.secret = ""
		s.start()
		data, err := os.ReadFile(filepath.Join(s.dir, ".prunner.yml"))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := os.Stat(filepath.Join(s.dir, ".prunner.yml"))
		if info.Mode().Perm() != 0o600 {
			t.Errorf("config mode %v, want 0600", info.Mode().Perm())
		}
		secret := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(data)), "jwt_secret:"))
		secret = strings.Trim(secret, `"'`)
		if len(secret) != 32 {
			t.Fatalf("generated secret %q, want 32 characters", secret)
		}
		tok := mintToken(t, secret, jwt.MapClaims{"sub": "host", "exp": time.Now().Add(time.Minute).Unix()})
		if status, _ := s.doWithToken("GET", "/pipelines", nil, tok); status != 200 {
			t.Errorf("token from the config file's secret: %d", status)
		}
		// prunner debug prints a token for the same secret.
		cmd := exec.Command(binary, "debug")
		cmd.Dir = s.dir
		cmd.Env = append(cleanEnv(), "MINIMAL_OUTPUT=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		// Exactly "Bearer <jwt>": no newline or other whitespace, so that a host app can send it
		// as the Authorization header as it reads it.
		line := string(out)
		if !regexp.MustCompile(`^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`).MatchString(line) {
			t.Fatalf("MINIMAL_OUTPUT=1 debug printed %q, want exactly \"Bearer <jwt>\"", out)
		}
		if status, _ := s.doWithToken("GET", "/pipelines", nil, strings.TrimPrefix(line, "Bearer ")); status != 200 {
			t.Errorf("debug token: %d", status)
		}
		cmd = exec.Command(binary, "debug")
		cmd.Dir = s.dir
		cmd.Env = cleanEnv()
		out, _ = cmd.Output()
		if !strings.Contains(string(out), "Authorization: Bearer ") {
			t.Errorf("debug printed %q", out)
		}
	})
	t.Run("config file secret", func(t *testing.T) {
		s := newServer(t, "pipelines: {}\n")
		writeFile(t, filepath.Join(s.dir, "custom.yml"), "jwt_secret: from-the-config-file-0123\n")
		s.secret = ""
		s.extra = []string{"--config", filepath.Join(s.dir, "custom.yml")}
		s.start()
		if status, _ := s.doWithToken("GET", "/pipelines", nil, mintToken(t, "from-the-config-file-0123", nil)); status != 200 {
			t.Errorf("config secret token: %d", status)
		}
	})
	t.Run("env secret wins and the config file is not created", func(t *testing.T) {
		s := newServer(t, "pipelines: {}\n")
		s.secret = ""
		s.env = []string{"PRUNNER_JWT_SECRET=from-the-environment-0123"}
		s.start()
		if status, _ := s.doWithToken("GET", "/pipelines", nil, mintToken(t, "from-the-environment-0123", nil)); status != 200 {
			t.Errorf("env secret token: %d", status)
		}
		if _, err := os.Stat(filepath.Join(s.dir, ".prunner.yml")); !os.IsNotExist(err) {
			t.Errorf("config file created although the secret came from the environment")
		}
	})
	t.Run("short secret", func(t *testing.T) {
		s := newServer(t, "pipelines: {}\n")
		s.secret = "short"
		s.startNoWait()
		if code := s.wait(5 * time.Second); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if !strings.Contains(s.output.String(), "16") {
			t.Errorf("message does not say the minimum length: %s", s.output.String())
		}
	})
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "prunner ") {
		t.Errorf("version: %q %v", out, err)
	}
}

// TestDrainTimeout: after SIGINT, running jobs get --drain-timeout to finish; a job that takes
// longer is then canceled as on SIGTERM (its processes killed, the job canceled with the reason)
// and the server exits 0. A job that ends within the time succeeds; queued jobs stay queued.
func TestDrainTimeout(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  long:
    concurrency: 1
    tasks: {t: {script: ["echo started", "sleep 60"]}}
  quick:
    tasks: {t: {script: ["echo started", "sleep 0.3"]}}
`, "--drain-timeout", "1500ms").start()
	long := s.schedule("long", nil)
	queued := s.schedule("long", nil)
	quick := s.schedule("quick", nil)
	for _, id := range []string{long, quick} {
		s.waitJob(id, 10*time.Second, "job running", func(j jobJSON) bool { return j.Status == "running" })
	}
	start := time.Now()
	s.signal(syscall.SIGINT)
	if code := s.wait(20 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 10*time.Second {
		t.Errorf("exited %v after SIGINT, want just after the 1.5 s drain timeout", d)
	}
	if out := s.output.String(); !strings.Contains(out, "drain timeout elapsed") {
		t.Errorf("the log does not say the drain timed out:\n%s", out)
	}
	// The canceled job's processes died with it: nothing the server started is left.
	if left := markedProcesses(func(m string) bool { return m == s.marker }); len(left) > 0 {
		t.Errorf("processes left after the drain timeout: %v", left)
	}

	s.restart()
	if j := s.job(long); j.Status != "canceled" || j.LastError != "job canceled: server stopping (the drain timeout of 1.5s elapsed)" {
		t.Errorf("the long job ended %s %q, want canceled with the drain timeout as its reason", j.Status, j.LastError)
	}
	if j := s.job(quick); j.Status != "succeeded" {
		t.Errorf("the quick job ended %s %q, want succeeded within the drain time", j.Status, j.LastError)
	}
	if j := s.job(queued); j.Status != "queued" && j.Status != "running" {
		t.Errorf("the queued job is %s %q after the restart, want it kept (queued, or running again)", j.Status, j.LastError)
	}
}

// TestSyncFull: a server with --sync-full (synchronous=FULL) runs jobs and keeps them across a
// restart like the default.
func TestSyncFull(t *testing.T) {
	t.Parallel()
	s := newServer(t, "pipelines:\n  p:\n    tasks: {t: {script: [\"echo durable\"]}}\n", "--sync-full").start()
	id := s.schedule("p", nil)
	if j := s.waitFinished(id); j.Status != "succeeded" {
		t.Fatalf("job %s %q", j.Status, j.LastError)
	}
	s.signal(syscall.SIGINT)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	s.restart()
	if j := s.job(id); j.Status != "succeeded" {
		t.Errorf("after a restart the job is %s", j.Status)
	}
}
