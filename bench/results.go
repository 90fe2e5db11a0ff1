package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// target is a figure of ../shared/docs/performance.md: at most (or, for rates, at least) value.
type target struct {
	value   float64
	atLeast bool
}

func atMost(v float64) *target  { return &target{value: v} }
func atLeast(v float64) *target { return &target{value: v, atLeast: true} }

// result is one row of the table: the samples of one measurement.
type result struct {
	Group    string
	Scenario string
	Unit     string
	Samples  []float64
	Target   *target // nil: information only
	Err      string  // the measurement failed
	Skipped  string  // why it was not measured (the server lacks an optional feature)
	Note     string
	Extra    map[string]any
}

func (r *result) sorted() []float64 {
	s := append([]float64(nil), r.Samples...)
	sort.Float64s(s)
	return s
}

func median(s []float64) float64 {
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile of sorted s, nearest rank on (n-1) like bench.py.
func percentile(s []float64, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	k := int(math.Round(p / 100 * float64(len(s)-1)))
	return s[min(len(s)-1, max(0, k))]
}

// verdict is "pass", "miss", "info", "n/a" or "error".
func (r *result) verdict() string {
	switch {
	case r.Skipped != "":
		return "n/a"
	case r.Err != "":
		return "error"
	case len(r.Samples) == 0:
		return "error"
	case r.Target == nil:
		return "info"
	}
	m := median(r.sorted())
	if r.Target.atLeast && m >= r.Target.value || !r.Target.atLeast && m <= r.Target.value {
		return "pass"
	}
	return "miss"
}

func (r *result) targetString() string {
	if r.Target == nil {
		return "—"
	}
	op := "≤"
	if r.Target.atLeast {
		op = "≥"
	}
	return op + " " + formatValue(r.Target.value, r.Unit) + " " + r.Unit
}

func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "—"
	}
	switch unit {
	case "jobs/s":
		return fmt.Sprintf("%.0f", v)
	case "MiB", "MB":
		return fmt.Sprintf("%.1f", v)
	}
	a := math.Abs(v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// row renders the table cells: scenario, n, median, spread, target, result.
func (r *result) row() []string {
	s := r.sorted()
	med, spread := "—", "—"
	if len(s) > 0 {
		med = formatValue(median(s), r.Unit) + " " + r.Unit
	}
	if len(s) > 1 {
		spread = formatValue(s[0], r.Unit) + "–" + formatValue(s[len(s)-1], r.Unit)
		if len(s) >= 10 {
			spread += ", p90 " + formatValue(percentile(s, 90), r.Unit)
		}
	}
	verdict := r.verdict()
	if r.Skipped != "" {
		verdict += " (" + r.Skipped + ")"
	} else if r.Err != "" {
		verdict += ": " + truncate([]byte(r.Err), 120)
	} else if r.Note != "" {
		verdict += " (" + r.Note + ")"
	}
	return []string{r.Scenario, fmt.Sprint(len(s)), med, spread, r.targetString(), verdict}
}

// printTable writes the results as one Markdown table.
func printTable(w io.Writer, results []*result) {
	header := []string{"scenario", "n", "median", "spread (min–max)", "target", "result"}
	rows := [][]string{header}
	for _, r := range results {
		rows = append(rows, r.row())
	}
	widths := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			b.WriteString(" ")
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
			b.WriteString(" |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", widths[i])
	}
	line(sep)
	for _, row := range rows[1:] {
		line(row)
	}
}

// jsonLine is the results-file form of a result.
func (r *result) jsonLine(label string) ([]byte, error) {
	s := r.sorted()
	m := map[string]any{
		"label":    label,
		"group":    r.Group,
		"scenario": r.Scenario,
		"unit":     r.Unit,
		"n":        len(s),
		"samples":  rounded(r.Samples),
		"result":   r.verdict(),
	}
	if len(s) > 0 {
		m["median"] = round3(median(s))
		m["min"] = round3(s[0])
		m["max"] = round3(s[len(s)-1])
		m["p90"] = round3(percentile(s, 90))
	}
	if r.Target != nil {
		m["target"] = r.targetString()
	}
	if r.Err != "" {
		m["error"] = r.Err
	}
	if r.Note != "" {
		m["note"] = r.Note
	}
	if r.Skipped != "" {
		m["skipped"] = r.Skipped
	}
	for k, v := range r.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func rounded(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = round3(x)
	}
	return out
}
