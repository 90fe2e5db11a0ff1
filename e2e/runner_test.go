package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDAGRunsTasksInDependencyOrder(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  dag:
    tasks:
      a: {script: ["echo a >> order.txt"]}
      b: {script: ["echo b >> order.txt"], depends_on: [a]}
      c: {script: ["echo c >> order.txt"], depends_on: [b]}
      d: {script: ["echo d >> order.txt"], depends_on: [c, a]}
`).start()
	j := s.waitFinished(s.schedule("dag", nil))
	if j.Errored {
		t.Fatalf("job errored: %+v", j)
	}
	data, _ := os.ReadFile(filepath.Join(s.dir, "order.txt"))
	if got := strings.Fields(string(data)); strings.Join(got, "") != "abcd" {
		t.Errorf("execution order = %v, want a b c d", got)
	}
}

func TestScriptLinesShareOneShellSession(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  session:
    tasks:
      t:
        script:
          - mkdir -p sub && cd sub
          - X=hello; greet() { echo "$1 from $(basename "$PWD")"; }
          - greet $X
          - missing-command-xyz
`).start()
	j := s.waitFinished(s.schedule("session", nil))
	out, _ := s.logs(j.ID, "t")
	if out != "hello from sub\n" {
		t.Errorf("stdout = %q, want the variable, function and cd carried across lines", out)
	}
	if task := j.task("t"); task.ExitCode != 127 || task.Error != "exit status 127" {
		t.Errorf("command not found: %+v, want exit code 127", task)
	}
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  tpl:
    tasks:
      render:
        script:
          - echo "{{ .greeting }} {{ .name | default "world" }} {{ .__jobID }}"
          - printf '%s\n' {{ shellquote .evil }}
      missing:
        depends_on: [render]
        script:
          - echo {{ .nope }}
`).start()
	evil := `'; touch pwned; echo '$(touch pwned2)` + "`touch pwned3`\nnext"
	id := s.schedule("tpl", map[string]any{"greeting": "{{ .word }}!", "word": "hi", "evil": evil})
	j := s.waitFinished(id)
	out, _ := s.logs(id, "render")
	if want := "hi! world " + id + "\n" + evil + "\n"; out != want {
		t.Errorf("render stdout = %q, want %q", out, want)
	}
	for _, f := range []string{"pwned", "pwned2", "pwned3"} {
		if _, err := os.Stat(filepath.Join(s.dir, f)); err == nil {
			t.Errorf("shellquote let the variable run a command: %s exists", f)
		}
	}
	miss := j.task("missing")
	if miss.Status != "error" || !strings.Contains(miss.Error, `map has no entry for key "nope"`) {
		t.Errorf("missing key task = %+v, want the template error", miss)
	}
}

func TestEnvironmentPrecedence(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  env:
    env: {FROM_PIPELINE: pipeline, OVERRIDDEN: pipeline, TASK_NAME: pipeline-cannot-set-it}
    tasks:
      show:
        env: {OVERRIDDEN: task}
        script:
          - echo "$FROM_DOTENV $FROM_LOCAL $BOTH $FROM_PIPELINE $OVERRIDDEN $TASK_NAME $FROM_SERVER"
          - echo "secret=[$PRUNNER_JWT_SECRET]"
          - env | grep -c e2e-test-secret || true
`)
	writeFile(t, filepath.Join(s.dir, ".env"), "FROM_DOTENV=dotenv\nBOTH=dotenv\nFROM_SERVER=dotenv\n")
	writeFile(t, filepath.Join(s.dir, ".env.local"), "FROM_LOCAL=local\nBOTH=local\n")
	s.env = []string{"FROM_SERVER=server", "PRUNNER_JWT_SECRET=" + testSecret}
	s.secret = ""
	s.start()
	s.secret = testSecret
	id := s.schedule("env", nil)
	s.waitFinished(id)
	out, _ := s.logs(id, "show")
	want := "dotenv local local pipeline task show dotenv\nsecret=[]\n0\n"
	if out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
}

// TestOnErrorGetsTheFailedTask runs on_error through the binary: the failed task's details reach
// its script and its output is served like a task's. The DAG's other failure semantics (fail-fast,
// continue after failure, skipped dependents, allow_failure, on_error not after a cancel) are
// tested in-process in internal/runner.
func TestOnErrorGetsTheFailedTask(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  handler:
    tasks:
      bad: {script: ["echo some-output", "echo some-error >&2", "exit 7"]}
    on_error:
      script:
        - echo "{{ .failedTaskName }}|{{ .failedTaskExitCode }}|{{ .failedTaskError }}|{{ .failedTaskStdout }}|{{ .failedTaskStderr }}"
`).start()
	j := s.waitFinished(s.schedule("handler", nil))
	if !j.Errored || j.Canceled || j.LastError != "exit status 7" {
		t.Errorf("job = %+v, want errored, not canceled, with the failed task's error", j)
	}
	last := j.Tasks[len(j.Tasks)-1]
	if last.Name != "on_error" || last.Status != "done" {
		t.Fatalf("last task = %+v, want on_error done", last)
	}
	out, _ := s.logs(j.ID, "on_error")
	if want := "bad|7|exit status 7|some-output\n|some-error\n\n"; out != want {
		t.Errorf("on_error stdout = %q, want %q", out, want)
	}
}

func TestCancelRunningKillsGrandchildren(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p:
    tasks:
      t:
        script:
          - sh -c 'sleep 300 & echo $! > grandchild.pid; trap "" INT TERM; wait'
`, "--kill-grace", "300ms").start()
	id := s.schedule("p", nil)
	pid := readPid(t, filepath.Join(s.dir, "grandchild.pid"))
	if !pidAlive(pid) {
		t.Fatalf("grandchild %d not running", pid)
	}
	s.do("POST", "/job/cancel?id="+id, nil)
	j := s.waitFinished(id)
	if !j.Canceled || !j.Completed {
		t.Errorf("job = %+v", j)
	}
	eventually(t, 5*time.Second, fmt.Sprintf("grandchild %d to die", pid), func() bool { return !pidAlive(pid) })
}

func TestQueueStrategies(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  append:
    queue_limit: 2
    tasks: {t: {script: ["sleep 30"]}}
  nolist:
    queue_limit: 0
    concurrency: 2
    tasks: {t: {script: ["sleep 30"]}}
  replace:
    queue_limit: 1
    queue_strategy: replace
    tasks: {t: {script: ["sleep 30"]}}
  unbounded_replace:
    queue_strategy: replace
    tasks: {t: {script: ["sleep 30"]}}
  parts:
    queue_strategy: partitioned_replace
    queue_partition_limit: 1
    tasks: {t: {script: ["sleep 30"]}}
  delayed:
    start_delay: 700ms
    tasks: {t: {script: ["true"]}}
`, "--kill-grace", "200ms").start()

	t.Run("append", func(t *testing.T) {
		running := s.schedule("append", nil)
		q1 := s.schedule("append", nil)
		q2 := s.schedule("append", nil)
		if _, status, body := s.trySchedule("append", nil, ""); status != 400 || !strings.Contains(string(body), "error") {
			t.Errorf("full queue: %d %s, want 400", status, body)
		}
		if p := s.pipeline("append"); p["schedulable"] != false || p["running"] != true {
			t.Errorf("pipeline state = %v, want running and not schedulable", p)
		}
		// Canceling a queued job frees its slot.
		s.do("POST", "/job/cancel?id="+q1, nil)
		if j := s.job(q1); !j.Canceled || j.Completed || j.Start != nil {
			t.Errorf("canceled queued job = %+v", j)
		}
		q3 := s.schedule("append", nil)
		// The running job ends: the oldest waiting job starts next.
		s.do("POST", "/job/cancel?id="+running, nil)
		s.waitJob(q2, 10*time.Second, "started", func(j jobJSON) bool { return j.Start != nil })
		if j := s.job(q3); j.Start != nil {
			t.Errorf("q3 started before q2 finished: %+v", j)
		}
		s.do("POST", "/job/cancel?id="+q2, nil)
		s.waitJob(q3, 10*time.Second, "started", func(j jobJSON) bool { return j.Start != nil })
		s.do("POST", "/job/cancel?id="+q3, nil)
	})
	t.Run("queue_limit 0 starts while slots are free", func(t *testing.T) {
		a := s.schedule("nolist", nil)
		b := s.schedule("nolist", nil)
		if _, status, _ := s.trySchedule("nolist", nil, ""); status != 400 {
			t.Errorf("third job: %d, want 400 (no wait list)", status)
		}
		s.do("POST", "/job/cancel?id="+a, nil)
		s.do("POST", "/job/cancel?id="+b, nil)
	})
	t.Run("replace", func(t *testing.T) {
		running := s.schedule("replace", nil)
		old := s.schedule("replace", nil)
		newer := s.schedule("replace", nil)
		if j := s.job(old); !j.Canceled || j.Completed || j.End == nil {
			t.Errorf("replaced job = %+v, want canceled", j)
		}
		if j := s.job(newer); j.Canceled || j.End != nil {
			t.Errorf("newest job = %+v, want waiting", j)
		}
		s.do("POST", "/job/cancel?id="+running, nil)
		s.waitJob(newer, 10*time.Second, "started", func(j jobJSON) bool { return j.Start != nil })
		s.do("POST", "/job/cancel?id="+newer, nil)
	})
	t.Run("replace without a limit never replaces", func(t *testing.T) {
		ids := []string{s.schedule("unbounded_replace", nil)}
		for i := 0; i < 3; i++ {
			ids = append(ids, s.schedule("unbounded_replace", nil))
		}
		for _, id := range ids[1:] {
			if j := s.job(id); j.Canceled {
				t.Errorf("job %s replaced although the list is unbounded", id)
			}
		}
		for _, id := range ids {
			s.do("POST", "/job/cancel?id="+id, nil)
		}
	})
	t.Run("partitioned_replace", func(t *testing.T) {
		running, _, _ := s.trySchedule("parts", nil, "a")
		a1, _, _ := s.trySchedule("parts", nil, "a")
		b1, _, _ := s.trySchedule("parts", nil, "b")
		a2, status, _ := s.trySchedule("parts", nil, "a")
		if status != 202 {
			t.Fatalf("a2: %d", status)
		}
		if j := s.job(a1); !j.Canceled {
			t.Errorf("a1 not replaced by a2")
		}
		if j := s.job(b1); j.Canceled {
			t.Errorf("b1 replaced although partition b had room")
		}
		// a2 went to the end of the whole list: b1 starts first.
		s.do("POST", "/job/cancel?id="+running, nil)
		s.waitJob(b1, 10*time.Second, "started", func(j jobJSON) bool { return j.Start != nil })
		if j := s.job(a2); j.Start != nil {
			t.Errorf("a2 started before b1 ended")
		}
		s.do("POST", "/job/cancel?id="+b1, nil)
		s.waitJob(a2, 10*time.Second, "started", func(j jobJSON) bool { return j.Start != nil })
		s.do("POST", "/job/cancel?id="+a2, nil)
	})
	t.Run("start_delay waits even when idle", func(t *testing.T) {
		begin := time.Now()
		id := s.schedule("delayed", nil)
		if j := s.job(id); j.Start != nil {
			t.Fatalf("delayed job started at once")
		}
		s.waitFinished(id)
		if d := time.Since(begin); d < 700*time.Millisecond {
			t.Errorf("delayed job finished after %v, want at least the 700ms delay", d)
		}
	})
}

func (s *server) pipeline(name string) map[string]any {
	s.t.Helper()
	_, body := s.do("GET", "/pipelines", nil)
	var resp struct {
		Pipelines []map[string]any `json:"pipelines"`
	}
	if err := jsonUnmarshal(body, &resp); err != nil {
		s.t.Fatal(err)
	}
	for _, p := range resp.Pipelines {
		if p["pipeline"] == name {
			return p
		}
	}
	s.t.Fatalf("pipeline %s not listed: %s", name, body)
	return nil
}
