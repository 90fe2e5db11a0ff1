package script

import (
	"bytes"
	"os"
	"slices"
	"strconv"
)

// liveGroups returns how many of the process groups pgids have a member that is not a zombie,
// from the process table in /proc. When /proc cannot be read, every group counts as live.
func liveGroups(pgids []int) int {
	dir, err := os.Open("/proc")
	if err != nil {
		return len(pgids)
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return len(pgids)
	}
	live := make(map[int]bool, len(pgids))
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		state, pgid, ok := parseStat(stat)
		if ok && state != 'Z' && slices.Contains(pgids, pgid) {
			live[pgid] = true
		}
	}
	return len(live)
}

// parseStat returns the state and process group of /proc/<pid>/stat: "pid (comm) S ppid pgrp ...",
// where comm may itself contain spaces and parentheses.
func parseStat(stat []byte) (state byte, pgid int, ok bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pgid, err := strconv.Atoi(string(fields[2]))
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], pgid, true
}
