package script

import (
	"encoding/json"
	"maps"
	"testing"
)

func TestRender(t *testing.T) {
	t.Parallel()
	data := map[string]any{
		"name":   "world",
		"empty":  "",
		"nil":    nil,
		"zero":   json.Number("0"),
		"false":  false,
		"list":   []any{},
		"big":    json.Number("12345678901"),
		"quote":  "it's",
		JobIDKey: "job-1",
	}
	tests := []struct {
		name, line, want string
	}{
		{"plain", "echo hello", "echo hello"},
		{"variable", "echo {{ .name }}", "echo world"},
		{"default piped, set", `{{ .name | default "x" }}`, "world"},
		{"default piped, empty string", `{{ .empty | default "x" }}`, "x"},
		{"default piped, nil", `{{ .nil | default "x" }}`, "x"},
		{"default piped, empty list", `{{ .list | default "x" }}`, "x"},
		{"default called, set", `{{ default "x" .name }}`, "world"},
		{"default called, empty", `{{ default "x" .empty }}`, "x"},
		{"default keeps zero", `{{ .zero | default "x" }}`, "0"},
		{"default keeps false", `{{ .false | default "x" }}`, "false"},
		{"default with index covers a missing key", `{{ index . "missing" | default "x" }}`, "x"},
		{"json number keeps its form", "{{ .big }}", "12345678901"},
		{"job id", "{{ .__jobID }}", "job-1"},
		{"shellquote", "{{ shellquote .name }}", "'world'"},
		{"shellquote piped", "{{ .quote | shellquote }}", `'it'\''s'`},
		{"shellquote empty", "{{ shellquote .empty }}", "''"},
		{"shellquote nil", "{{ shellquote .nil }}", "''"},
		{"shellquote number", "{{ shellquote .big }}", "'12345678901'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tt.line, data)
			if err != nil {
				t.Fatalf("Render(%q): %v", tt.line, err)
			}
			if got != tt.want {
				t.Errorf("Render(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line, want string
	}{
		{"missing key", "echo {{.missing}}", `template: line:1:7: executing "line" at <.missing>: map has no entry for key "missing"`},
		{"parse error", "echo {{ .x", `template: line:1: unclosed action`},
		{"unknown function", "{{ nope .x }}", `template: line:1: function "nope" not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tt.line, map[string]any{"x": "y"})
			if err == nil {
				t.Fatalf("Render(%q) = %q, want error %q", tt.line, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Render(%q) error = %q, want %q", tt.line, err, tt.want)
			}
		})
	}
}

func TestPrepareData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		variables map[string]any
		extra     map[string]any
		want      map[string]any
	}{
		{
			name:      "nil variables",
			variables: nil,
			want:      map[string]any{JobIDKey: "job-1"},
		},
		{
			name:      "variable templates render against the variables",
			variables: map[string]any{"a": "{{ .b }}!", "b": "bee", "c": "{{ .__jobID }}/{{ .n }}", "n": json.Number("12345678901")},
			want:      map[string]any{"a": "bee!", "b": "bee", "c": "job-1/12345678901", "n": json.Number("12345678901"), JobIDKey: "job-1"},
		},
		{
			name:      "variable templates render once, against the raw variables",
			variables: map[string]any{"a": "{{ .b }}", "b": "{{ .c }}", "c": "sea"},
			want:      map[string]any{"a": "{{ .c }}", "b": "sea", "c": "sea", JobIDKey: "job-1"},
		},
		{
			name:      "a failing variable template keeps its raw text",
			variables: map[string]any{"a": "{{ .missing }}", "b": "{{ broken", "c": "ok"},
			want:      map[string]any{"a": "{{ .missing }}", "b": "{{ broken", "c": "ok", JobIDKey: "job-1"},
		},
		{
			name:      "numbers keep their form",
			variables: map[string]any{"n": json.Number("12345678901"), "f": float64(12345678901), "g": 0.5, "t": true},
			want:      map[string]any{"n": json.Number("12345678901"), "f": json.Number("12345678901"), "g": json.Number("0.5"), "t": true, JobIDKey: "job-1"},
		},
		{
			name:      "extra wins",
			variables: map[string]any{"failedTaskName": "mine", "x": "{{ .failedTaskName }}"},
			extra:     map[string]any{"failedTaskName": "build", "failedTaskExitCode": 3, JobIDKey: "other"},
			want:      map[string]any{"failedTaskName": "build", "failedTaskExitCode": 3, "x": "mine", JobIDKey: "other"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := PrepareData(tt.variables, "job-1", tt.extra)
			if !maps.Equal(got, tt.want) {
				t.Errorf("PrepareData() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestPrepareDataDoesNotModifyVariables(t *testing.T) {
	t.Parallel()
	variables := map[string]any{"a": "{{ .b }}", "b": "bee", "f": float64(1)}
	PrepareData(variables, "job-1", nil)
	want := map[string]any{"a": "{{ .b }}", "b": "bee", "f": float64(1)}
	if !maps.Equal(variables, want) {
		t.Errorf("variables = %#v after PrepareData, want %#v", variables, want)
	}
}

func TestPrepareDataRendersInLines(t *testing.T) {
	t.Parallel()
	data := PrepareData(map[string]any{"greeting": "hello {{ .name }}", "name": "bee", "count": json.Number("12345678901")}, "job-7", nil)
	got, err := Render("echo {{ .greeting }} {{ .count }} {{ .__jobID }}", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := "echo hello bee 12345678901 job-7"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDefaultCoversMissingKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		data map[string]any
		want string
	}{
		{`{{ .rev | default "main" }}`, map[string]any{}, "main"},
		{`{{ default "main" .rev }}`, nil, "main"},
		{`{{ shellquote (.v | default "latest") }}`, map[string]any{}, "'latest'"},
		{`{{ if .x }}{{ .x | default "a" }}{{ end }}{{ .y | default "b" }}`, map[string]any{"x": "set"}, "setb"},
		{`{{ .rev | default "main" }}`, map[string]any{"rev": "v1"}, "v1"},
	}
	for _, tt := range tests {
		got, err := Render(tt.line, tt.data)
		if err != nil || got != tt.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
	if _, err := Render(`{{ .rev }} {{ .other | default "x" }}`, map[string]any{}); err == nil {
		t.Errorf("a missing key outside a default pipe rendered without error")
	}
}
