// Package e2e tests the real prunner binary through its CLI, signals and HTTP API, the way a host
// application and an operator use it.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// binary is the prunner binary built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "prunner-e2e-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "prunner")
	build := exec.Command("go", "build", "-o", binary, "../cmd/prunner")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build prunner:", err)
		os.Exit(1)
	}
	suiteMarker = newSuiteMarker()
	code := m.Run()
	os.RemoveAll(dir)
	// The suite leaves nothing running: every server is stopped and every process a test
	// started is killed at its cleanup. Anything still marked is a bug of the tests or of the
	// server, and fails the run.
	if err := checkNoneLeft(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

const testSecret = "e2e-test-secret-0123456789abcdef"

// server is one running prunner process.
type server struct {
	t       *testing.T
	dir     string // working directory (pipelines.yml lives here)
	dataDir string
	addr    string
	url     string
	secret  string
	extra   []string
	env     []string
	marker  string // the value of markerEnv for this server and everything it starts

	cmd     *exec.Cmd
	output  *syncBuffer
	exited  chan struct{}
	exitErr error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newServer prepares (but does not start) a server in a fresh directory with the given
// pipelines.yml content.
func newServer(t *testing.T, pipelinesYML string, extraArgs ...string) *server {
	t.Helper()
	dir := t.TempDir()
	if pipelinesYML != "" {
		writeFile(t, filepath.Join(dir, "pipelines.yml"), pipelinesYML)
	}
	return &server{t: t, dir: dir, dataDir: filepath.Join(dir, ".prunner"), secret: testSecret, extra: extraArgs}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start starts the server and waits until its API answers.
func (s *server) start() *server {
	s.t.Helper()
	s.startNoWait()
	s.waitReady()
	return s
}

func (s *server) startNoWait() {
	s.t.Helper()
	if s.addr == "" {
		s.addr = freeAddr(s.t)
		s.url = "http://" + s.addr
	}
	args := []string{"--path", s.dir, "--data", s.dataDir, "--address", s.addr}
	if s.secret != "" {
		args = append(args, "--jwt-secret", s.secret)
	}
	args = append(args, s.extra...)
	if s.marker == "" {
		s.marker = newMarker(s.t)
	}
	cmd := exec.Command(binary, args...)
	cmd.Dir = s.dir
	cmd.Env = append(append(cleanEnv(), s.env...), markerEnv+"="+s.marker)
	output := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	s.cmd, s.output, s.exited = cmd, output, exited
	go func() {
		s.exitErr = cmd.Wait()
		close(exited)
	}()
	// Cleanups run last in, first out: a restarted server's process is stopped before the
	// processes it replaced are looked at again.
	s.t.Cleanup(func() {
		s.stop(cmd, exited)
		reapMarked(s.t, s.marker)
		if s.t.Failed() {
			s.t.Logf("server output (pid %d):\n%s", cmd.Process.Pid, output.String())
		}
	})
}

// Bounds of stop. drainWait is how long an operator gives a drain (SIGINT: running jobs finish)
// before sending the second signal; stopWait is how long the server may take to stop after
// SIGTERM: it cancels the running jobs (SIGINT, SIGTERM and SIGKILL to their process groups,
// --kill-grace apart, 2s by default) and shuts the HTTP server down (at most 5s).
const (
	drainWait = 2 * time.Second
	stopWait  = 30 * time.Second
)

// stop stops a server process that is still running the way an operator does: SIGINT, which
// drains; when that takes longer than drainWait (a test left a job running), SIGTERM, which
// cancels the running jobs; only a server that has still not exited after stopWait is killed,
// and that fails the test. exited is closed when the process has exited.
func (s *server) stop(cmd *exec.Cmd, exited <-chan struct{}) {
	s.t.Helper()
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, drainWait}, {syscall.SIGTERM, stopWait}} {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(step.sig)
		select {
		case <-exited:
			return
		case <-time.After(step.wait):
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	s.t.Errorf("server did not exit within %v of SIGTERM; killed it", stopWait)
}

// cleanEnv is the test process's environment without PRUNNER_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRUNNER_") {
			env = append(env, kv)
		}
	}
	return env
}

func (s *server) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			s.t.Fatalf("server exited before it was ready: %v\n%s", s.exitErr, s.output.String())
		default:
		}
		resp, err := http.Get(s.url + "/pipelines")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("server not ready in time:\n%s", s.output.String())
}

// waitOutput waits until the server's output contains want and returns the output. The output
// reaches the test through a pipe that a goroutine copies from: a line the server logged before it
// answered a request may not be in the buffer yet when the answer is (only once the process has
// exited is all of it there).
func (s *server) waitOutput(want string, timeout time.Duration) string {
	s.t.Helper()
	var out string
	eventually(s.t, timeout, fmt.Sprintf("%q in the server's output", want), func() bool {
		out = s.output.String()
		return strings.Contains(out, want)
	})
	return out
}

// signal sends sig to the server.
func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// wait waits for the server to exit and returns its exit code.
func (s *server) wait(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(timeout):
		s.t.Fatalf("server did not exit within %v\n%s", timeout, s.output.String())
	}
	if s.exitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if ok := asExitError(s.exitErr, &ee); ok {
		return ee.ExitCode()
	}
	s.t.Fatalf("wait: %v", s.exitErr)
	return -1
}

func asExitError(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	if ok {
		*target = ee
	}
	return ok
}

func (s *server) kill9() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
	s.wait(10 * time.Second)
}

// restart starts a new process on the same directory, data and address.
func (s *server) restart() *server {
	s.t.Helper()
	return s.start()
}

func mintToken(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *server) token() string {
	return mintToken(s.t, s.secret, jwt.MapClaims{"sub": "e2e-user"})
}

// do sends a request with a valid token and returns status and body.
func (s *server) do(method, path string, body any) (int, []byte) {
	s.t.Helper()
	return s.doWithToken(method, path, body, s.token())
}

// apiClient sends the tests' API requests. A request that gets no whole answer within
// requestTimeout fails the test rather than hang it (a server must answer, with a 503 if need
// be, also while its database is unreachable).
var apiClient = &http.Client{Timeout: requestTimeout}

const requestTimeout = 30 * time.Second

func (s *server) doWithToken(method, path string, body any, token string) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	validateAgainstOpenAPI(s.t, req, resp.StatusCode, resp.Header, data)
	return resp.StatusCode, data
}

// schedule starts a job and returns its ID; it fails the test unless the answer is 202.
func (s *server) schedule(pipeline string, variables map[string]any) string {
	s.t.Helper()
	id, status, body := s.trySchedule(pipeline, variables, "")
	if status != http.StatusAccepted {
		s.t.Fatalf("schedule %s: status %d, body %s", pipeline, status, body)
	}
	return id
}

func (s *server) trySchedule(pipeline string, variables map[string]any, partition string) (string, int, []byte) {
	s.t.Helper()
	req := map[string]any{"pipeline": pipeline}
	if variables != nil {
		req["variables"] = variables
	}
	if partition != "" {
		req["queuePartition"] = partition
	}
	status, body := s.do("POST", "/pipelines/schedule", req)
	var resp struct {
		JobID string `json:"jobId"`
	}
	if status == http.StatusAccepted {
		if err := json.Unmarshal(body, &resp); err != nil {
			s.t.Fatalf("schedule answer %s: %v", body, err)
		}
	}
	return resp.JobID, status, body
}

// jobJSON is the job detail as the API returns it.
type jobJSON struct {
	ID        string         `json:"id"`
	Pipeline  string         `json:"pipeline"`
	Tasks     []taskJSON     `json:"tasks"`
	Completed bool           `json:"completed"`
	Canceled  bool           `json:"canceled"`
	Errored   bool           `json:"errored"`
	Created   string         `json:"created"`
	Start     *string        `json:"start"`
	End       *string        `json:"end"`
	LastError string         `json:"lastError"`
	Variables map[string]any `json:"variables"`
	User      string         `json:"user"`

	Status         string `json:"status"`
	QueuePartition string `json:"queuePartition"`
	ReplacedBy     string `json:"replacedBy"`
}

type taskJSON struct {
	Name      string   `json:"name"`
	DependsOn []string `json:"dependsOn"`
	Status    string   `json:"status"`
	Start     *string  `json:"start"`
	End       *string  `json:"end"`
	Skipped   bool     `json:"skipped"`
	ExitCode  int      `json:"exitCode"`
	Errored   bool     `json:"errored"`
	Error     string   `json:"error"`
}

func (j jobJSON) task(name string) taskJSON {
	for _, t := range j.Tasks {
		if t.Name == name {
			return t
		}
	}
	return taskJSON{}
}

func (j jobJSON) finished() bool {
	return j.End != nil
}

func (s *server) job(id string) jobJSON {
	s.t.Helper()
	status, body := s.do("GET", "/job/detail?id="+id, nil)
	if status != http.StatusOK {
		s.t.Fatalf("job detail %s: status %d, body %s", id, status, body)
	}
	var j jobJSON
	if err := json.Unmarshal(body, &j); err != nil {
		s.t.Fatalf("job detail %s: %v", body, err)
	}
	return j
}

// waitJob polls the job until cond holds or the timeout passes.
func (s *server) waitJob(id string, timeout time.Duration, what string, cond func(jobJSON) bool) jobJSON {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := s.job(id)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("job %s: not %s within %v: %+v", id, what, timeout, j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *server) waitFinished(id string) jobJSON {
	s.t.Helper()
	return s.waitJob(id, 20*time.Second, "finished", jobJSON.finished)
}

func (s *server) logs(id, task string) (string, string) {
	s.t.Helper()
	status, body := s.do("GET", "/job/logs?id="+id+"&task="+task, nil)
	if status != http.StatusOK {
		s.t.Fatalf("logs %s/%s: status %d, body %s", id, task, status, body)
	}
	var l struct {
		Stdout string `json:"stdout"`
		Stderr string `json:"stderr"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		s.t.Fatalf("logs %s: %v", body, err)
	}
	return l.Stdout, l.Stderr
}

// eventually polls cond until it is true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pidAlive reports whether a process with the pid exists (and is not a zombie).
func pidAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "pid file "+path, func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		_, err = fmt.Sscanf(strings.TrimSpace(string(data)), "%d", &pid)
		return err == nil && pid > 0
	})
	return pid
}
