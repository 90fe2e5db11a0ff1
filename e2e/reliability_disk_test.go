package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Item 10: the disk fills up while a task writes: the job fails with a clear error, the server
// keeps running and the store is intact. The data directory is a small tmpfs (needs root, as in
// CI; skipped otherwise).
func TestReliabilityDiskFull(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  fill:
    tasks:
      t: {script: ["head -c 30000000 /dev/zero"]}
  small:
    tasks:
      t: {script: ["echo still-fine"]}
`)
	mnt := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	s.dataDir = mnt
	s.start()
	before := s.schedule("small", nil)
	s.waitFinished(before)

	id := s.schedule("fill", nil)
	j := s.waitFinished(id)
	task := j.task("t")
	if !j.Errored || task.Status != "error" || !strings.Contains(task.Error, "no space left on device") {
		t.Errorf("job on a full disk = %+v, task %+v; want an error naming the full disk", j, task)
	}
	// The server keeps running and the earlier job is intact.
	if out, _ := s.logs(before, "t"); out != "still-fine\n" {
		t.Errorf("earlier job's log = %q", out)
	}
	// Free the space (retention would do it) and run again.
	_ = os.RemoveAll(filepath.Join(mnt, "logs", id))
	after := s.schedule("small", nil)
	if j := s.waitFinished(after); j.Errored {
		t.Errorf("job after freeing space: %+v", j)
	}
	// Restart: the store is consistent.
	s.signal(syscall.SIGINT)
	s.wait(10 * time.Second)
	s.start()
	if j := s.job(id); !j.Errored || j.End == nil {
		t.Errorf("failed job after restart = %+v", j)
	}
}
