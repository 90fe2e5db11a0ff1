package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// killOrphans kills the processes (and their process groups) that ran tasks of the given jobs and
// outlived the server that started them. They are found by the job ID marker in their
// environment (/proc/<pid>/environ), which also covers grandchildren in other process groups.
// Returns how many processes were signalled.
func killOrphans(jobIDs []string) int {
	markers := make([]string, len(jobIDs))
	for i, id := range jobIDs {
		markers[i] = JobIDEnv + "=" + id
	}
	return killMarked(markers)
}

// killNodeOrphans kills the task processes that a previous run of the node left: those marked
// with the node's marker (see NodeEnv). It is called before the node runs any job.
func killNodeOrphans(marker string) int {
	return killMarked([]string{NodeEnv + "=" + marker})
}

// killMarked kills the processes whose environment holds one of the "KEY=value" markers, with
// their process groups, and returns how many it signalled.
func killMarked(kvs []string) int {
	if len(kvs) == 0 {
		return 0
	}
	markers := make([][]byte, len(kvs))
	for i, kv := range kvs {
		markers[i] = []byte(kv)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	killed := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid <= 1 {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(environ, []byte{0}) {
			if matchesAny(kv, markers) {
				if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 && pgid != syscall.Getpgrp() {
					_ = syscall.Kill(-pgid, syscall.SIGKILL)
				}
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed++
				break
			}
		}
	}
	return killed
}

func matchesAny(kv []byte, markers [][]byte) bool {
	for _, m := range markers {
		if bytes.Equal(kv, m) {
			return true
		}
	}
	return false
}
