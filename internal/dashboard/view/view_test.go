package view

import (
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func tp(t time.Time) *time.Time { return &t }

func TestDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		-time.Second:                          "0ms",
		850 * time.Millisecond:                "850ms",
		1234 * time.Millisecond:               "1.2s",
		42 * time.Second:                      "42s",
		4*time.Minute + 5*time.Second:         "4m 05s",
		2*time.Hour + 3*time.Minute:           "2h 03m",
		50*time.Hour + 10*time.Minute:         "2d 02h",
		59*time.Second + 999*time.Millisecond: "59s",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestAt(t *testing.T) {
	t.Parallel()
	if got := At(now.Add(-time.Hour), now).Text; got != "11:00:00" {
		t.Errorf("today = %q", got)
	}
	if got := At(now.Add(-48*time.Hour), now).Text; got != "Nov 26 12:00:00" {
		t.Errorf("this year = %q", got)
	}
	if got := At(now.AddDate(-1, 0, 0), now); got.Text != "2025-11-28 12:00" || got.ISO != "2025-11-28T12:00:00Z" {
		t.Errorf("last year = %+v", got)
	}
	if got := At(time.Time{}, now); got.ISO != "" {
		t.Errorf("zero time = %+v", got)
	}
}

func TestPaths(t *testing.T) {
	t.Parallel()
	p := Paths{Base: "/x"}
	tests := map[string]string{
		p.Home():                           "/x/ui/",
		p.Login(""):                        "/x/ui/login",
		p.Login("/x/ui/jobs"):              "/x/ui/login?next=%2Fx%2Fui%2Fjobs",
		p.Jobs("a b", "", ""):              "/x/ui/jobs?pipeline=a+b",
		p.Job("id/1"):                      "/x/ui/jobs/id%2F1",
		p.JobTask("id", "a&b"):             "/x/ui/jobs/id?task=a%26b",
		p.LogEvents("id", "t 1", 5, 7):     "/x/ui/jobs/id/tasks/t%201/log/events?stderr=7&stdout=5",
		p.LogDownload("id", "t", "stdout"): "/x/ui/jobs/id/tasks/t/log/stdout",
		p.Queue("p"):                       "/x/ui/pipelines/p/queue",
		p.Static("app.css", "abc"):         "/x/ui/static/app.css?v=abc",
	}
	for got, want := range tests {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func job(tasks ...pipeline.Task) *pipeline.Job {
	return &pipeline.Job{ID: "j", Pipeline: "p", Status: pipeline.JobRunning, Created: now, Tasks: tasks}
}

func task(name string, deps ...string) pipeline.Task {
	return pipeline.Task{Name: name, DependsOn: deps, Status: pipeline.TaskWaiting}
}

func nodesByName(g Graph) map[string]GraphNode {
	m := map[string]GraphNode{}
	for _, n := range g.Nodes {
		m[n.Name] = n
	}
	return m
}

func TestGraphLayersByLongestPath(t *testing.T) {
	t.Parallel()
	// The example DAG of the API docs: a; b(a,e); c(d,b); d(a); e(a); f(b,e); g(c,f).
	j := job(task("a"), task("d", "a"), task("e", "a"), task("b", "a", "e"), task("c", "d", "b"), task("f", "b", "e"), task("g", "c", "f"))
	g := NewGraph(j, "c", func(s string) string { return "#" + s })
	n := nodesByName(g)
	want := map[string]int{"a": 0, "d": 1, "e": 1, "b": 2, "c": 3, "f": 3, "g": 4}
	for name, layer := range want {
		if n[name].Layer != layer {
			t.Errorf("layer of %s = %d, want %d", name, n[name].Layer, layer)
		}
	}
	if len(g.Edges) != 10 {
		t.Errorf("%d edges, want 10", len(g.Edges))
	}
	if !n["c"].Selected || n["a"].Selected {
		t.Errorf("selection wrong")
	}
	if n["g"].URL != "#g" {
		t.Errorf("url = %q", n["g"].URL)
	}
	// Layers go left to right; nodes never overlap.
	for _, a := range g.Nodes {
		if a.X+a.W > g.Width || a.Y+a.H > g.Height {
			t.Errorf("node %s outside the graph", a.Name)
		}
		for _, b := range g.Nodes {
			if a.Name < b.Name && a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("nodes %s and %s overlap", a.Name, b.Name)
			}
		}
	}
	if !(n["a"].X < n["d"].X && n["d"].X < n["b"].X && n["b"].X < n["c"].X && n["c"].X < n["g"].X) {
		t.Errorf("layers not left to right")
	}
}

func TestGraphBarycenterUncrosses(t *testing.T) {
	t.Parallel()
	// By name, layer 1 would be [x, y] while their parents are ordered [a, b] with x under b:
	// the sweep puts y (child of a) above x (child of b).
	j := job(task("a"), task("b"), task("y", "a"), task("x", "b"))
	n := nodesByName(NewGraph(j, "", func(string) string { return "" }))
	if !(n["a"].Y < n["b"].Y) {
		t.Fatalf("roots not by name")
	}
	if !(n["y"].Y < n["x"].Y) {
		t.Errorf("y.Y=%d x.Y=%d: edges cross", n["y"].Y, n["x"].Y)
	}
}

func TestGraphOnErrorAndLongNames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("very_long_task_name_", 4)
	j := job(task("a"), task(long, "a"), pipeline.Task{Name: pipeline.OnErrorTaskName, Status: pipeline.TaskRunning})
	n := nodesByName(NewGraph(j, "", func(string) string { return "" }))
	if n[pipeline.OnErrorTaskName].Layer != 2 || !n[pipeline.OnErrorTaskName].OnError {
		t.Errorf("on_error node = %+v, want its own last layer", n[pipeline.OnErrorTaskName])
	}
	ln := n[long]
	if ln.W > nodeMaxW || ln.W < nodeMaxW-10 || !strings.HasSuffix(ln.Label, "…") || len([]rune(ln.Label)) != labelMaxLen {
		t.Errorf("long node W=%d label=%q", ln.W, ln.Label)
	}
	if g := NewGraph(job(), "", nil); len(g.Nodes) != 0 {
		t.Errorf("empty job has nodes")
	}
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	start := now.Add(-100 * time.Second)
	j := job(
		pipeline.Task{Name: "a", Status: pipeline.TaskDone, Start: tp(start), End: tp(start.Add(50 * time.Second))},
		pipeline.Task{Name: "b", Status: pipeline.TaskRunning, Start: tp(start.Add(50 * time.Second))},
		pipeline.Task{Name: "c", Status: pipeline.TaskWaiting},
	)
	j.Start = tp(start)
	tl := NewTimeline(j, "b", func(s string) string { return s }, now)
	if tl.Total != "1m 40s" || tl.Empty {
		t.Errorf("total = %q", tl.Total)
	}
	a, b, c := tl.Rows[0], tl.Rows[1], tl.Rows[2]
	if a.X != 0 || a.W != 500 || b.X != 500 || b.W != 500 || !b.Selected {
		t.Errorf("bars a=%v+%v b=%v+%v", a.X, a.W, b.X, b.W)
	}
	if c.HasBar {
		t.Errorf("a waiting task has a bar")
	}
	if a.XS() != "0.0" || b.WS() != "500.0" {
		t.Errorf("attributes %s %s", a.XS(), b.WS())
	}
	if tl := NewTimeline(job(task("x")), "", func(s string) string { return s }, now); !tl.Empty {
		t.Errorf("a job without started tasks has a timeline")
	}
}

func TestSelectTask(t *testing.T) {
	t.Parallel()
	s := now
	tests := []struct {
		name string
		job  *pipeline.Job
		req  string
		want string
	}{
		{"requested", job(task("a"), task("b")), "b", "b"},
		{"unknown request", job(task("a"), task("b")), "zz", "a"},
		{"running first", job(pipeline.Task{Name: "a", Status: pipeline.TaskDone, Start: &s}, pipeline.Task{Name: "b", Status: pipeline.TaskRunning}), "", "b"},
		{"errored", job(pipeline.Task{Name: "a", Status: pipeline.TaskError}, pipeline.Task{Name: "b", Status: pipeline.TaskSkipped}), "", "a"},
		{"last started", job(pipeline.Task{Name: "a", Status: pipeline.TaskDone, Start: tp(s)}, pipeline.Task{Name: "b", Status: pipeline.TaskDone, Start: tp(s.Add(time.Second))}), "", "b"},
		{"none", job(), "", ""},
		{"nothing started", job(task("a"), task("b", "a")), "", "a"},
		{"first running by start", job(pipeline.Task{Name: "a", Status: pipeline.TaskRunning, Start: tp(s.Add(time.Second))}, pipeline.Task{Name: "b", Status: pipeline.TaskRunning, Start: tp(s)}), "", "b"},
		{"running before failed", job(pipeline.Task{Name: "a", Status: pipeline.TaskError, End: tp(s)}, pipeline.Task{Name: "b", Status: pipeline.TaskRunning, Start: tp(s)}), "", "b"},
		{"first failure by end", job(pipeline.Task{Name: "a", Status: pipeline.TaskError, End: tp(s.Add(time.Second))}, pipeline.Task{Name: "b", Status: pipeline.TaskError, End: tp(s)}), "", "b"},
		{"requested wins over running", job(pipeline.Task{Name: "a", Status: pipeline.TaskDone}, pipeline.Task{Name: "b", Status: pipeline.TaskRunning}), "a", "a"},
	}
	for _, tt := range tests {
		if got := SelectTask(tt.job, tt.req); got != tt.want {
			t.Errorf("%s: SelectTask = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestVariables(t *testing.T) {
	t.Parallel()
	kvs := Variables(map[string]any{"b": []any{"x", 1.0}, "a": "s", "c": nil})
	if len(kvs) != 3 || kvs[0] != (KV{"a", "s"}) || kvs[1] != (KV{"b", `["x",1]`}) || kvs[2] != (KV{"c", "null"}) {
		t.Errorf("Variables = %v", kvs)
	}
	if got := VariablesSummary(map[string]any{"k": strings.Repeat("v", 100)}, 20); len([]rune(got)) != 20 || !strings.HasSuffix(got, "…") {
		t.Errorf("summary = %q", got)
	}
}
