package api

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prunner-dev/prunner/internal/jsonnum"
	"github.com/prunner-dev/prunner/internal/pipeline"
)

// appendJobJSON appends the JSON of j exactly as encoding/json writes newJobView(j) (a test
// holds the two to the same bytes). Lists of thousands of jobs are written with it: without
// reflection, and without building the views first, it is several times faster than
// json.Marshal and allocates nothing for a job without variables.
func appendJobJSON(b []byte, j *pipeline.Job) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, j.ID)
	b = append(b, `,"pipeline":`...)
	b = appendJSONString(b, j.Pipeline)
	b = append(b, `,"tasks":[`...)
	for i := range j.Tasks {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTaskJSON(b, &j.Tasks[i])
	}
	b = append(b, `],"completed":`...)
	b = strconv.AppendBool(b, j.Completed())
	b = append(b, `,"canceled":`...)
	b = strconv.AppendBool(b, j.Canceled())
	b = append(b, `,"errored":`...)
	b = strconv.AppendBool(b, j.Errored)
	b = append(b, `,"created":`...)
	b = appendJSONTime(b, j.Created)
	b = append(b, `,"start":`...)
	b = appendOptionalTime(b, j.Start)
	b = append(b, `,"end":`...)
	b = appendOptionalTime(b, j.End)
	if j.LastError != "" {
		b = append(b, `,"lastError":`...)
		b = appendJSONString(b, j.LastError)
	}
	if j.VariablesJSON != "" && j.VariablesJSON != "{}" {
		// The stored encoding is encoding/json's, as the view's would be.
		b = append(b, `,"variables":`...)
		b = append(b, j.VariablesJSON...)
	} else if len(j.Variables) > 0 {
		b = append(b, `,"variables":`...)
		var err error
		if b, err = appendVariablesJSON(b, j.Variables); err != nil {
			return b, err
		}
	}
	b = append(b, `,"user":`...)
	b = appendJSONString(b, j.User)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(j.Status))
	if j.QueuePartition != "" {
		b = append(b, `,"queuePartition":`...)
		b = appendJSONString(b, j.QueuePartition)
	}
	if !j.StartAfter.IsZero() {
		b = append(b, `,"startAfter":`...)
		b = appendJSONTime(b, j.StartAfter)
	}
	if j.ReplacedBy != "" {
		b = append(b, `,"replacedBy":`...)
		b = appendJSONString(b, j.ReplacedBy)
	}
	if j.Schedule != "" {
		b = append(b, `,"schedule":`...)
		b = appendJSONString(b, j.Schedule)
	}
	if j.ScheduledFor != nil {
		b = append(b, `,"scheduledFor":`...)
		b = appendJSONTime(b, *j.ScheduledFor)
	}
	if j.Node != "" {
		b = append(b, `,"node":`...)
		b = appendJSONString(b, j.Node)
	}
	return append(b, '}'), nil
}

func appendTaskJSON(b []byte, t *pipeline.Task) []byte {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, t.Name)
	if len(t.DependsOn) > 0 {
		b = append(b, `,"dependsOn":[`...)
		for i, d := range t.DependsOn {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, d)
		}
		b = append(b, ']')
	}
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(t.Status))
	b = append(b, `,"start":`...)
	b = appendOptionalTime(b, t.Start)
	b = append(b, `,"end":`...)
	b = appendOptionalTime(b, t.End)
	b = append(b, `,"skipped":`...)
	b = strconv.AppendBool(b, t.Status == pipeline.TaskSkipped)
	b = append(b, `,"exitCode":`...)
	b = strconv.AppendInt(b, int64(t.ExitCode), 10)
	b = append(b, `,"errored":`...)
	b = strconv.AppendBool(b, t.Errored)
	if t.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, t.Error)
	}
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(max(t.Attempt, 1)), 10)
	if len(t.Attempts) > 0 {
		b = append(b, `,"attempts":[`...)
		for i, a := range t.Attempts {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"number":`...)
			b = strconv.AppendInt(b, int64(a.Number), 10)
			b = append(b, `,"start":`...)
			b = appendJSONTime(b, a.Start)
			b = append(b, `,"end":`...)
			b = appendJSONTime(b, a.End)
			b = append(b, `,"exitCode":`...)
			b = strconv.AppendInt(b, int64(a.ExitCode), 10)
			if a.Error != "" {
				b = append(b, `,"error":`...)
				b = appendJSONString(b, a.Error)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONTime appends t as jsonTime encodes it: quoted RFC 3339 in UTC, no fractions.
func appendJSONTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		// Outside the four-digit years the layout has its own rules.
		b = append(b, '"')
		b = t.AppendFormat(b, apiTimeLayout)
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	return append(b, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), 'Z', '"')
}

// appendVariablesJSON appends vars as encoding/json writes the map: keys sorted, values of the
// types a schedule request decodes to (strings, json.Number, booleans, null, nested objects
// and arrays) written directly, anything else through encoding/json.
func appendVariablesJSON(b []byte, vars map[string]any) ([]byte, error) {
	var small [8]string
	keys := small[:0]
	for k := range vars {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValueJSON(b, vars[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendValueJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendJSONString(b, v), nil
	case json.Number:
		if v != "" && jsonnum.Valid(string(v)) {
			return append(b, v...), nil
		}
	case bool:
		return strconv.AppendBool(b, v), nil
	case nil:
		return append(b, "null"...), nil
	case map[string]any:
		return appendVariablesJSON(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValueJSON(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, raw...), nil
}

func appendOptionalTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendJSONTime(b, *t)
}

// appendJSONString appends s as encoding/json writes a string (HTML-safe escaping, invalid
// UTF-8 as \ufffd).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscapedASCII(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
