package main

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/client"
)

func TestDuration(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	end := start.Add(90*time.Second + 400*time.Millisecond)
	now := start.Add(10 * time.Second)
	tests := []struct {
		name       string
		start, end *time.Time
		want       string
	}{
		{"not started", nil, nil, "-"},
		{"running: until now", &start, nil, "10s"},
		{"ended", &start, &end, "1m30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := duration(tt.start, tt.end, now); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrintJobs(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	jobs := []client.Job{
		{ID: "0123456789abcdef", Pipeline: "deploy", Status: "running", Created: created, Start: &created},
		{ID: "fedcba9876543210", Pipeline: "a", Status: "queued", Created: created},
	}
	var b bytes.Buffer
	printJobs(&b, jobs, created.Add(time.Minute), false)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and two rows:\n%s", b.String())
	}
	col := strings.Index(lines[0], "STATUS")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "running") && !strings.HasPrefix(l[col:], "queued") {
			t.Errorf("columns not aligned:\n%s", b.String())
		}
	}
	local := created.Local().Format("2006-01-02 15:04:05")
	for _, want := range []string{"01234567  deploy", local, "1m0s", "fedcba98"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// TestPrintJobsInColour: on a terminal each status has its colour, and the columns after the
// status stay aligned although the escape codes take bytes.
func TestPrintJobsInColour(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	jobs := []client.Job{
		{ID: "0123456789abcdef", Pipeline: "deploy", Status: "succeeded", Created: created, Start: &created, End: &created},
		{ID: "fedcba9876543210", Pipeline: "a", Status: "queued", Created: created},
		{ID: "aaaaaaaaaaaaaaaa", Pipeline: "a", Status: "failed", Created: created, Start: &created, End: &created},
	}
	var b bytes.Buffer
	printJobs(&b, jobs, created.Add(time.Minute), true)
	out := b.String()
	for _, want := range []string{"\x1b[32msucceeded\x1b[0m", "\x1b[39mqueued\x1b[0m", "\x1b[31mfailed\x1b[0m"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	col := -1
	for i, l := range lines[1:] {
		c := strings.Index(l, created.Local().Format("2006-01-02"))
		if i > 0 && c != col {
			t.Errorf("CREATED column at byte %d in row %d, %d before:\n%s", c, i+1, col, out)
		}
		col = c
	}
}

func TestNoColourWhenNotATerminal(t *testing.T) {
	t.Parallel()
	if useColor(&bytes.Buffer{}) {
		t.Error("colour for a buffer")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if useColor(f) {
		t.Error("colour for a regular file")
	}
}

func TestLinePrefixer(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	p := &linePrefixer{mu: &sync.Mutex{}, w: &b, prefix: "[t] "}
	p.write("one\ntw")
	p.write("o\nthree")
	p.flush()
	if want := "[t] one\n[t] two\n[t] three\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

func TestClientCommandUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"schedule", "-h"}, 0, "3  the job was canceled"},
		{[]string{"jobs", "-h"}, 0, "--status"},
		{[]string{"logs", "-h"}, 0, "follow the output live"},
		{[]string{"cancel", "-h"}, 0, "Usage: prunner cancel JOB"},
		{[]string{"jobs", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"help"}, 0, "prunner schedule PIPELINE"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			code := run(t.Context(), tt.args, map[string]string{}, &out, &out)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.want) {
				t.Errorf("exit %d (want %d), output lacks %q:\n%s", code, tt.wantCode, tt.want, out.String())
			}
		})
	}
}
