package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/store/postgres/pgtest"
)

// TestDefinitionsHash: the hash of definitions depends on what they declare (a script, a
// schedule), not on the files' formatting, comments or paths.
func TestDefinitionsHash(t *testing.T) {
	t.Parallel()
	hash := func(path, file string) string {
		t.Helper()
		defs, _, errs := pipeline.Parse(path, []byte(file))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", path, errs)
		}
		return definitionsHash(&pipeline.Set{Pipelines: defs})
	}
	const base = `pipelines:
  a:
    tasks:
      t: {script: ["echo a"]}
  b:
    concurrency: 2
    schedules:
      - {name: nightly, cron: "0 3 * * *"}
    tasks:
      t: {script: ["echo b"]}
`
	h := hash("one/pipelines.yml", base)
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Fatalf("hash %q, want 64 hex digits", h)
	}
	reformatted := `# the same pipelines, written otherwise
pipelines:
  b:
    tasks:
      t:
        script:
          - echo b
    schedules:
      - cron: "0 3 * * *"
        name: nightly
    concurrency: 2
  a:
    tasks: {t: {script: ["echo a"]}}
`
	if got := hash("elsewhere/pipelines.yml", reformatted); got != h {
		t.Errorf("hash of the same definitions written otherwise, in another path = %s, want %s", got, h)
	}
	for what, file := range map[string]string{
		"a script":    strings.Replace(base, "echo b", "echo c", 1),
		"a schedule":  strings.Replace(base, "0 3 * * *", "0 4 * * *", 1),
		"a pipeline":  base + "  c:\n    tasks:\n      t: {script: [\"true\"]}\n",
		"concurrency": strings.Replace(base, "concurrency: 2", "concurrency: 3", 1),
	} {
		if got := hash("one/pipelines.yml", file); got == h {
			t.Errorf("another %s: the same hash", what)
		}
	}
}

// TestNodePublishesDefinitionsAndLeaves: a node records the hash of its definitions at its start
// and at a reload; when it leaves after its stop, it is listed stopped, and its lease has ended.
func TestNodePublishesDefinitionsAndLeaves(t *testing.T) {
	t.Parallel()
	pgtest.Require(t)
	url := pgtest.NewDatabase(t)
	a, _ := startNode(t, url, "a", leasePipelines, steadyLease)
	b, _ := startNode(t, url, "b", leasePipelines, steadyLease)
	node := func(id string) store.Node {
		t.Helper()
		nodes, err := b.Nodes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.ID == id {
				return n
			}
		}
		t.Fatalf("node %s not listed: %+v", id, nodes)
		return store.Node{}
	}
	first := definitionsHash(&pipeline.Set{Pipelines: parseDefs(t, leasePipelines)})
	if got := node("a").DefinitionsHash; got != first {
		t.Errorf("hash of a after its start = %q, want %q", got, first)
	}
	if got := node("b").DefinitionsHash; got != first {
		t.Errorf("hash of b after its start = %q, want %q (the same files)", got, first)
	}

	other := strings.Replace(leasePipelines, "echo hello", "echo goodbye", 1)
	a.SetDefinitions(&pipeline.Set{Pipelines: parseDefs(t, other)})
	want := definitionsHash(&pipeline.Set{Pipelines: parseDefs(t, other)})
	waitFor(t, "the reloaded hash in the node table", func() bool { return node("a").DefinitionsHash == want })

	if err := a.Leave(t.Context()); err == nil {
		t.Error("Leave() of a running node: no error")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(ctx); err != nil {
		t.Fatalf("Leave() error: %v", err)
	}
	n := node("a")
	if n.State != store.NodeStopped || n.LeaseUntil.After(time.Now().Add(time.Second)) {
		t.Errorf("node a after Leave: state %s, lease until %v; want stopped, its lease ended", n.State, n.LeaseUntil)
	}
}
