package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prunner-dev/prunner/internal/jsonnum"
	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Times are stored as INTEGER unix nanoseconds: exact, compact, and ordered like the times
// themselves, which retention's "ended before" comparison relies on.

// intCol is the destination of an INTEGER column, NULL allowed. database/sql assigns an int64
// to *int64, *int, *bool or sql.NullInt64 through reflection (to *int even through a string
// and strconv); a Scanner of our own takes the value directly, which matters when a list
// scans hundreds of thousands of values.
type intCol struct {
	V     int64
	Valid bool
}

// Scan implements sql.Scanner.
func (c *intCol) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		c.V, c.Valid = v, true
	case nil:
		c.V, c.Valid = 0, false
	default:
		return fmt.Errorf("integer column holds %T", src)
	}
	return nil
}

// nanos returns the column value of t: NULL for the zero time.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// nanosPtr returns the column value of t: NULL for nil (or a zero time).
func nanosPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return nanos(*t)
}

// timeOf returns the UTC time of a column value, the zero time for NULL.
func timeOf(n intCol) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.V).UTC()
}

// encodeJSON returns the column value of v: NULL for a nil map or slice (so that nil round-trips
// as nil and an empty value as empty), else its JSON text.
func encodeJSON[T any](v T, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func encodeVariables(vars map[string]any) (any, error) {
	v, err := encodeJSON(vars, vars == nil)
	if err != nil {
		return nil, fmt.Errorf("encode variables: %w", err)
	}
	return v, nil
}

func encodeDependsOn(deps []string) (any, error) {
	v, err := encodeJSON(deps, deps == nil)
	if err != nil {
		return nil, fmt.Errorf("encode depends_on: %w", err)
	}
	return v, nil
}

func encodeDefinition(d *pipeline.Definition) (any, error) {
	v, err := encodeJSON(d, d == nil)
	if err != nil {
		return nil, fmt.Errorf("encode definition: %w", err)
	}
	return v, nil
}

// encodedTask holds the JSON column values of a task, encoded before a transaction.
type encodedTask struct {
	deps, attempts any
}

func encodeTask(t pipeline.Task) (encodedTask, error) {
	var e encodedTask
	var err error
	if e.deps, err = encodeDependsOn(t.DependsOn); err != nil {
		return encodedTask{}, err
	}
	attempts := t.Attempts
	if attempts != nil {
		// Times are stored in UTC like every other time, so they come back in UTC.
		attempts = make([]pipeline.TaskAttempt, len(t.Attempts))
		for i, a := range t.Attempts {
			a.Start, a.End = a.Start.UTC(), a.End.UTC()
			attempts[i] = a
		}
	}
	if e.attempts, err = encodeJSON(attempts, attempts == nil); err != nil {
		return encodedTask{}, fmt.Errorf("encode attempts: %w", err)
	}
	return e, nil
}

func decodeAttempts(col sql.NullString) ([]pipeline.TaskAttempt, error) {
	if !col.Valid || col.String == "null" {
		return nil, nil
	}
	var attempts []pipeline.TaskAttempt
	if err := json.Unmarshal([]byte(col.String), &attempts); err != nil {
		return nil, fmt.Errorf("decode attempts: %w", err)
	}
	return attempts, nil
}

// unmarshalJSON decodes text into v with numbers as json.Number, so that variables like
// 12345678901 keep their exact form instead of becoming float64.
func unmarshalJSON(text string, v any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	return dec.Decode(v)
}

func decodeVariables(col sql.NullString) (map[string]any, error) {
	if !col.Valid || col.String == "null" {
		return nil, nil
	}
	if m, ok := parseFlatObject(col.String); ok {
		return m, nil
	}
	var m map[string]any
	if err := unmarshalJSON(col.String, &m); err != nil {
		return nil, fmt.Errorf("decode variables: %w", err)
	}
	return m, nil
}

// decodeDependsOn decodes a JSON array of strings. Listing thousands of jobs decodes tens of
// thousands of these, so the common form (strings without escapes, as json.Marshal writes task
// names made of ordinary characters) is parsed directly; anything else goes through
// encoding/json.
func decodeDependsOn(col sql.NullString) ([]string, error) {
	if !col.Valid || col.String == "null" {
		return nil, nil
	}
	if deps, ok := parseSimpleStringArray(col.String); ok {
		return deps, nil
	}
	var deps []string
	if err := json.Unmarshal([]byte(col.String), &deps); err != nil {
		return nil, fmt.Errorf("decode depends_on: %w", err)
	}
	return deps, nil
}

// parseSimpleStringArray parses `["a","b"]` as json.Marshal writes it. It reports false for
// escapes, whitespace or anything unexpected, which the caller then hands to encoding/json.
func parseSimpleStringArray(s string) ([]string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || !isSimpleJSON(s) {
		return nil, false
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return []string{}, true
	}
	out := make([]string, 0, strings.Count(body, ",")+1)
	for {
		v, rest, ok := cutJSONString(body)
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if rest == "" {
			return out, true
		}
		if rest[0] != ',' {
			return nil, false
		}
		body = rest[1:]
	}
}

// isSimpleJSON reports whether s has no escapes and is valid UTF-8: then every JSON string in
// it ends at the next quote and means exactly its bytes, as encoding/json would decode it.
func isSimpleJSON(s string) bool {
	return strings.IndexByte(s, '\\') < 0 && utf8.ValidString(s)
}

// parseFlatObject parses a JSON object whose values are strings, numbers, true, false or null,
// without whitespace or escapes, as json.Marshal writes typical job variables. Numbers become
// json.Number, as with Decoder.UseNumber. It reports false for anything else (nested values,
// escapes, whitespace), which the caller then hands to encoding/json; the fast path only has
// to be exact for what it accepts.
func parseFlatObject(s string) (map[string]any, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || !isSimpleJSON(s) {
		return nil, false
	}
	body := s[1 : len(s)-1]
	m := make(map[string]any, strings.Count(body, ":"))
	for body != "" {
		key, rest, ok := cutJSONString(body)
		if !ok || rest == "" || rest[0] != ':' {
			return nil, false
		}
		rest = rest[1:]
		if rest == "" {
			return nil, false
		}
		if rest[0] == '"' {
			var v string
			if v, rest, ok = cutJSONString(rest); !ok {
				return nil, false
			}
			m[key] = v
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			switch lit := rest[:end]; lit {
			case "true":
				m[key] = true
			case "false":
				m[key] = false
			case "null":
				m[key] = nil
			default:
				if !jsonnum.Valid(lit) {
					return nil, false
				}
				m[key] = json.Number(lit)
			}
			rest = rest[end:]
		}
		if rest == "" {
			return m, true
		}
		if rest[0] != ',' || len(rest) == 1 {
			return nil, false
		}
		body = rest[1:]
	}
	return m, true
}

// cutJSONString cuts the string at the start of s (which has no escapes) and returns its
// content and what follows.
func cutJSONString(s string) (content, rest string, ok bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	content = s[1 : 1+end]
	for i := 0; i < len(content); i++ {
		if content[i] < 0x20 { // control characters must be escaped in JSON
			return "", "", false
		}
	}
	return content, s[end+2:], true
}
