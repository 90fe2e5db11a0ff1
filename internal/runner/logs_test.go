package runner

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
)

// failingWriter fails every write with err.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
func (w failingWriter) Close() error              { return nil }

func TestNoSpaceWatchCallsOnNoSpaceOnlyForAFullDisk(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("write log: %w", syscall.ENOSPC), 1},
		{fmt.Errorf("write log: %w", syscall.EIO), 0},
		{errors.New("database unreachable"), 0},
	}
	for _, tt := range tests {
		calls := 0
		var w io.Writer = noSpaceWatch{failingWriter{tt.err}, func() { calls++ }}
		if _, err := w.Write([]byte("x")); !errors.Is(err, tt.err) {
			t.Errorf("Write = %v, want the writer's error %v", err, tt.err)
		}
		if calls != tt.want {
			t.Errorf("%v: onNoSpace called %d times, want %d", tt.err, calls, tt.want)
		}
	}
}
