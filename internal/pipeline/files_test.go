package pipeline

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func TestFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   map[string]string
		pattern string
		want    []string // slash-separated, relative to the directory, in order
	}{
		{
			name: "default pattern: any depth, sorted, hidden directories and look-alikes left out",
			files: map[string]string{
				"pipelines.yml":            pipelineFile("root"),
				"b/pipelines.yaml":         pipelineFile("b"),
				"a/c/pipelines.yml":        pipelineFile("ac"),
				"a/other.yml":              pipelineFile("other"),
				"a/pipelines.yml.bak":      pipelineFile("backup"),
				".git/pipelines.yml":       pipelineFile("git"),
				".prunner/x/pipelines.yml": pipelineFile("data"),
			},
			want: []string{"a/c/pipelines.yml", "b/pipelines.yaml", "pipelines.yml"},
		},
		{
			name:    "custom pattern",
			files:   map[string]string{"pipelines.yml": pipelineFile("root"), "ci/a.yml": pipelineFile("a"), "ci/sub/b.yml": pipelineFile("b")},
			pattern: "ci/*.yml",
			want:    []string{"ci/a.yml"},
		},
		{
			name:    "a pattern naming a hidden directory searches it",
			files:   map[string]string{".ci/pipelines.yml": pipelineFile("ci"), "pipelines.yml": pipelineFile("root")},
			pattern: ".ci/pipelines.yml",
			want:    []string{".ci/pipelines.yml"},
		},
		{
			name:  "no matching file",
			files: map[string]string{"README.md": "hi"},
			want:  []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tt.files)
			got, err := Files(dir, tt.pattern)
			if err != nil {
				t.Fatalf("Files: %v", err)
			}
			want := make([]string, len(tt.want))
			for i, rel := range tt.want {
				want[i] = filepath.Join(dir, filepath.FromSlash(rel))
			}
			if !slices.Equal(got, want) {
				t.Errorf("Files() = %q, want %q", got, want)
			}
		})
	}
}

// TestFilesAreWhatLoadReads: the files Files lists are exactly the source files of the loaded
// pipelines, so that --watch notices a change of any file a load reads, and of no other.
func TestFilesAreWhatLoadReads(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"pipelines.yml":      pipelineFile("root"),
		"a/pipelines.yml":    pipelineFile("a"),
		"b/c/pipelines.yaml": pipelineFile("c"),
		"d/unrelated.yml":    pipelineFile("unrelated"),
	})
	files, err := Files(dir, "")
	if err != nil {
		t.Fatalf("Files: %v", err)
	}
	set, _, err := Load(dir, "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var read []string
	for _, def := range set.Pipelines {
		read = append(read, def.SourceFile)
	}
	slices.Sort(read)
	if !slices.Equal(files, read) {
		t.Errorf("Files() = %q, Load read %q", files, read)
	}
}

func TestFilesFailures(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"file": "x"})
	tests := []struct {
		name    string
		dir     string
		pattern string
		want    string
	}{
		{"missing directory", filepath.Join(dir, "missing"), "", filepath.Join(dir, "missing") + ": cannot read the pipeline directory: no such file or directory"},
		{"not a directory", filepath.Join(dir, "file"), "", filepath.Join(dir, "file") + ": the pipeline path is not a directory"},
		{"invalid pattern", dir, "[", `invalid pattern "["`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files, err := Files(tt.dir, tt.pattern)
			if files != nil {
				t.Errorf("files = %q, want nil", files)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LoadError", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
