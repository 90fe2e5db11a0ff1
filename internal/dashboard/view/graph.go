package view

import (
	"math"
	"sort"
	"strconv"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Graph is a job's task DAG laid out for an SVG: layers left to right (a task's layer is the
// length of the longest dependency path to it), ordered within a layer to reduce crossings.
type Graph struct {
	Width  int
	Height int
	Nodes  []GraphNode
	Edges  []GraphEdge
}

// GraphNode is one task drawn as a rounded rectangle that links to its log.
type GraphNode struct {
	Name     string
	Label    string
	Detail   string
	URL      string
	Status   Status
	Selected bool
	OnError  bool
	X, Y     int
	W, H     int
	Layer    int
}

// GraphEdge is one dependency drawn as a path from the dependency to its dependent.
type GraphEdge struct {
	From, To string
	// D is the SVG path data.
	D     string
	Class string
}

// Layout constants of the graph, in SVG user units (pixels at 100%).
const (
	graphPad    = 12
	nodeH       = 42
	nodeGapY    = 14
	layerGap    = 56
	nodeMinW    = 132
	nodeMaxW    = 260
	nodeCharW   = 7.3
	nodeChrome  = 40 // status dot and padding
	labelMaxLen = 30 // (nodeMaxW - nodeChrome) / nodeCharW
)

// Attribute helpers for the component (SVG attributes are strings).

func (n GraphNode) XS() string      { return strconv.Itoa(n.X) }
func (n GraphNode) YS() string      { return strconv.Itoa(n.Y) }
func (n GraphNode) WS() string      { return strconv.Itoa(n.W) }
func (n GraphNode) HS() string      { return strconv.Itoa(n.H) }
func (n GraphNode) DotX() string    { return strconv.Itoa(n.X + 16) }
func (n GraphNode) DotY() string    { return strconv.Itoa(n.Y + n.H/2) }
func (n GraphNode) TextX() string   { return strconv.Itoa(n.X + 30) }
func (n GraphNode) NameY() string   { return strconv.Itoa(n.Y + 18) }
func (n GraphNode) DetailY() string { return strconv.Itoa(n.Y + 33) }
func (g Graph) ViewBox() string     { return "0 0 " + strconv.Itoa(g.Width) + " " + strconv.Itoa(g.Height) }
func (g Graph) WidthS() string      { return strconv.Itoa(g.Width) }
func (g Graph) HeightS() string     { return strconv.Itoa(g.Height) }
func (n GraphNode) Aria() string    { return n.Name + ": " + n.Status.Label + ifNotEmpty(", ", n.Detail) }
func ifNotEmpty(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

// NewGraph lays out job's tasks; url gives each node's link.
func NewGraph(job *pipeline.Job, selected string, url func(task string) string) Graph {
	tasks := job.Tasks
	if len(tasks) == 0 {
		return Graph{}
	}
	index := taskIndex(tasks)
	layer := taskLayers(tasks, index)
	layers := groupLayers(tasks, layer)
	orderLayers(tasks, index, layers)
	cols := newColumns(tasks, layer, layers)
	pos := placeNodes(tasks, layers, cols, selected, url)
	return Graph{
		Width:  cols.width,
		Height: cols.height,
		Nodes:  nodesInDrawOrder(layers, pos),
		Edges:  graphEdges(tasks, index, pos),
	}
}

// taskIndex maps each task's name to its position in tasks.
func taskIndex(tasks []pipeline.Task) map[string]int {
	index := make(map[string]int, len(tasks))
	for i, t := range tasks {
		index[t.Name] = i
	}
	return index
}

// taskLayers decides each task's layer: the length of the longest dependency path to it. Tasks
// come in topological order, but the loop repeats until stable so that any order works. The
// on_error handler runs after everything else, so without dependencies of its own it gets a
// column after the last one.
func taskLayers(tasks []pipeline.Task, index map[string]int) []int {
	layer := make([]int, len(tasks))
	for changed, rounds := true, 0; changed && rounds <= len(tasks); rounds++ {
		changed = false
		for i, t := range tasks {
			if isLooseOnError(t) {
				continue
			}
			for _, dep := range t.DependsOn {
				if j, ok := index[dep]; ok && j != i && layer[j]+1 > layer[i] {
					layer[i] = layer[j] + 1
					changed = true
				}
			}
		}
	}
	maxLayer := 0
	for i, t := range tasks {
		if t.Name != pipeline.OnErrorTaskName && layer[i] > maxLayer {
			maxLayer = layer[i]
		}
	}
	for i, t := range tasks {
		if isLooseOnError(t) {
			layer[i] = maxLayer + 1
		}
	}
	return layer
}

// isLooseOnError reports whether t is the on_error handler without dependencies of its own,
// which the graph draws in a column after all other tasks.
func isLooseOnError(t pipeline.Task) bool {
	return t.Name == pipeline.OnErrorTaskName && len(t.DependsOn) == 0
}

// groupLayers lists the tasks of each layer in name order, the start of orderLayers' sweeps.
func groupLayers(tasks []pipeline.Task, layer []int) [][]int {
	nLayers := 0
	for _, l := range layer {
		if l+1 > nLayers {
			nLayers = l + 1
		}
	}
	layers := make([][]int, nLayers)
	for i := range tasks {
		layers[layer[i]] = append(layers[layer[i]], i)
	}
	for _, l := range layers {
		sort.Slice(l, func(a, b int) bool { return tasks[l[a]].Name < tasks[l[b]].Name })
	}
	return layers
}

// columns is the horizontal geometry of a graph: each layer is a column as wide as its widest
// node, and the graph is as high as its fullest column.
type columns struct {
	widths  []int // of each task's node
	x, w    []int // of each layer's column
	maxRows int
	width   int
	height  int
}

// newColumns decides the node widths, the columns' positions and the graph's size.
func newColumns(tasks []pipeline.Task, layer []int, layers [][]int) columns {
	c := columns{
		widths: make([]int, len(tasks)),
		x:      make([]int, len(layers)),
		w:      make([]int, len(layers)),
	}
	for i, t := range tasks {
		c.widths[i] = nodeWidth(t.Name)
		if c.widths[i] > c.w[layer[i]] {
			c.w[layer[i]] = c.widths[i]
		}
	}
	for _, l := range layers {
		if len(l) > c.maxRows {
			c.maxRows = len(l)
		}
	}
	c.height = 2*graphPad + c.maxRows*nodeH + (c.maxRows-1)*nodeGapY
	x := graphPad
	for l := range layers {
		c.x[l] = x
		x += c.w[l] + layerGap
	}
	c.width = x - layerGap + graphPad
	return c
}

// placeNodes builds each task's node, indexed like tasks: centred in its column, and its
// column centred vertically.
func placeNodes(tasks []pipeline.Task, layers [][]int, c columns, selected string, url func(task string) string) []GraphNode {
	pos := make([]GraphNode, len(tasks))
	for l, ids := range layers {
		offset := (c.maxRows - len(ids)) * (nodeH + nodeGapY) / 2
		for row, i := range ids {
			t := &tasks[i]
			pos[i] = GraphNode{
				Name:     t.Name,
				Label:    Truncate(t.Name, labelMaxLen),
				Detail:   nodeDetail(t),
				URL:      url(t.Name),
				Status:   TaskStatus(t.Status),
				Selected: t.Name == selected,
				OnError:  t.Name == pipeline.OnErrorTaskName,
				X:        c.x[l] + (c.w[l]-c.widths[i])/2,
				Y:        graphPad + offset + row*(nodeH+nodeGapY),
				W:        c.widths[i],
				H:        nodeH,
				Layer:    l,
			}
		}
	}
	return pos
}

// nodesInDrawOrder lists the nodes in layer order, then top to bottom, so that tab order
// follows the drawing.
func nodesInDrawOrder(layers [][]int, pos []GraphNode) []GraphNode {
	var nodes []GraphNode
	for _, ids := range layers {
		for _, i := range ids {
			nodes = append(nodes, pos[i])
		}
	}
	return nodes
}

// graphEdges draws each dependency as a curve from the right side of the dependency's node to
// the left side of its dependent's, coloured by the dependency's status.
func graphEdges(tasks []pipeline.Task, index map[string]int, pos []GraphNode) []GraphEdge {
	var edges []GraphEdge
	for i, t := range tasks {
		for _, dep := range t.DependsOn {
			j, ok := index[dep]
			if !ok || j == i {
				continue
			}
			edges = append(edges, GraphEdge{From: dep, To: t.Name, D: edgePath(pos[j], pos[i]), Class: "edge " + TaskStatus(tasks[j].Status).Class})
		}
	}
	return edges
}

// edgePath is the SVG path data of a cubic curve from node a to node b; the curve ends short of
// b so that the arrowhead touches its border.
func edgePath(a, b GraphNode) string {
	x1, y1 := a.X+a.W, a.Y+a.H/2
	x2, y2 := b.X, b.Y+b.H/2
	dx := (x2 - x1) / 2
	if dx < 20 {
		dx = 20
	}
	return "M" + itoa(x1) + " " + itoa(y1) +
		" C" + itoa(x1+dx) + " " + itoa(y1) + " " + itoa(x2-dx) + " " + itoa(y2) + " " + itoa(x2-4) + " " + itoa(y2)
}

func itoa(i int) string { return strconv.Itoa(i) }

func nodeWidth(name string) int {
	n := len([]rune(name))
	if n > labelMaxLen {
		n = labelMaxLen
	}
	w := nodeChrome + int(math.Ceil(float64(n)*nodeCharW))
	if w < nodeMinW {
		w = nodeMinW
	}
	if w > nodeMaxW {
		w = nodeMaxW
	}
	return w
}

// nodeDetail is the second line of a node: the status, and the duration once the task ended.
// A running task shows no ticking time, so that the graph changes only when a status does (a
// live swap would otherwise disturb a reader every few seconds); the task list has the time.
func nodeDetail(t *pipeline.Task) string {
	if t.End == nil || t.Start == nil {
		return string(t.Status)
	}
	return string(t.Status) + " · " + Duration(t.End.Sub(*t.Start))
}

// orderLayers reduces edge crossings with barycenter sweeps: each node moves towards the mean
// position of its neighbours in the previous layer (down sweeps: dependencies; up sweeps:
// dependents). Ties keep the name order, so the layout is deterministic.
func orderLayers(tasks []pipeline.Task, index map[string]int, layers [][]int) {
	if len(layers) < 2 {
		return
	}
	deps := make([][]int, len(tasks))
	dependents := make([][]int, len(tasks))
	for i, t := range tasks {
		for _, d := range t.DependsOn {
			if j, ok := index[d]; ok && j != i {
				deps[i] = append(deps[i], j)
				dependents[j] = append(dependents[j], i)
			}
		}
	}
	rank := make([]float64, len(tasks))
	setRanks := func(l []int) {
		for r, i := range l {
			rank[i] = float64(r)
		}
	}
	for _, l := range layers {
		setRanks(l)
	}
	sweep := func(l []int, neighbours [][]int) {
		bary := make(map[int]float64, len(l))
		for _, i := range l {
			if len(neighbours[i]) == 0 {
				bary[i] = rank[i]
				continue
			}
			sum := 0.0
			for _, n := range neighbours[i] {
				sum += rank[n]
			}
			bary[i] = sum / float64(len(neighbours[i]))
		}
		sort.SliceStable(l, func(a, b int) bool {
			if bary[l[a]] != bary[l[b]] {
				return bary[l[a]] < bary[l[b]]
			}
			return tasks[l[a]].Name < tasks[l[b]].Name
		})
		setRanks(l)
	}
	for pass := 0; pass < 2; pass++ {
		for li := 1; li < len(layers); li++ {
			sweep(layers[li], deps)
		}
		for li := len(layers) - 2; li >= 0; li-- {
			sweep(layers[li], dependents)
		}
	}
	for li := 1; li < len(layers); li++ {
		sweep(layers[li], deps)
	}
}
