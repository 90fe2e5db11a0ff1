// Package script renders a task's script lines and runs them in one shell session, every process
// the session starts in a process group of its own that the task tracks and kills.
package script

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
)

// JobIDKey is the template data key that holds the job's ID (`{{ .__jobID }}`).
const JobIDKey = "__jobID"

// funcs are the template functions available in script lines and variables.
var funcs = template.FuncMap{
	"default":    defaultValue,
	"shellquote": ShellQuote,
}

// Render renders one script line with text/template. A key that is missing from data is an
// error (missingkey=error); the error is text/template's own, e.g.
// `template: line:1:7: executing "line" at <.missing>: map has no entry for key "missing"`.
//
// Besides the builtins, lines may call `default` (`{{ .x | default "fallback" }}` or
// `{{ default "fallback" .x }}`: the value unless it is nil, an empty string or an empty
// collection) and `shellquote` (`{{ shellquote .x }}`: the value as one single-quoted POSIX shell
// word, see [ShellQuote]). Because of missingkey=error, `default` covers keys that are present but
// empty; `{{ index . "x" | default "fallback" }}` also covers a missing key.
func Render(line string, data map[string]any) (string, error) {
	tmpl, err := template.New("line").Option("missingkey=error").Funcs(funcs).Parse(line)
	if err != nil {
		return "", err
	}
	// A key that is only read in a pipe with `default` may be missing: give it a nil value so
	// that missingkey=error does not fire before default can supply the fallback.
	if keys := defaultedKeys(tmpl.Tree.Root, nil); len(keys) > 0 {
		var filled map[string]any
		for _, k := range keys {
			if _, ok := data[k]; !ok {
				if filled == nil {
					filled = maps.Clone(data)
					if filled == nil {
						filled = map[string]any{}
					}
				}
				filled[k] = nil
			}
		}
		if filled != nil {
			data = filled
		}
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// PrepareData builds the template data of a job's script lines: the job's variables plus
// [JobIDKey], then extra (may be nil; on_error's failedTaskName etc.), which wins over both.
//
// A string variable is itself a template, rendered once against the raw variables and the job ID
// ({"a": "{{ .b }}!", "b": "bee"} gives a = "bee!"); a variable whose template fails keeps its raw
// text, so the failure shows where a line uses it instead of breaking every line of the job.
// Numbers keep the form they had in the request: json.Number renders as written, and a float64
// (from a decoder without UseNumber) is turned into its shortest decimal form, so
// 12345678901 never renders as 1.2345678901e+10.
func PrepareData(variables map[string]any, jobID string, extra map[string]any) map[string]any {
	raw := make(map[string]any, len(variables)+1)
	for k, v := range variables {
		if f, ok := v.(float64); ok {
			v = json.Number(formatFloat(f))
		}
		raw[k] = v
	}
	raw[JobIDKey] = jobID

	data := make(map[string]any, len(raw)+len(extra))
	for k, v := range raw {
		if s, ok := v.(string); ok && strings.Contains(s, "{{") {
			if rendered, err := Render(s, raw); err == nil {
				v = rendered
			}
		}
		data[k] = v
	}
	maps.Copy(data, extra)
	return data
}

// ShellQuote returns v (formatted with fmt.Sprint; nil is the empty string) as exactly one POSIX
// shell word in single quotes. An embedded single quote closes the quotes, is written escaped,
// and reopens them:
//
//	it's  ->  'it'\''s'
//
// Inside single quotes a shell expands nothing, so `$(cmd)`, backticks, `;` and newlines reach
// the command as plain text.
func ShellQuote(v any) string {
	var s string
	if v != nil {
		s = fmt.Sprint(v)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// formatFloat formats f like JSON writes it: plain decimal digits below 1e21, exponent above.
func formatFloat(f float64) string {
	if math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// defaultValue implements the `default` template function: value unless it is empty.
func defaultValue(def, value any) any {
	if isEmpty(value) {
		return def
	}
	return value
}

// isEmpty reports whether v counts as not set for `default`: nil (also a nil pointer or
// interface), an empty string, or an empty slice, array or map. false and 0 are values.
func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	default:
		return false
	}
}

// defaultedKeys returns the top-level keys (`.x`) read in pipes that call `default`.
func defaultedKeys(n parse.Node, keys []string) []string {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return keys
		}
		for _, c := range n.Nodes {
			keys = defaultedKeys(c, keys)
		}
	case *parse.ActionNode:
		keys = pipeKeys(n.Pipe, keys)
	case *parse.IfNode:
		keys = branchKeys(&n.BranchNode, keys)
	case *parse.RangeNode:
		keys = branchKeys(&n.BranchNode, keys)
	case *parse.WithNode:
		keys = branchKeys(&n.BranchNode, keys)
	}
	return keys
}

func branchKeys(b *parse.BranchNode, keys []string) []string {
	keys = pipeKeys(b.Pipe, keys)
	keys = defaultedKeys(b.List, keys)
	if b.ElseList != nil {
		keys = defaultedKeys(b.ElseList, keys)
	}
	return keys
}

func pipeKeys(p *parse.PipeNode, keys []string) []string {
	if p == nil {
		return keys
	}
	usesDefault := false
	for _, cmd := range p.Cmds {
		if len(cmd.Args) > 0 {
			if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok && id.Ident == "default" {
				usesDefault = true
			}
		}
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			switch a := arg.(type) {
			case *parse.FieldNode:
				if usesDefault && len(a.Ident) == 1 {
					keys = append(keys, a.Ident[0])
				}
			case *parse.PipeNode:
				keys = pipeKeys(a, keys)
			}
		}
	}
	return keys
}
