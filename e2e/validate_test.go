package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidate: `prunner validate` loads the definitions as the server would, prints every error
// and warning with file:line, and exits 1 on an error and 0 otherwise; it needs no data directory
// and writes nothing.
func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		files    map[string]string
		args     []string
		wantCode int
		want     []string
	}{
		{"good file", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    tasks: {t: {script: [x]}}\n  b:\n    tasks: {t: {script: [x]}}\n"},
			nil, 0, []string{"ok: 2 pipelines, 0 warnings"}},
		{"warnings only", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    tasks:\n      t: {script: [x], depends-on: []}\n"},
			nil, 0, []string{`warning: pipelines.yml:4: unknown key "depends-on" in task "t" of pipeline "a" (did you mean "depends_on"?)`, "ok: 1 pipelines, 1 warnings"}},
		{"every error at once", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    concurrency: 0\n    tasks:\n      t: {script: [x], depends_on: [nope]}\n  b:\n    start_delay: 1s\n    queue_limit: 0\n    tasks: {t: {script: [x]}}\n"},
			nil, 1, []string{
				`error: pipelines.yml:3: pipeline "a": concurrency must be greater than 0`,
				`error: pipelines.yml:5: pipeline "a": missing task "nope" referenced in depends_on of task "t"`,
				`error: pipelines.yml:8: pipeline "b": start_delay with queue_limit: 0 can never accept a job`,
				"invalid: 3 errors, 0 warnings"}},
		{"--path and --pattern", map[string]string{"conf/jobs.yaml": "pipelines:\n  c:\n    tasks: {t: {script: [x]}}\n", "pipelines.yml": "broken: [\n"},
			[]string{"--path", "conf", "--pattern", "*.yaml"}, 0, []string{"ok: 1 pipelines"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tt.files {
				writeFile(t, filepath.Join(dir, name), content)
			}
			cmd := exec.Command(binary, append([]string{"validate"}, tt.args...)...)
			cmd.Dir = dir
			cmd.Env = cleanEnv()
			out, err := cmd.Output()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, want := range tt.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			for _, leftover := range []string{".prunner", ".prunner.yml"} {
				if _, err := os.Stat(filepath.Join(dir, leftover)); err == nil {
					t.Errorf("validate wrote %s", leftover)
				}
			}
		})
	}
}
