//go:build unix && !linux

package script

import (
	"errors"
	"syscall"
)

// liveGroups returns how many of the process groups pgids still have members. Without /proc,
// zombies count as members.
func liveGroups(pgids []int) int {
	n := 0
	for _, pgid := range pgids {
		if !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
			n++
		}
	}
	return n
}
