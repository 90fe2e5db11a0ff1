package pipeline

import (
	"slices"
	"testing"
)

func TestJobStatuses(t *testing.T) {
	t.Parallel()
	want := []JobStatus{JobQueued, JobRunning, JobSucceeded, JobFailed, JobCanceled, JobReplaced}
	if got := JobStatuses(); !slices.Equal(got, want) {
		t.Errorf("JobStatuses() = %q, want %q (every status, in lifecycle order)", got, want)
	}
	// The list is the caller's: changing it changes nothing for the next caller.
	JobStatuses()[0] = "changed"
	if got := JobStatuses()[0]; got != JobQueued {
		t.Errorf("JobStatuses()[0] after a caller changed its copy = %q, want %q", got, JobQueued)
	}
}

func TestParseJobStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   JobStatus
		wantOK bool
	}{
		{"queued", JobQueued, true},
		{"running", JobRunning, true},
		{"succeeded", JobSucceeded, true},
		{"failed", JobFailed, true},
		{"canceled", JobCanceled, true},
		{"replaced", JobReplaced, true},
		{"", "", false},
		{"Queued", "", false},
		{"cancelled", "", false},
		{"done", "", false},
	}
	for _, tt := range tests {
		if got, ok := ParseJobStatus(tt.in); got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseJobStatus(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
