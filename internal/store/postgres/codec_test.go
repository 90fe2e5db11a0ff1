package postgres

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestParseStringArray: the fast path of depends_on either declines or decodes exactly what
// encoding/json decodes from what json.Marshal wrote.
func TestParseStringArray(t *testing.T) {
	t.Parallel()
	for _, names := range [][]string{
		{},
		{"build"},
		{"build", "test", "deploy-all_2"},
		{"a,b", "c"},
		{`quote"d`},
		{`back\slash`},
		{"<html>&"},
		{"日本語", "☃"},
		{"new\nline"},
		{""},
	} {
		b, err := json.Marshal(names)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseStringArray(string(b))
		if !ok {
			continue
		}
		if !reflect.DeepEqual(got, names) {
			t.Errorf("parseStringArray(%s) = %q, want %q", b, got, names)
		}
	}
	for _, bad := range []string{`["a"`, `["a",]`, `["a" ,"b"]`, `[a]`, `[""a""]`} {
		if got, ok := parseStringArray(bad); ok {
			var want []string
			if err := json.Unmarshal([]byte(bad), &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("parseStringArray(%s) = %q, accepted; encoding/json: %q, %v", bad, got, want, err)
			}
		}
	}
}
