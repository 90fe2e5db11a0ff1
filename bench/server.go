package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one prunner process on 127.0.0.1, in its own run directory.
type server struct {
	name     string
	bin      string
	runDir   string // working directory of the process (and of its tasks)
	pipeDir  string // --path
	dataDir  string // --data
	addr     string // 127.0.0.1:port, kept across restarts
	secret   string
	extra    []string
	baseURL  string
	log      *os.File
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	startErr error
}

// liveServers holds every started process until it exited, so that an interrupted or failing run
// never leaves one behind.
var liveServers = struct {
	sync.Mutex
	m map[*server]struct{}
}{m: map[*server]struct{}{}}

// killAllServers kills every server still running (used on errors and Ctrl-C).
func killAllServers() {
	liveServers.Lock()
	defer liveServers.Unlock()
	for s := range liveServers.m {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGKILL)
		}
	}
}

func newServer(name, bin, workDir, pipeDir, secret string, extra []string) (*server, error) {
	runDir := filepath.Join(workDir, name)
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return &server{
		name: name, bin: bin, runDir: runDir, pipeDir: pipeDir,
		dataDir: filepath.Join(runDir, "data"), addr: addr, secret: secret, extra: extra,
		baseURL: "http://" + addr,
	}, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start execs the server and returns the time just before the exec. It does not wait for the API.
func (s *server) start() (time.Time, error) {
	if s.running() {
		return time.Time{}, fmt.Errorf("server %s already running", s.name)
	}
	if s.log == nil {
		f, err := os.OpenFile(filepath.Join(s.runDir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return time.Time{}, err
		}
		s.log = f
	}
	args := []string{"--path", s.pipeDir, "--data", s.dataDir, "--address", s.addr, "--jwt-secret", s.secret}
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.runDir
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// The server dies with the benchmark even if the benchmark itself is killed, and gets only the
	// signals the benchmark sends (not a Ctrl-C meant for the benchmark).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	liveServers.Lock()
	t0 := time.Now()
	err := cmd.Start()
	if err == nil {
		liveServers.m[s] = struct{}{}
	}
	liveServers.Unlock()
	if err != nil {
		return t0, fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		s.waitErr = cmd.Wait()
		liveServers.Lock()
		delete(liveServers.m, s)
		liveServers.Unlock()
		close(exited)
	}(cmd, s.exited)
	return t0, nil
}

func (s *server) running() bool {
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *server) pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// waitFirst200 polls GET path (a fresh connection per attempt, every poll interval) until it
// answers 200 and returns the time from t0 to that answer (body read), with the body.
func (s *server) waitFirst200(ctx context.Context, t0 time.Time, token, path string, poll, timeout time.Duration) (time.Duration, []byte, error) {
	hc := &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DisableCompression: true},
		Timeout:   30 * time.Second,
	}
	deadline := t0.Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.baseURL+path, nil)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return time.Since(t0), body, nil
			}
		}
		if !s.running() {
			return 0, nil, fmt.Errorf("server %s exited during start-up (%v); see %s", s.name, s.waitErr, filepath.Join(s.runDir, "server.log"))
		}
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("server %s not ready after %s", s.name, timeout)
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return 0, nil, err
		}
	}
}

// stop sends sig and waits for the exit; it returns the time from the signal to the exit. After
// 30 s it kills the process and reports an error.
func (s *server) stop(sig syscall.Signal) (time.Duration, error) {
	if !s.running() {
		return 0, nil
	}
	t0 := time.Now()
	if err := s.cmd.Process.Signal(sig); err != nil {
		return 0, err
	}
	select {
	case <-s.exited:
		d := time.Since(t0)
		if s.waitErr != nil {
			return d, fmt.Errorf("server %s exited with %v after %s", s.name, s.waitErr, sig)
		}
		return d, nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
		return time.Since(t0), fmt.Errorf("server %s did not exit within 30s of %s; killed", s.name, sig)
	}
}

// kill ends the process at once (cleanup).
func (s *server) kill() {
	if s.running() {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
	if s.log != nil {
		s.log.Close()
		s.log = nil
	}
}

// cleanEnv is the benchmark's environment without PRUNNER_* variables (the flags configure the
// server).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PRUNNER_") {
			env = append(env, kv)
		}
	}
	return env
}

// procStatus reads VmRSS and VmHWM of pid in MiB.
func procStatus(pid int) (rss, hwm float64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
	}
	return rss, hwm, sc.Err()
}

// procCPU returns the user+system CPU seconds of pid.
func procCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// resetHWM resets VmHWM of pid to its current RSS (Linux ≥ 4.0), so that the next VmHWM is the
// peak of the following phase only.
func resetHWM(pid int) bool {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0) == nil
}

// rssPeak measures the server's peak RSS over a phase: VmHWM after resetting it (exact), and
// sampling VmRSS as a fallback and a cross-check.
type rssPeak struct {
	pid      int
	exact    bool
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	sampled  float64
	nsamples int
}

func startRSSPeak(pid int, interval time.Duration) *rssPeak {
	p := &rssPeak{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	p.exact = resetHWM(pid)
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if rss, _, err := procStatus(pid); err == nil {
				p.mu.Lock()
				p.sampled = max(p.sampled, rss)
				p.nsamples++
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// finish stops sampling and returns the peak in MiB (VmHWM when it could be reset, else the
// largest sample) and the largest sample.
func (p *rssPeak) finish() (peak, sampled float64) {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	sampled = p.sampled
	p.mu.Unlock()
	peak = sampled
	if p.exact {
		if _, hwm, err := procStatus(p.pid); err == nil {
			peak = max(hwm, sampled)
		}
	}
	return peak, sampled
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
