package view

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// Duration formats d compactly for people: "850ms", "12.3s", "4m 05s", "2h 03m".
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd %02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// span is the duration from start to end, or to now while end is nil; "" when not started.
func span(start, end *time.Time, now time.Time) string {
	if start == nil {
		return ""
	}
	if end == nil {
		return Duration(now.Sub(*start))
	}
	return Duration(end.Sub(*start))
}

// At formats t for people, in UTC: the time of day for today, else the date too.
func At(t time.Time, now time.Time) Time {
	if t.IsZero() {
		return Time{}
	}
	t = t.UTC()
	iso := t.Format(time.RFC3339)
	full := t.Format("2006-01-02 15:04:05 UTC")
	y1, m1, d1 := t.Date()
	y2, m2, d2 := now.UTC().Date()
	text := t.Format("Jan 2 15:04:05")
	if y1 == y2 && m1 == m2 && d1 == d2 {
		text = t.Format("15:04:05")
	} else if y1 != y2 {
		text = t.Format("2006-01-02 15:04")
	}
	return Time{ISO: iso, Text: text, Title: full}
}

// AtFull formats t with its date, in UTC.
func AtFull(t *time.Time) Time {
	if t == nil || t.IsZero() {
		return Time{}
	}
	u := t.UTC()
	full := u.Format("2006-01-02 15:04:05 UTC")
	return Time{ISO: u.Format(time.RFC3339), Text: full, Title: full}
}

// JobStatus returns how a job status is shown.
func JobStatus(s pipeline.JobStatus) Status {
	if s == "" {
		return Status{Label: "unknown", Class: "st-unknown"}
	}
	return Status{Label: string(s), Class: "st-" + string(s)}
}

// TaskStatus returns how a task status is shown.
func TaskStatus(s pipeline.TaskStatus) Status {
	if s == "" {
		return Status{Label: "unknown", Class: "st-unknown"}
	}
	return Status{Label: string(s), Class: "st-" + string(s)}
}

// ShortID is the first block of a UUID, enough to tell jobs apart in a list.
func ShortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Variables returns a job's variables sorted by key, values as JSON-ish text (strings bare).
func Variables(vars map[string]any) []KV {
	kvs := make([]KV, 0, len(vars))
	for k, v := range vars {
		kvs = append(kvs, KV{Key: k, Value: ValueText(v)})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
	return kvs
}

// ValueText shows a variable's value: strings as they are, everything else as JSON.
func ValueText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return "null"
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

// VariablesSummary is a one-line summary of variables ("branch=main build=42"), cut at max runes.
func VariablesSummary(vars map[string]any, max int) string {
	var b strings.Builder
	for i, kv := range Variables(vars) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv.Key)
		b.WriteByte('=')
		b.WriteString(kv.Value)
		if b.Len() > max*4 {
			break
		}
	}
	return Truncate(b.String(), max)
}

// Truncate cuts s to at most max runes, ending with "…" when it was cut.
func Truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}
