package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDefinitionsFingerprint: --watch reloads when a file that a load reads changes, appears or
// goes away, and not for other files.
func TestDefinitionsFingerprint(t *testing.T) {
	t.Parallel()
	const def = "pipelines:\n  p:\n    tasks:\n      t: {script: [\"true\"]}\n"
	write := func(t *testing.T, path, content string, mtime time.Time) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(time.Hour)
	tests := []struct {
		name       string
		change     func(t *testing.T, dir string)
		wantReload bool
	}{
		{"nothing changed", func(*testing.T, string) {}, false},
		{"a definition file edited", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "pipelines.yml"), def, later)
		}, true},
		{"a definition file added", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "sub", "pipelines.yaml"), def, later)
		}, true},
		{"a definition file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "pipelines.yml")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a YAML file the pattern does not match", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "docker-compose.yml"), "services: {}\n", later)
		}, false},
		{"a definition file in a hidden directory", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, ".prunner", "pipelines.yml"), def, later)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			write(t, filepath.Join(dir, "pipelines.yml"), def, time.Now())
			cfg := &config{path: dir}
			before := definitionsFingerprint(cfg)
			tt.change(t, dir)
			if got := definitionsFingerprint(cfg) != before; got != tt.wantReload {
				t.Errorf("fingerprint changed = %v, want %v", got, tt.wantReload)
			}
		})
	}
}
