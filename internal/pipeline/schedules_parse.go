package pipeline

// This file reads a pipeline's schedules: key, a list of mappings (see ScheduleSpec). Unknown
// keys in a schedule are errors, not warnings as elsewhere in the file: a misspelt timezone or
// missed would silently change when jobs start.

import (
	"encoding/json"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// scheduleKeys are the keys of one schedule.
var scheduleKeys = []string{"name", "cron", "timezone", "variables", "queue_partition", "jitter", "missed", "catchup_window", "overlap"}

// parsedSchedule is a schedule with where its settings were written.
type parsedSchedule struct {
	spec ScheduleSpec
	// keys maps each setting that was given to its line.
	keys map[string]int
	// invalid is true when a setting was already reported as malformed.
	invalid bool
}

// parseSchedules reads the schedules: list of a pipeline. They are checked by checkSchedules
// once the whole pipeline is read (queue_partition depends on queue_strategy).
func (p *fileParser) parseSchedules(pp *parsedPipeline, n *yaml.Node, where string) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.MappingNode {
			hint = " (write each schedule as a list item: \"- name: nightly\")"
		}
		p.errorf(n, "%s: schedules must be a list of schedules, got %s%s", where, describe(n), hint)
		return
	}
	for i, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.MappingNode {
			p.errorf(item, "%s: schedule %d must be a mapping with name and cron, got %s", where, i+1, describe(item))
			continue
		}
		pp.schedules = append(pp.schedules, p.parseSchedule(pp.def.Name, item, i+1, where))
	}
}

// parseSchedule reads one schedule (the index-th of the list, for messages).
func (p *fileParser) parseSchedule(pipelineName string, n *yaml.Node, index int, where string) *parsedSchedule {
	ps := &parsedSchedule{
		spec: ScheduleSpec{Pipeline: pipelineName, Source: SourceFile, SourceFile: p.file, SourceLine: lineOf(n)},
		keys: make(map[string]int),
	}
	s := &ps.spec
	where = fmt.Sprintf("%s: schedule %d", where, index)
	for _, e := range p.entries(n, where) {
		if !isScheduleKey(e.name) {
			p.unknownScheduleKey(e, where)
			ps.invalid = true
			continue
		}
		if isNull(e.value) { // A setting without a value is treated as absent.
			continue
		}
		ps.keys[e.name] = lineOf(e.key)
		ok := true
		switch e.name {
		case "name":
			s.Name, ok = p.stringValue(e.value, where, e.name)
		case "cron":
			s.Cron, ok = p.stringValue(e.value, where, e.name)
		case "timezone":
			s.Timezone, ok = p.stringValue(e.value, where, e.name)
		case "queue_partition":
			s.QueuePartition, ok = p.stringValue(e.value, where, e.name)
		case "jitter":
			s.Jitter, ok = p.durationValue(e.value, where, e.name)
		case "catchup_window":
			s.CatchupWindow, ok = p.durationValue(e.value, where, e.name)
		case "missed":
			var v string
			v, ok = p.stringValue(e.value, where, e.name)
			s.Missed = MissedPolicy(v)
		case "overlap":
			var v string
			v, ok = p.stringValue(e.value, where, e.name)
			s.Overlap = OverlapPolicy(v)
		case "variables":
			s.Variables, ok = p.scheduleVariables(e.value, where)
		}
		ps.invalid = ps.invalid || !ok
	}
	return ps
}

func isScheduleKey(name string) bool {
	for _, k := range scheduleKeys {
		if k == name {
			return true
		}
	}
	return false
}

// unknownScheduleKey reports a key a schedule does not have, as an error, with the key it is
// probably a typo of.
func (p *fileParser) unknownScheduleKey(e entry, where string) {
	msg := fmt.Sprintf("%s: unknown key %q", where, e.name)
	if s := suggest(e.name, scheduleKeys); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else {
		msg += " (a schedule has name, cron, timezone, variables, queue_partition, jitter, missed, catchup_window and overlap)"
	}
	p.errorAt(lineOf(e.key), "%s", msg)
}

// checkSchedules validates the schedules of a parsed pipeline with ScheduleSpec.Check, reports
// each problem at the line of the setting it is about, refuses a name used twice, and fills
// Definition.Schedules.
func (p *fileParser) checkSchedules(pp *parsedPipeline) {
	d := pp.def
	names := make(map[string]int)
	for _, ps := range pp.schedules {
		s := &ps.spec
		if first, dup := names[s.Name]; dup && s.Name != "" {
			p.errorAt(lineOrItem(ps, "name"), "pipeline %q: schedule %q is declared twice (first at line %d); names must be unique within a pipeline", d.Name, s.Name, first)
			continue
		}
		names[s.Name] = lineOrItem(ps, "name")
		if ps.invalid {
			continue // already reported
		}
		if err := s.Check(d); err != nil {
			e := AsScheduleError(err)
			p.errorAt(lineOrItem(ps, e.Field), "pipeline %q: %s", d.Name, scheduleLabel(s)+e.Message)
			continue
		}
		d.Schedules = append(d.Schedules, *s)
	}
}

// lineOrItem is the line of a schedule's setting, or of the schedule when it was not given.
func lineOrItem(ps *parsedSchedule, key string) int {
	if line, ok := ps.keys[key]; ok {
		return line
	}
	return ps.spec.SourceLine
}

// scheduleLabel names a schedule in a message: `schedule "full": `, or nothing without a name
// (the message then says that the name is missing).
func scheduleLabel(s *ScheduleSpec) string {
	if s.Name == "" {
		return "schedule: "
	}
	return fmt.Sprintf("schedule %q: ", s.Name)
}

// scheduleVariables reads a schedule's variables: a mapping whose values become what a JSON
// request body gives (see ScheduleRequest.Variables): strings, json.Number for numbers (as
// written when that is valid JSON, so 1.50 stays 1.50), booleans, nil, and nested maps and
// lists of those. Other scalars (timestamps, …) keep the text they were written as.
func (p *fileParser) scheduleVariables(n *yaml.Node, where string) (map[string]any, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: variables must be a mapping of variable names to values, got %s", where, describe(n))
		return nil, false
	}
	v, ok := p.jsonValue(n, where+": variables")
	m, _ := v.(map[string]any)
	if len(m) == 0 {
		return nil, ok
	}
	return m, ok
}

// jsonValue turns a YAML node into the value JSON decoding (with UseNumber) would give.
func (p *fileParser) jsonValue(n *yaml.Node, where string) (any, bool) {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any)
		ok := true
		for _, e := range p.entries(n, where) {
			v, valid := p.jsonValue(e.value, where+"."+e.name)
			m[e.name], ok = v, ok && valid
		}
		return m, ok
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		ok := true
		for i, item := range n.Content {
			v, valid := p.jsonValue(item, fmt.Sprintf("%s[%d]", where, i))
			list, ok = append(list, v), ok && valid
		}
		return list, ok
	case yaml.ScalarNode:
		return p.jsonScalar(n, where)
	}
	p.errorf(n, "%s: unsupported value %s", where, describe(n))
	return nil, false
}

func (p *fileParser) jsonScalar(n *yaml.Node, where string) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b, true
		}
	case "!!int", "!!float":
		if num, ok := jsonNumber(n); ok {
			return num, true
		}
		p.errorf(n, "%s: %s is not a number JSON can hold; quote it to pass it as a string", where, n.Value)
		return nil, false
	}
	return n.Value, true
}

// jsonNumber returns a YAML number as json.Number: as written when that is valid JSON ("42",
// "1.50", "1e3"), else in Go's decimal form ("0x1F" gives 31, "1_000" 1000). Infinities and
// NaN have no JSON form.
func jsonNumber(n *yaml.Node) (json.Number, bool) {
	if isJSONNumber(n.Value) {
		return json.Number(n.Value), true
	}
	var i int64
	if n.Decode(&i) == nil {
		return json.Number(strconv.FormatInt(i, 10)), true
	}
	var u uint64
	if n.Decode(&u) == nil {
		return json.Number(strconv.FormatUint(u, 10)), true
	}
	var f float64
	if n.Decode(&f) == nil {
		if s := strconv.FormatFloat(f, 'g', -1, 64); isJSONNumber(s) {
			return json.Number(s), true
		}
	}
	return "", false
}

// isJSONNumber reports whether s is a number as JSON writes it.
func isJSONNumber(s string) bool {
	if s == "" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		return false
	}
	var v any
	return json.Unmarshal([]byte(s), &v) == nil
}
