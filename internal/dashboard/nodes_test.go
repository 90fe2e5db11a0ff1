package dashboard

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/store"
)

// fakeNodes lists fixed nodes, or fails.
type fakeNodes struct {
	nodes []store.Node
	err   error
}

func (f *fakeNodes) Nodes(context.Context) ([]store.Node, error) { return f.nodes, f.err }

// TestNodesPage: each node of the cluster with its state, running jobs and lease; a warning
// when the nodes load different definitions; no Nodes page or entry for a server that is no
// node of a cluster.
func TestNodesPage(t *testing.T) {
	t.Parallel()
	nodes := &fakeNodes{nodes: []store.Node{
		{NodeInfo: store.NodeInfo{ID: "a", Address: "10.0.0.1:9009", Version: "v2", DefinitionsHash: "aaaa", MaxJobs: 2},
			Epoch: 3, State: store.NodeAlive, Started: testNow.Add(-time.Hour), Heartbeat: testNow, LeaseUntil: testNow.Add(20 * time.Second), Running: 2},
		{NodeInfo: store.NodeInfo{ID: "b" + xssScript, Address: "10.0.0.2:9009", Version: "v2", DefinitionsHash: "bbbb"},
			Epoch: 1, State: store.NodeLost, Started: testNow.Add(-2 * time.Hour), Heartbeat: testNow.Add(-time.Minute), LeaseUntil: testNow.Add(-40 * time.Second)},
		{NodeInfo: store.NodeInfo{ID: "c", Address: "10.0.0.3:9009", Version: "v2", DefinitionsHash: "cccc"},
			Epoch: 2, State: store.NodeStopped, Started: testNow.Add(-3 * time.Hour), Heartbeat: testNow.Add(-time.Hour), LeaseUntil: testNow.Add(-time.Hour)},
		{NodeInfo: store.NodeInfo{ID: "d", Address: "10.0.0.4:9009", Version: "v2", DefinitionsHash: "dddd"},
			Epoch: 1, State: store.NodeAlive, Started: testNow.Add(-time.Hour), Heartbeat: testNow, LeaseUntil: testNow.Add(20 * time.Second)},
	}}
	h := newHarness(t, func(c *Config) { c.Nodes = nodes })
	r := h.get("/ui/nodes")
	wantStatus(t, r, http.StatusOK)
	assertSafe(t, r.body)
	doc := parse(t, r.body)
	if got := attr(one(t, doc, "nav-nodes"), "aria-current"); got != "page" {
		t.Errorf("nav entry aria-current = %q", got)
	}
	rows := byTestID(doc, "node-row")
	if len(rows) != 4 {
		t.Fatalf("%d node rows, want 4", len(rows))
	}
	if got := text(byTestID(rows[0], "node-running")[0]); got != "2" {
		t.Errorf("running jobs of a = %q", got)
	}
	if got := text(byTestID(rows[0], "node-max-jobs")[0]); got != "2" {
		t.Errorf("max jobs of a = %q, want 2", got)
	}
	if got := text(byTestID(rows[3], "node-max-jobs")[0]); got != "no limit" {
		t.Errorf("max jobs of d = %q, want no limit", got)
	}
	if row := text(rows[2]); !strings.Contains(row, "stopped") {
		t.Errorf("row of the stopped node: %q", row)
	}
	if row := text(rows[0]); !strings.Contains(row, "alive") || !strings.Contains(row, "10.0.0.1:9009") || !strings.Contains(row, "epoch 3") {
		t.Errorf("row of a: %q", row)
	}
	if row := text(rows[1]); !strings.Contains(row, "lost") {
		t.Errorf("row of the lost node: %q", row)
	}
	one(t, doc, "nodes-mismatch") // a and d, both alive, run different definitions

	// Only alive nodes count: the lost and the stopped node's definitions are no mismatch.
	nodes.nodes[3].DefinitionsHash = "aaaa"
	if got := byTestID(parse(t, h.get("/ui/nodes").body), "nodes-mismatch"); got != nil {
		t.Error("a mismatch warning when only nodes that are not alive differ")
	}

	nodes.err = errors.New("database down")
	wantStatus(t, h.get("/ui/nodes"), http.StatusInternalServerError)

	plain := newHarness(t)
	wantStatus(t, plain.get("/ui/nodes"), http.StatusNotFound)
	if byTestID(parse(t, plain.get("/ui/").body), "nav-nodes") != nil {
		t.Error("a Nodes entry on a server that is no node of a cluster")
	}
}
