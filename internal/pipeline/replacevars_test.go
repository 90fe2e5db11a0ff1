package pipeline

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func TestMergeReplacedVariables(t *testing.T) {
	t.Parallel()
	def := &Definition{ReplaceVariables: map[string]VariableMerge{"documents": MergeAppend, "mode": MergeReplace}}
	tests := []struct {
		name     string
		replaced []map[string]any
		vars     map[string]any
		want     map[string]any
	}{
		{"lists concatenated, older first, duplicates dropped",
			[]map[string]any{{"documents": []any{"a", "b"}}, {"documents": []any{"b", "c"}}},
			map[string]any{"documents": []any{"c", "d"}},
			map[string]any{"documents": []any{"a", "b", "c", "d"}}},
		{"a scalar counts as a one-item list",
			[]map[string]any{{"documents": "a"}, {"documents": json.Number("7")}},
			map[string]any{"documents": []any{"a", json.Number("7"), "z"}},
			map[string]any{"documents": []any{"a", json.Number("7"), "z"}}},
		{"variables not named keep the newest request's value",
			[]map[string]any{{"documents": []any{"a"}, "mode": "full", "other": 1}},
			map[string]any{"documents": []any{"b"}, "mode": "quick"},
			map[string]any{"documents": []any{"a", "b"}, "mode": "quick"}},
		{"the new request without the variable still gets the older values",
			[]map[string]any{{"documents": []any{"a"}}},
			map[string]any{"mode": "quick"},
			map[string]any{"documents": []any{"a"}, "mode": "quick"}},
		{"nobody has the variable: nothing added",
			[]map[string]any{{"mode": "full"}},
			map[string]any{"mode": "quick"},
			map[string]any{"mode": "quick"}},
		{"objects compare by value",
			[]map[string]any{{"documents": []any{map[string]any{"id": 1.0}}}},
			map[string]any{"documents": []any{map[string]any{"id": 1.0}, map[string]any{"id": 2.0}}},
			map[string]any{"documents": []any{map[string]any{"id": 1.0}, map[string]any{"id": 2.0}}}},
		{"nothing replaced", nil, map[string]any{"documents": "x"}, map[string]any{"documents": "x"}},
	}
	for _, tt := range tests {
		vars := cloneVars(tt.vars)
		got := MergeReplacedVariables(def, tt.replaced, vars)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %#v\nwant %#v", tt.name, got, tt.want)
		}
		if !reflect.DeepEqual(vars, tt.vars) {
			t.Errorf("%s: the new request's variables were modified: %#v", tt.name, vars)
		}
	}
}

func TestMergeReplacedVariablesAccumulatesAlongAChain(t *testing.T) {
	t.Parallel()
	def := &Definition{ReplaceVariables: map[string]VariableMerge{"documents": MergeAppend}}
	// Three requests, each replacing the one waiting: the last job holds all documents.
	var waiting map[string]any
	for _, docs := range [][]any{{"1"}, {"2", "1"}, {"3"}} {
		vars := map[string]any{"documents": docs}
		if waiting != nil {
			vars = MergeReplacedVariables(def, []map[string]any{waiting}, vars)
		}
		waiting = vars
	}
	if got := waiting["documents"]; !reflect.DeepEqual(got, []any{"1", "2", "3"}) {
		t.Errorf("after three replacements documents = %v, want [1 2 3]", got)
	}
}

func TestParseReplaceVariables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		yaml     string
		want     map[string]VariableMerge
		wantErrs []string
	}{
		{"    queue_strategy: replace\n    replace_variables: {documents: append, mode: replace}\n",
			map[string]VariableMerge{"documents": MergeAppend, "mode": MergeReplace}, nil},
		{"    queue_strategy: partitioned_replace\n    queue_partition_limit: 1\n    replace_variables: {documents: append}\n",
			map[string]VariableMerge{"documents": MergeAppend}, nil},
		{"    queue_strategy: replace\n    replace_variables: {documents: union}\n", nil,
			[]string{`pipelines.yml:4: pipeline "p": replace_variables.documents must be append or replace, got "union"`}},
		{"    queue_strategy: replace\n    replace_variables: [documents]\n", nil,
			[]string{`pipelines.yml:4: pipeline "p": replace_variables must be a mapping of variable names to append or replace, got a list`}},
		{"    replace_variables: {documents: append}\n", nil,
			[]string{`pipelines.yml:3: pipeline "p": replace_variables is only used if queue_strategy=replace|partitioned_replace: with append no job replaces another`}},
	}
	for _, tt := range tests {
		defs, _, errs := Parse("pipelines.yml", []byte("pipelines:\n  p:\n"+tt.yaml+"    tasks: {a: {script: [x]}}\n"))
		if got := problemStrings(errs); !slices.Equal(got, tt.wantErrs) {
			t.Errorf("%q: errors\n got %q\nwant %q", tt.yaml, got, tt.wantErrs)
			continue
		}
		if tt.wantErrs == nil && !reflect.DeepEqual(defs["p"].ReplaceVariables, tt.want) {
			t.Errorf("%q: ReplaceVariables = %v, want %v", tt.yaml, defs["p"].ReplaceVariables, tt.want)
		}
	}
}

func cloneVars(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestParseInterruptRunning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		yaml    string
		want    bool
		wantErr string
	}{
		{"    queue_strategy: replace\n    interrupt_running: true\n", true, ""},
		{"    queue_strategy: partitioned_replace\n    queue_partition_limit: 1\n    interrupt_running: true\n", true, ""},
		{"    queue_strategy: replace\n    interrupt_running: false\n", false, ""},
		{"    interrupt_running: true\n", false, `pipelines.yml:3: pipeline "p": interrupt_running is only used if queue_strategy=replace|partitioned_replace: with append a new job waits its turn`},
	}
	for _, tt := range tests {
		defs, _, errs := Parse("pipelines.yml", []byte("pipelines:\n  p:\n"+tt.yaml+"    tasks: {a: {script: [x]}}\n"))
		var want []string
		if tt.wantErr != "" {
			want = []string{tt.wantErr}
		}
		if got := problemStrings(errs); !slices.Equal(got, want) {
			t.Errorf("%q: errors\n got %q\nwant %q", tt.yaml, got, want)
			continue
		}
		if tt.wantErr == "" && defs["p"].InterruptRunning != tt.want {
			t.Errorf("%q: InterruptRunning = %v, want %v", tt.yaml, defs["p"].InterruptRunning, tt.want)
		}
	}
}
