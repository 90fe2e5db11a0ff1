package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReliabilityBadYAMLTable (reliability item 16): every kind of broken pipelines file stops
// the real binary at start-up with exit code 1 and a message that names the file and line (where
// there is one) and says what is wrong; the data directory's history is untouched.
func TestReliabilityBadYAMLTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"tab indentation", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    tasks:\n      t:\n\tscript: [x]\n"},
			[]string{"pipelines.yml:5: invalid YAML"}},
		{"unclosed flow sequence", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    tasks:\n      t: {script: [x}\n"},
			// yaml.v3 reports the line where the flow mapping's context began.
			[]string{"pipelines.yml:3: invalid YAML: did not find expected ',' or ']'"}},
		{"binary garbage", map[string]string{"pipelines.yml": "\x00\x01\xff\xfe garbage"},
			[]string{"pipelines.yml", "invalid YAML"}},
		{"dependency cycle", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    tasks:\n      t: {script: [x], depends_on: [u]}\n      u: {script: [x], depends_on: [t]}\n"},
			[]string{"pipelines.yml:4", "dependency cycle"}},
		{"unknown dependency", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    tasks:\n      t: {script: [x], depends_on: [nope]}\n"},
			[]string{"pipelines.yml:4", `missing task "nope"`}},
		{"wrong types, all reported", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    concurrency: lots\n    tasks:\n      t: {script: x}\n"},
			[]string{`pipelines.yml:3: pipeline "a": concurrency must be an integer, got "lots"`, `pipelines.yml:5: pipeline "a": task "t": script must be a list`}},
		{"bad duration", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    start_delay: soon\n    tasks:\n      t: {script: [x]}\n"},
			[]string{"pipelines.yml:3", "start_delay"}},
		{"partitioned_replace without limit", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    queue_strategy: partitioned_replace\n    tasks:\n      t: {script: [x]}\n"},
			[]string{"pipelines.yml:3", "queue_partition_limit must be defined"}},
		{"same pipeline in two files", map[string]string{
			"pipelines.yml":         "pipelines:\n  a:\n    tasks:\n      t: {script: [x]}\n",
			"more/pipelines.yml":    "pipelines:\n  a:\n    tasks:\n      u: {script: [x]}\n",
			"more/other/readme.txt": "not a pipelines file"},
			[]string{"more/pipelines.yml:2", `"a"`}},
		{"alias bomb", map[string]string{"pipelines.yml": aliasBomb()},
			[]string{"pipelines.yml", "alias"}},
		{"pipelines not a map", map[string]string{"pipelines.yml": "pipelines: [a, b]\n"},
			[]string{"pipelines.yml:1"}},
		// Queue options that could never accept a job (see TestQueueOptionsThatCanNeverAcceptAJob
		// for every combination) are refused, not started with a warning.
		{"start_delay with no wait list (append)", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    start_delay: 1s\n    queue_limit: 0\n    tasks:\n      t: {script: [x]}\n"},
			[]string{`pipelines.yml:4: pipeline "a": start_delay with queue_limit: 0 can never accept a job`, "raise queue_limit"}},
		{"start_delay with no wait list (replace)", map[string]string{"pipelines.yml": "pipelines:\n  a:\n    queue_strategy: replace\n    queue_limit: 0\n    start_delay: 5s\n    tasks:\n      t: {script: [x]}\n"},
			[]string{`pipelines.yml:4: pipeline "a": start_delay with queue_limit: 0 can never accept a job`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, "")
			for name, content := range tt.files {
				writeFile(t, filepath.Join(s.dir, name), content)
			}
			s.startNoWait()
			if code := s.wait(10 * time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1; output:\n%s", code, s.output.String())
			}
			out := s.output.String()
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "prunner started") {
				t.Errorf("the server started with a broken pipelines file:\n%s", out)
			}
		})
	}
}

// aliasBomb is a small YAML file whose aliases expand to billions of nodes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for k := 0; k < 10; k++ {
			if k > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("pipelines:\n  a:\n    tasks:\n      t: {script: *a9}\n")
	return b.String()
}
