package runner

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store/sqlite"
)

// TestReadyWaitsForTheStart: a server answers requests once its crash recovery is done, while
// its definitions may still load; a readiness check in that window waits for the start (as an
// admission does) instead of calling the runner unready with a wrong reason, and says "starting"
// when its time runs out first.
func TestReadyWaitsForTheStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "prunner.db"))
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{Store: st, DataDir: dir, WorkDir: dir, Env: os.Environ(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Stop(ctx)
		_ = st.Close()
	})
	if err := r.Recover(t.Context()); err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := r.Ready(short); err == nil || !strings.HasPrefix(err.Error(), "starting") {
		t.Fatalf("Ready() before the start = %v, want a starting error", err)
	}

	ready := make(chan error, 1)
	go func() { ready <- r.Ready(t.Context()) }()
	r.SetDefinitions(&pipeline.Set{Pipelines: map[string]*pipeline.Definition{}})
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ready:
		if err != nil {
			t.Errorf("Ready() during the start = %v, want ready once started", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Ready() still waits after the start")
	}
}
