package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func problemStrings(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// writeFiles writes files (slash-separated path → content) below a new temporary directory and
// returns the directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		yaml      string
		wantErrs  []string
		wantWarns []string
	}{
		{
			name: "concurrency 0",
			yaml: `pipelines:
  release:
    concurrency: 0
    tasks:
      a: {script: [x]}
`,
			wantErrs: []string{`pipelines.yml:3: pipeline "release": concurrency must be greater than 0`},
		},
		{
			name: "negative concurrency",
			yaml: `pipelines:
  release:
    concurrency: -2
`,
			wantErrs: []string{`pipelines.yml:3: pipeline "release": concurrency must be greater than 0`},
		},
		{
			name: "negative queue_limit",
			yaml: `pipelines:
  release:
    queue_limit: -1
`,
			wantErrs: []string{`pipelines.yml:3: pipeline "release": queue_limit must not be negative`},
		},
		{
			name: "negative start_delay",
			yaml: `pipelines:
  release:
    start_delay: -5s
`,
			wantErrs: []string{`pipelines.yml:3: pipeline "release": start_delay must not be negative`},
		},
		{
			name: "negative retention",
			yaml: `pipelines:
  release:
    retention_period: -1h
    retention_count: -1
`,
			wantErrs: []string{
				`pipelines.yml:3: pipeline "release": retention_period must not be negative`,
				`pipelines.yml:4: pipeline "release": retention_count must not be negative`,
			},
		},
		{
			name: "unknown queue strategy",
			yaml: `pipelines:
  release:
    queue_strategy: foo
`,
			wantErrs: []string{`pipelines.yml:3: pipeline "release": unknown queue strategy: "foo"`},
		},
		{
			name: "partitioned_replace without queue_partition_limit",
			yaml: `pipelines:
  release:
    queue_strategy: partitioned_replace
`,
			wantErrs: []string{`pipelines.yml:3: pipeline "release": queue_partition_limit must be defined and >=1 if queue_strategy=partitioned_replace`},
		},
		{
			name: "partitioned_replace with queue_partition_limit 0",
			yaml: `pipelines:
  release:
    queue_strategy: partitioned_replace
    queue_partition_limit: 0
`,
			wantErrs: []string{`pipelines.yml:4: pipeline "release": queue_partition_limit must be defined and >=1 if queue_strategy=partitioned_replace`},
		},
		{
			name: "partitioned_replace with queue_limit",
			yaml: `pipelines:
  release:
    queue_strategy: partitioned_replace
    queue_partition_limit: 1
    queue_limit: 3
`,
			wantErrs: []string{`pipelines.yml:5: pipeline "release": queue_limit is not allowed if queue_strategy=partitioned_replace, use queue_partition_limit instead`},
		},
		{
			name: "append with queue_partition_limit",
			yaml: `pipelines:
  release:
    queue_partition_limit: 2
  deploy:
    queue_strategy: replace
    queue_partition_limit: 2
`,
			wantErrs: []string{
				`pipelines.yml:3: pipeline "release": queue_partition_limit is not allowed if queue_strategy=append|replace, use queue_limit instead`,
				`pipelines.yml:6: pipeline "deploy": queue_partition_limit is not allowed if queue_strategy=append|replace, use queue_limit instead`,
			},
		},
		{
			name: "missing dependency",
			yaml: `pipelines:
  release:
    tasks:
      y:
        script: [make]
        depends_on: [x, on_error]
`,
			wantErrs: []string{
				`pipelines.yml:6: pipeline "release": missing task "x" referenced in depends_on of task "y"`,
				`pipelines.yml:6: pipeline "release": missing task "on_error" referenced in depends_on of task "y"`,
			},
		},
		{
			name: "dependency cycle",
			yaml: `pipelines:
  release:
    tasks:
      c: {depends_on: [a]}
      b: {depends_on: [c]}
      a: {depends_on: [b]}
      d: {depends_on: [a]}
`,
			wantErrs: []string{`pipelines.yml:6: pipeline "release": dependency cycle: a -> b -> c -> a`},
		},
		{
			name: "task depending on itself",
			yaml: `pipelines:
  release:
    tasks:
      a: {depends_on: [a]}
`,
			wantErrs: []string{`pipelines.yml:4: pipeline "release": dependency cycle: a -> a`},
		},
		{
			name: "two cycles, shortest path each",
			yaml: `pipelines:
  release:
    tasks:
      a: {depends_on: [b, d]}
      b: {depends_on: [c]}
      c: {depends_on: [a]}
      d: {depends_on: [a]}
      x: {depends_on: [y]}
      y: {depends_on: [x]}
`,
			wantErrs: []string{
				`pipelines.yml:4: pipeline "release": dependency cycle: a -> d -> a`,
				`pipelines.yml:8: pipeline "release": dependency cycle: x -> y -> x`,
			},
		},
		{
			name: "wrong scalar types",
			yaml: `pipelines:
  release:
    concurrency: "abc"
    queue_limit: [1]
    start_delay: 10
    retention_period: 10 s
    continue_running_tasks_after_failure: maybe
    queue_strategy: {a: b}
`,
			wantErrs: []string{
				`pipelines.yml:3: pipeline "release": concurrency must be an integer, got "abc"`,
				`pipelines.yml:4: pipeline "release": queue_limit must be an integer, got a list`,
				`pipelines.yml:5: pipeline "release": start_delay must be a duration with a unit, such as "10s", got "10"`,
				`pipelines.yml:6: pipeline "release": retention_period must be a duration such as "10s", "5m" or "48h", got "10 s"`,
				`pipelines.yml:7: pipeline "release": continue_running_tasks_after_failure must be true or false, got "maybe"`,
				`pipelines.yml:8: pipeline "release": queue_strategy must be a string, got a mapping`,
			},
		},
		{
			name: "tasks as a list",
			yaml: `pipelines:
  release:
    tasks:
      - build:
          script: [make]
`,
			wantErrs: []string{`pipelines.yml:4: pipeline "release": tasks must be a mapping of task names to tasks, got a list (write each task's name as a key, not as a list item)`},
		},
		{
			name: "wrong task field types",
			yaml: `pipelines:
  release:
    tasks:
      a:
        script: 5
      b:
        script: make build
      c:
        script:
          - echo ok
          - echo a: b
          - [nested]
      d:
        depends_on: a
      e:
        env: [A=1]
      f:
        env: {A: {b: c}}
      g:
        allow_failure: 2
      h: [script]
`,
			wantErrs: []string{
				`pipelines.yml:5: pipeline "release": task "a": script must be a list of command lines, got "5" (write each command line as a list item: "- make build")`,
				`pipelines.yml:7: pipeline "release": task "b": script must be a list of command lines, got "make build" (write each command line as a list item: "- make build")`,
				`pipelines.yml:11: pipeline "release": task "c": script line 2 must be a string, got a mapping (quote a line that contains ": ", or YAML reads it as a mapping)`,
				`pipelines.yml:12: pipeline "release": task "c": script line 3 must be a string, got a list`,
				`pipelines.yml:14: pipeline "release": task "d": depends_on must be a list of task names, got "a" (write depends_on: [a])`,
				`pipelines.yml:16: pipeline "release": task "e": env must be a mapping of variable names to values, got a list`,
				`pipelines.yml:18: pipeline "release": task "f": env A must be a string, got a mapping`,
				`pipelines.yml:20: pipeline "release": task "g": allow_failure must be true or false, got "2"`,
				`pipelines.yml:21: pipeline "release": task "h" must be a mapping with script, depends_on, allow_failure, env, timeout and retry, got a list`,
			},
		},
		{
			name: "wrong structure types",
			yaml: `pipelines:
  release: [a, b]
  deploy: 5
  other:
    on_error: [echo]
`,
			wantErrs: []string{
				`pipelines.yml:2: pipeline "release" must be a mapping of settings and tasks, got a list`,
				`pipelines.yml:3: pipeline "deploy" must be a mapping of settings and tasks, got "5"`,
				`pipelines.yml:5: pipeline "other": on_error must be a mapping with script, env and timeout, got a list`,
			},
		},
		{
			name:     "pipelines as a list",
			yaml:     "pipelines:\n  - release\n",
			wantErrs: []string{`pipelines.yml:2: "pipelines" must be a mapping of pipeline names to pipelines, got a list`},
		},
		{
			name:     "top level is a list",
			yaml:     "- pipelines\n",
			wantErrs: []string{`pipelines.yml:1: the file must be a mapping with a "pipelines" key, got a list`},
		},
		{
			name: "reserved and empty names",
			yaml: `pipelines:
  "":
    tasks: {}
  release:
    tasks:
      on_error: {script: [echo]}
      "": {script: [echo]}
    env:
      "": x
      A=B: y
`,
			wantErrs: []string{
				`pipelines.yml:2: pipeline name must not be empty`,
				`pipelines.yml:6: pipeline "release": task name "on_error" is reserved for the pipeline's error handler (declare on_error next to tasks, not inside it)`,
				`pipelines.yml:7: pipeline "release": task name must not be empty`,
				`pipelines.yml:9: pipeline "release": invalid environment variable name ""`,
				`pipelines.yml:10: pipeline "release": invalid environment variable name "A=B"`,
			},
		},
		{
			name: "duplicate keys",
			yaml: `pipelines:
  release:
    tasks:
      a: {script: [one]}
      a: {script: [two]}
  release:
    concurrency: 2
`,
			wantErrs: []string{
				`pipelines.yml:5: duplicate key "a" in tasks of pipeline "release" (first at line 4)`,
				`pipelines.yml:6: duplicate key "release" in pipelines (first at line 2)`,
			},
		},
		{
			name: "syntax error",
			yaml: `pipelines:
  release:
    tasks:
      a:
        script: [echo
      b: {}
`,
			wantErrs: []string{`pipelines.yml:4: invalid YAML: did not find expected ',' or ']'`},
		},
		{
			name:     "tab indentation",
			yaml:     "pipelines:\n\trelease: {}\n",
			wantErrs: []string{`pipelines.yml:2: invalid YAML: found character that cannot start any token`},
		},
		{
			name:     "unknown anchor",
			yaml:     "pipelines: *nope\n",
			wantErrs: []string{`pipelines.yml: invalid YAML: unknown anchor 'nope' referenced`},
		},
		{
			name:     "alias referring to its own container",
			yaml:     "pipelines: &p\n  release: *p\n",
			wantErrs: []string{`pipelines.yml:2: YAML alias *p refers to a node that contains it`},
		},
		{
			name: "warnings only",
			yaml: `pipeline:
  x: 1
pipelines:
  release:
    concurrenc: 2
    Queue-Limit: 0
    start_delay: 10s
    tasks:
      a:
        script: [echo]
        dependson: [b]
      b:
        depends-on: [a]
        depends_on: [a, a]
        color: red
    on_error:
      script: [echo]
      allow_failure: true
`,
			wantWarns: []string{
				`pipelines.yml:1: unknown top-level key "pipeline" (did you mean "pipelines"?)`,
				`pipelines.yml:5: unknown key "concurrenc" in pipeline "release" (did you mean "concurrency"?)`,
				`pipelines.yml:6: unknown key "Queue-Limit" in pipeline "release" (did you mean "queue_limit"?)`,
				`pipelines.yml:11: unknown key "dependson" in task "a" of pipeline "release" (did you mean "depends_on"?)`,
				`pipelines.yml:13: unknown key "depends-on" in task "b" of pipeline "release" (did you mean "depends_on"?)`,
				`pipelines.yml:14: pipeline "release": task "b": task "a" is listed more than once in depends_on`,
				`pipelines.yml:15: unknown key "color" in task "b" of pipeline "release"`,
				`pipelines.yml:18: unknown key "allow_failure" in on_error of pipeline "release"`,
			},
		},
		{
			name:      "no pipelines key",
			yaml:      "jobs:\n  a: 1\n",
			wantWarns: []string{`pipelines.yml:1: unknown top-level key "jobs"`, `pipelines.yml:1: the file has no "pipelines" key: it defines no pipelines`},
		},
		{
			name:      "more than one document",
			yaml:      "pipelines: {}\n---\npipelines: {a: {}}\n",
			wantWarns: []string{`pipelines.yml:2: only the first YAML document of the file is read; the documents after it are ignored`},
		},
		{name: "empty file", yaml: ""},
		{name: "only comments", yaml: "# nothing yet\n"},
		{name: "only a document marker", yaml: "---\n"},
		{name: "empty pipelines", yaml: "pipelines:\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			defs, warns, errs := Parse("pipelines.yml", []byte(tt.yaml))
			if got := problemStrings(errs); !slices.Equal(got, tt.wantErrs) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.wantErrs)
			}
			if got := problemStrings(warns); !slices.Equal(got, tt.wantWarns) {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.wantWarns)
			}
			if len(errs) > 0 && defs != nil {
				t.Errorf("defs = %v, want nil with errors", defs)
			}
			if len(errs) == 0 && defs == nil {
				t.Errorf("defs = nil, want a map without errors")
			}
		})
	}
}

func TestParseAliasBombFailsFast(t *testing.T) {
	t.Parallel()
	// Nine levels of nine aliases: 9^9 (387 million) script lines once expanded.
	var b strings.Builder
	b.WriteString("a: &a [\"echo lol\", \"echo lol\", \"echo lol\", \"echo lol\", \"echo lol\", \"echo lol\", \"echo lol\", \"echo lol\", \"echo lol\"]\n")
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		b.WriteString(name + ": &" + name + " [")
		for i := range 9 {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = name
	}
	b.WriteString("pipelines:\n  bomb:\n    tasks:\n      t:\n        script: *i\n")

	start := time.Now()
	_, _, errs := Parse("pipelines.yml", []byte(b.String()))
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Parse took %v, want it to fail fast", elapsed)
	}
	want := []string{`pipelines.yml: YAML aliases expand to more than 1000000 nodes; is this an alias bomb ("billion laughs")?`}
	if got := problemStrings(errs); !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	_, _, errs := Parse("big.yml", make([]byte, MaxFileSize+1))
	want := []string{"big.yml: the file is larger than 10 MiB"}
	if got := problemStrings(errs); !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}

func intPtr(n int) *int { return &n }

func TestParseDefinitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want map[string]*Definition
	}{
		{
			name: "defaults",
			yaml: `pipelines:
  release:
    tasks:
      build:
        script: [make]
  empty:
`,
			want: map[string]*Definition{
				"release": {
					Name: "release", SourceFile: "p.yml", Concurrency: 1, QueueStrategy: QueueAppend,
					Tasks: map[string]TaskDefinition{"build": {Name: "build", Script: []string{"make"}}},
				},
				"empty": {
					Name: "empty", SourceFile: "p.yml", Concurrency: 1, QueueStrategy: QueueAppend,
					Tasks: map[string]TaskDefinition{},
				},
			},
		},
		{
			name: "every setting",
			yaml: `pipelines:
  release:
    concurrency: 3
    queue_limit: 5
    queue_strategy: replace
    start_delay: 1m30s
    continue_running_tasks_after_failure: true
    retention_period: 48h
    retention_count: 10
    env: {STAGE: prod}
    tasks:
      generate: {}
      build:
        script:
          - make build
          - |
            echo multi
            echo line
        depends_on: [generate]
        allow_failure: true
        env: {CGO_ENABLED: 0}
    on_error:
      script: ["notify {{ .failedTaskName }}"]
      env: {}
  fanout:
    queue_strategy: partitioned_replace
    queue_partition_limit: 2
    queue_limit: ~
    start_delay: 0
    concurrency:
`,
			want: map[string]*Definition{
				"release": {
					Name: "release", SourceFile: "p.yml",
					Concurrency: 3, QueueLimit: intPtr(5), QueueStrategy: QueueReplace,
					StartDelay: 90 * time.Second, ContinueRunningTasksAfterFailure: true,
					RetentionPeriod: 48 * time.Hour, RetentionCount: 10,
					Env: map[string]string{"STAGE": "prod"},
					Tasks: map[string]TaskDefinition{
						"generate": {Name: "generate"},
						"build": {
							Name: "build", Script: []string{"make build", "echo multi\necho line\n"},
							DependsOn: []string{"generate"}, AllowFailure: true,
							Env: map[string]string{"CGO_ENABLED": "0"},
						},
					},
					OnError: &TaskDefinition{Name: OnErrorTaskName, Script: []string{"notify {{ .failedTaskName }}"}},
				},
				"fanout": {
					Name: "fanout", SourceFile: "p.yml", Concurrency: 1,
					QueueStrategy: QueuePartitionedReplace, QueuePartitionLimit: 2,
					Tasks: map[string]TaskDefinition{},
				},
			},
		},
		{
			name: "queue_limit 0 is no wait list, not unbounded",
			yaml: "pipelines:\n  release:\n    queue_limit: 0\n",
			want: map[string]*Definition{"release": {
				Name: "release", SourceFile: "p.yml", Concurrency: 1, QueueLimit: intPtr(0), QueueStrategy: QueueAppend,
				Tasks: map[string]TaskDefinition{},
			}},
		},
		{
			name: "env scalars keep their written form",
			yaml: `pipelines:
  release:
    env:
      PORT: 8080
      RATIO: 0.50
      DEBUG: true
      LEGACY: yes
      EMPTY:
      TILDE: ~
      QUOTED: "007"
      HEX: 0x1F
`,
			want: map[string]*Definition{"release": {
				Name: "release", SourceFile: "p.yml", Concurrency: 1, QueueStrategy: QueueAppend,
				Env: map[string]string{
					"PORT": "8080", "RATIO": "0.50", "DEBUG": "true", "LEGACY": "yes",
					"EMPTY": "", "TILDE": "", "QUOTED": "007", "HEX": "0x1F",
				},
				Tasks: map[string]TaskDefinition{},
			}},
		},
		{
			name: "anchors and merge keys",
			yaml: `defaults: &defaults
  concurrency: 2
  env: &env {A: "1"}
pipelines:
  one:
    <<: *defaults
    concurrency: 4
    tasks:
      t: {script: [echo], env: *env}
  two:
    <<: [*defaults, {retention_count: 3, concurrency: 9}]
`,
			want: map[string]*Definition{
				"one": {
					Name: "one", SourceFile: "p.yml", Concurrency: 4, QueueStrategy: QueueAppend,
					Env:   map[string]string{"A": "1"},
					Tasks: map[string]TaskDefinition{"t": {Name: "t", Script: []string{"echo"}, Env: map[string]string{"A": "1"}}},
				},
				"two": {
					Name: "two", SourceFile: "p.yml", Concurrency: 2, QueueStrategy: QueueAppend, RetentionCount: 3,
					Env:   map[string]string{"A": "1"},
					Tasks: map[string]TaskDefinition{},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, errs := Parse("p.yml", []byte(tt.yaml))
			if len(errs) > 0 {
				t.Fatalf("errors: %q", problemStrings(errs))
			}
			if !reflect.DeepEqual(got, tt.want) {
				for name, def := range got {
					t.Logf("got %s: %+v", name, *def)
				}
				t.Errorf("definitions differ from the wanted ones")
			}
		})
	}
}

func TestTaskOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "independent tasks sort by name",
			yaml: "zeta: {}\nalpha: {}\n",
			want: []string{"alpha", "zeta"},
		},
		{
			name: "a ready task before a later name",
			yaml: "zeta: {}\nalpha: {}\nb: {depends_on: [alpha]}\n",
			want: []string{"alpha", "b", "zeta"},
		},
		{
			name: "diamonds",
			yaml: `a: {}
b: {depends_on: [a, e]}
c: {depends_on: [d, b]}
d: {depends_on: [a]}
e: {depends_on: [a]}
f: {depends_on: [b, e]}
g: {depends_on: [c, f]}
`,
			want: []string{"a", "d", "e", "b", "c", "f", "g"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			indented := "      " + strings.ReplaceAll(strings.TrimSuffix(tt.yaml, "\n"), "\n", "\n      ") + "\n"
			defs, _, errs := Parse("p.yml", []byte("pipelines:\n  p:\n    tasks:\n"+indented))
			if len(errs) > 0 {
				t.Fatalf("errors: %q", problemStrings(errs))
			}
			if got := defs["p"].TaskOrder(); !slices.Equal(got, tt.want) {
				t.Errorf("TaskOrder() = %q, want %q", got, tt.want)
			}
		})
	}
}

const validFile = `pipelines:
  %s:
    tasks:
      build: {script: [make]}
`

func pipelineFile(name string) string { return strings.Replace(validFile, "%s", name, 1) }

func TestLoadDiscovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		files   map[string]string
		pattern string
		want    map[string]string // pipeline → source file relative to the directory
	}{
		{
			name: "root and nested, yml and yaml",
			files: map[string]string{
				"pipelines.yml":                pipelineFile("root"),
				"a/b/pipelines.yaml":           pipelineFile("nested"),
				"c/pipelines.yml":              pipelineFile("c"),
				"c/other.yml":                  pipelineFile("other"),
				"c/pipelines.yml.bak":          pipelineFile("backup"),
				"d/my-pipelines.yml":           pipelineFile("prefixed"),
				".git/pipelines.yml":           pipelineFile("git"),
				".prunner/x/pipelines.yml":     pipelineFile("data"),
				"e/.hidden/pipelines.yml":      pipelineFile("hidden"),
				"e/.pipelines.yml/placeholder": "",
			},
			want: map[string]string{"root": "pipelines.yml", "nested": "a/b/pipelines.yaml", "c": "c/pipelines.yml"},
		},
		{
			name:    "custom pattern",
			files:   map[string]string{"pipelines.yml": pipelineFile("root"), "ci/a.yml": pipelineFile("a"), "ci/sub/b.yml": pipelineFile("b")},
			pattern: "ci/*.yml",
			want:    map[string]string{"a": "ci/a.yml"},
		},
		{
			name:    "a pattern naming a hidden directory searches it",
			files:   map[string]string{".ci/pipelines.yml": pipelineFile("ci"), "pipelines.yml": pipelineFile("root")},
			pattern: ".ci/pipelines.yml",
			want:    map[string]string{"ci": ".ci/pipelines.yml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tt.files)
			set, warns, err := Load(dir, tt.pattern)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(warns) > 0 {
				t.Errorf("warnings: %q", problemStrings(warns))
			}
			got := make(map[string]string)
			for name, def := range set.Pipelines {
				rel, err := filepath.Rel(dir, def.SourceFile)
				if err != nil {
					t.Fatal(err)
				}
				got[name] = filepath.ToSlash(rel)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pipelines → files = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadFollowsDirectorySymlinks(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"real/pipelines.yml": pipelineFile("linked")})
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Skipf("symlinks not available: %v", err)
	}
	// A link back to an ancestor must not make the search loop.
	if err := os.Symlink(dir, filepath.Join(dir, "real", "loop")); err != nil {
		t.Fatal(err)
	}
	set, _, err := Load(dir, "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := set.Names(), []string{"linked"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
}

func TestLoadDuplicatePipelinesAcrossFiles(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"b/pipelines.yml": "pipelines:\n  other: {}\n  release: {}\n",
		"a/pipelines.yml": "pipelines:\n  release: {}\n",
		"pipelines.yaml":  "pipelines:\n  solo: {}\n",
	})
	set, _, err := Load(dir, "")
	if set != nil {
		t.Errorf("set = %v, want nil on error", set)
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *LoadError", err)
	}
	a, b := filepath.Join(dir, "a", "pipelines.yml"), filepath.Join(dir, "b", "pipelines.yml")
	want := []string{b + `:3: pipeline "release" is already defined in ` + a + `:2; it is also defined in ` + b}
	if got := problemStrings(le.Problems); !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

func TestLoadCollectsProblemsOfAllFiles(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"pipelines.yml":   "pipelines:\n  a:\n    concurrency: 0\n    concurency: 2\n",
		"x/pipelines.yml": "pipelines:\n  b:\n    tasks:\n      t: {depends_on: [nope]}\n",
		"y/pipelines.yml": "pipelines: [\n",
	})
	_, warns, err := Load(dir, "")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *LoadError", err)
	}
	root, x, y := filepath.Join(dir, "pipelines.yml"), filepath.Join(dir, "x", "pipelines.yml"), filepath.Join(dir, "y", "pipelines.yml")
	wantErrs := []string{
		root + `:3: pipeline "a": concurrency must be greater than 0`,
		x + `:4: pipeline "b": missing task "nope" referenced in depends_on of task "t"`,
		y + `:1: invalid YAML: did not find expected node content`,
	}
	if got := problemStrings(le.Problems); !slices.Equal(got, wantErrs) {
		t.Errorf("errors:\n got %q\nwant %q", got, wantErrs)
	}
	if got, want := err.Error(), strings.Join(wantErrs, "\n"); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	wantWarns := []string{root + `:4: unknown key "concurency" in pipeline "a" (did you mean "concurrency"?)`}
	if got := problemStrings(warns); !slices.Equal(got, wantWarns) {
		t.Errorf("warnings:\n got %q\nwant %q", got, wantWarns)
	}
}

func TestLoadWithoutFiles(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"README.md": "hi"})
	set, warns, err := Load(dir, "")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if set == nil || len(set.Pipelines) != 0 || set.Pipelines == nil {
		t.Errorf("set = %#v, want an empty set", set)
	}
	want := []string{dir + `: no file matches the pattern "**/pipelines.{yml,yaml}": no pipelines are defined`}
	if got := problemStrings(warns); !slices.Equal(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}
}

func TestLoadFailures(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"file": "x", "big/pipelines.yml": ""})
	if err := os.WriteFile(filepath.Join(dir, "big", "pipelines.yml"), make([]byte, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		pattern string
		want    string
	}{
		{"missing directory", filepath.Join(dir, "missing"), "", filepath.Join(dir, "missing") + ": cannot read the pipeline directory: no such file or directory"},
		{"not a directory", filepath.Join(dir, "file"), "", filepath.Join(dir, "file") + ": the pipeline path is not a directory"},
		{"invalid pattern", dir, "[", `invalid pattern "["`},
		{"file too large", dir, "", filepath.Join(dir, "big", "pipelines.yml") + ": the file is larger than 10 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set, _, err := Load(tt.dir, tt.pattern)
			if set != nil {
				t.Errorf("set = %v, want nil", set)
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

func TestProblemString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "pipelines.yml", Line: 12, Message: "m"}, "pipelines.yml:12: m"},
		{Problem{File: "pipelines.yml", Message: "m"}, "pipelines.yml: m"},
		{Problem{Line: 3, Message: "m"}, "line 3: m"},
		{Problem{Message: "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"pipelines:\n  p:\n    tasks:\n      a: {script: [echo]}\n      b: {depends_on: [a]}\n",
		"pipelines:\n  p:\n    concurrency: 0\n    queue_strategy: partitioned_replace\n",
		"pipelines:\n  p:\n    tasks:\n      a: {depends_on: [b]}\n      b: {depends_on: [a]}\n",
		"d: &d {concurrency: 2}\npipelines:\n  p: {<<: *d, tasks: {t: {script: [x]}}}\n",
		"pipelines: &p\n  release: *p\n",
		"pipelines: [\n",
		"a: &a [x, x]\nb: &b [*a, *a]\npipelines: {p: {tasks: {t: {script: *b}}}}\n",
		"pipelines:\n  p:\n    start_delay: 10s\n    env: {A: 1, B: ~}\n    on_error: {script: [x]}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, _, errs := Parse("pipelines.yml", data)
		if len(errs) > 0 {
			return
		}
		for name, d := range defs {
			if d.Name != name || d.Concurrency < 1 {
				t.Fatalf("accepted an invalid definition: %+v", d)
			}
			if got := len(d.TaskOrder()); got != len(d.Tasks) {
				t.Fatalf("TaskOrder of %q has %d tasks, want %d (an undetected cycle)", name, got, len(d.Tasks))
			}
		}
	})
}

// TestQueueOptionsThatCanNeverAcceptAJob goes through the combinations of the queue options: each
// that would reject every schedule request is a load error at the key to change; the others load.
func TestQueueOptionsThatCanNeverAcceptAJob(t *testing.T) {
	t.Parallel()
	const dead = `pipelines.yml:5: pipeline "p": start_delay with queue_limit: 0 can never accept a job: every delayed job waits on the wait list, and queue_limit: 0 allows none; raise queue_limit (or remove it for no limit), or remove start_delay`
	tests := []struct {
		options string // lines under the pipeline, before queue_limit's line 5 when it has one
		wantErr string
	}{
		{"queue_strategy: append\n    start_delay: 1s\n    queue_limit: 0", dead},
		{"queue_strategy: replace\n    start_delay: 1s\n    queue_limit: 0", dead},
		{"concurrency: 3\n    start_delay: 1s\n    queue_limit: 0", dead},
		{"queue_strategy: append\n    start_delay: 0s\n    queue_limit: 0", ""},
		{"queue_strategy: replace\n    concurrency: 2\n    queue_limit: 0", ""},
		{"queue_strategy: append\n    start_delay: 1s\n    queue_limit: 1", ""},
		{"queue_strategy: replace\n    start_delay: 1s\n    queue_limit: 1", ""},
		{"queue_strategy: append\n    start_delay: 1s", ""},
		{"queue_strategy: partitioned_replace\n    start_delay: 1s\n    queue_partition_limit: 1", ""},
	}
	for _, tt := range tests {
		yaml := "pipelines:\n  p:\n    " + tt.options + "\n    tasks: {a: {script: [x]}}\n"
		_, _, errs := Parse("pipelines.yml", []byte(yaml))
		var want []string
		if tt.wantErr != "" {
			want = []string{tt.wantErr}
		}
		if got := problemStrings(errs); !slices.Equal(got, want) {
			t.Errorf("%q:\n got %q\nwant %q", tt.options, got, want)
		}
	}
}
