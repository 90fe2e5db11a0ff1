//go:build !linux

package runner

// killOrphans is only implemented on Linux, where /proc tells a process's environment.
func killOrphans(jobIDs []string) int { return 0 }

// killNodeOrphans is only implemented on Linux, where /proc tells a process's environment.
func killNodeOrphans(marker string) int { return 0 }
