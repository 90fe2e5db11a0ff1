package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Times are bigint unix nanoseconds; JSON values are text (see migrations/0001_init.sql). A
// column value of nil is NULL.

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

// timeOf returns the UTC time of a scanned nullable column, the zero time for NULL.
func timeOf(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// timePtr returns the UTC time of a scanned nullable column, nil for NULL.
func timePtr(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := time.Unix(0, *n).UTC()
	return &t
}

// encodeJSON returns the column value of v: NULL for a nil map or slice (so that nil round-trips
// as nil and an empty value as empty), else its JSON text.
func encodeJSON(v any, isNil bool) (any, error) {
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
	if e.deps, err = encodeJSON(t.DependsOn, t.DependsOn == nil); err != nil {
		return encodedTask{}, fmt.Errorf("encode depends_on: %w", err)
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

// unmarshalJSON decodes text into v with numbers as json.Number, so that variables like
// 12345678901 keep their exact form instead of becoming float64.
func unmarshalJSON(text string, v any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// Truncated text in a column: not the lost connection that an EOF error of a store
		// call means (see unreachable).
		return fmt.Errorf("truncated JSON (%d bytes)", len(text))
	}
	return err
}

// decodeVariables decodes a variables column; NULL is nil.
func decodeVariables(col *string) (map[string]any, error) {
	if col == nil || *col == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := unmarshalJSON(*col, &m); err != nil {
		return nil, fmt.Errorf("decode variables: %w", err)
	}
	return m, nil
}

func decodeDependsOn(col *string) ([]string, error) {
	if col == nil || *col == "null" {
		return nil, nil
	}
	if deps, ok := parseStringArray(*col); ok {
		return deps, nil
	}
	var deps []string
	if err := json.Unmarshal([]byte(*col), &deps); err != nil {
		return nil, fmt.Errorf("decode depends_on: %w", err)
	}
	return deps, nil
}

func decodeAttempts(col *string) ([]pipeline.TaskAttempt, error) {
	if col == nil || *col == "null" {
		return nil, nil
	}
	var attempts []pipeline.TaskAttempt
	if err := json.Unmarshal([]byte(*col), &attempts); err != nil {
		return nil, fmt.Errorf("decode attempts: %w", err)
	}
	return attempts, nil
}

// parseStringArray parses `["a","b"]` as json.Marshal writes an array of plain names: no
// backslash (so no escapes), no quote or comma inside a name, valid UTF-8. Then every string
// means exactly its bytes, as encoding/json would decode it. It reports false for anything else,
// which the caller hands to encoding/json: lists decode tens of thousands of these.
func parseStringArray(s string) ([]string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' || strings.IndexByte(s, '\\') >= 0 || !utf8.ValidString(s) {
		return nil, false
	}
	body := s[1 : len(s)-1]
	if body == "" {
		return []string{}, true
	}
	out := make([]string, 0, strings.Count(body, ",")+1)
	for part := range strings.SplitSeq(body, ",") {
		if len(part) < 2 || part[0] != '"' || part[len(part)-1] != '"' {
			return nil, false
		}
		name := part[1 : len(part)-1]
		if strings.IndexByte(name, '"') >= 0 {
			return nil, false
		}
		out = append(out, name)
	}
	return out, true
}
