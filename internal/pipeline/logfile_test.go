package pipeline

import "testing"

func TestLogFileName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		task    string
		attempt int
		stream  LogStream
		want    string
	}{
		{"build", 0, Stdout, "6275696c64.stdout"},
		{"build", 1, Stderr, "6275696c64.stderr"},
		{"build", 2, Stdout, "6275696c64.attempt2.stdout"},
		{"a/../b", 0, Stdout, "612f2e2e2f62.stdout"},
		{"", 0, Stderr, ".stderr"},
	}
	for _, tt := range tests {
		if got := LogFileName(tt.task, tt.attempt, tt.stream); got != tt.want {
			t.Errorf("LogFileName(%q, %d, %q) = %q, want %q", tt.task, tt.attempt, tt.stream, got, tt.want)
		}
	}
}
