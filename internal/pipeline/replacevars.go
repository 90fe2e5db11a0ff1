package pipeline

import (
	"encoding/json"
	"maps"
)

// VariableMerge is how a variable of waiting jobs that a new job replaces carries over into the
// new job (replace_variables). The values are the tokens of the definition file.
type VariableMerge string

// The merge strategies.
const (
	// MergeReplace keeps the new request's value: the default for a variable not named.
	MergeReplace VariableMerge = "replace"
	// MergeAppend concatenates the values as lists, older jobs first, then the new request's;
	// a value that is not a list counts as a one-item list, and an item that came before is
	// dropped. A debounced "reindex these documents" pipeline so processes the union of every
	// request it absorbed.
	MergeAppend VariableMerge = "append"
)

// MergeReplacedVariables returns the variables of a new job that replaces waiting jobs whose
// variables are replaced (oldest first): its own, with the values of every variable that d's
// replace_variables appends taken over from the replaced jobs. It returns vars itself when
// nothing is merged, and never modifies its arguments. Merging is associative, so a chain of
// replacements accumulates: each replaced job already holds the merge of those it replaced.
func MergeReplacedVariables(d *Definition, replaced []map[string]any, vars map[string]any) map[string]any {
	if len(replaced) == 0 || len(d.ReplaceVariables) == 0 {
		return vars
	}
	var out map[string]any
	for name, how := range d.ReplaceVariables {
		if how != MergeAppend {
			continue
		}
		var items []any
		seen := map[string]bool{}
		found := false
		add := func(v any, ok bool) {
			if !ok {
				return
			}
			found = true
			for _, item := range listItems(v) {
				key := itemKey(item)
				if !seen[key] {
					seen[key] = true
					items = append(items, item)
				}
			}
		}
		for _, old := range replaced {
			v, ok := old[name]
			add(v, ok)
		}
		v, ok := vars[name]
		add(v, ok)
		if !found {
			continue
		}
		if out == nil {
			out = maps.Clone(vars)
			if out == nil {
				out = map[string]any{}
			}
		}
		if items == nil {
			items = []any{}
		}
		out[name] = items
	}
	if out == nil {
		return vars
	}
	return out
}

// listItems returns a variable's value as a list: a list as it is, null as no items, anything
// else as one item.
func listItems(v any) []any {
	switch v := v.(type) {
	case []any:
		return v
	case nil:
		return nil
	default:
		return []any{v}
	}
}

// itemKey identifies an item for dropping duplicates: its JSON form, so that equal values of
// any type (a number, a string, an object) count once.
func itemKey(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "\x00unencodable"
	}
	return string(b)
}
