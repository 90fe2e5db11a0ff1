package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/client"
)

// TestPrintNodes: one aligned row per node with its state, jobs (out of --max-jobs), heartbeat
// age, lease, version and short definitions hash; no warning while the alive nodes agree.
func TestPrintNodes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hash := strings.Repeat("ab", 32)
	nodes := []client.Node{
		{ID: "a", State: "alive", RunningJobs: 2, MaxJobs: 4, Heartbeat: now.Add(-3 * time.Second),
			LeaseUntil: now.Add(17 * time.Second), Version: "v1", DefinitionsHash: hash, Address: "10.0.0.1:9009"},
		{ID: "b", State: "lost", RunningJobs: 0, Heartbeat: now.Add(-time.Minute),
			LeaseUntil: now.Add(-40 * time.Second), Version: "v1", DefinitionsHash: strings.Repeat("cd", 32), Address: "10.0.0.2:9009"},
	}
	var b bytes.Buffer
	printNodes(&b, nodes, now)
	out := b.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", out)
	}
	col := strings.Index(lines[0], "STATE")
	if !strings.HasPrefix(lines[1][col:], "alive") || !strings.HasPrefix(lines[2][col:], "lost") {
		t.Errorf("columns not aligned:\n%s", out)
	}
	for _, want := range []string{"2/4", "3s ago", "17s left", "abababababab", "10.0.0.1:9009", "1m0s ago"} {
		if !strings.Contains(lines[1]+lines[2], want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Warning") {
		t.Errorf("a warning although only one alive node has definitions:\n%s", out)
	}
}

// TestPrintNodesWarnsOfOtherDefinitions: alive nodes with different hashes are named in a
// warning that says what to do.
func TestPrintNodesWarnsOfOtherDefinitions(t *testing.T) {
	t.Parallel()
	now := time.Now()
	one, other := strings.Repeat("1", 64), strings.Repeat("2", 64)
	nodes := []client.Node{
		{ID: "a", State: "alive", DefinitionsHash: one, LeaseUntil: now},
		{ID: "b", State: "alive", DefinitionsHash: other, LeaseUntil: now},
		{ID: "c", State: "alive", DefinitionsHash: one, LeaseUntil: now},
	}
	var b bytes.Buffer
	printNodes(&b, nodes, now)
	want := "Warning: the alive nodes run different pipeline definitions (a, c: 111111111111; b: 222222222222): give them the same pipeline files."
	if !strings.Contains(b.String(), want) {
		t.Errorf("output lacks the warning %q:\n%s", want, b.String())
	}
}
