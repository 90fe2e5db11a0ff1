package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Parse reads the definition file called file (the name is used in problems and as SourceFile)
// from data and validates its pipelines on their own; checks across files (the same pipeline name
// in two files) are Load's. When errs is not empty, defs is nil.
func Parse(file string, data []byte) (defs map[string]*Definition, warnings, errs []Problem) {
	p := parse(file, data)
	warnings, errs = sortProblems(p.warnings), sortProblems(p.errors)
	if len(errs) > 0 {
		return nil, warnings, errs
	}
	defs = make(map[string]*Definition, len(p.pipelines))
	for _, pp := range p.pipelines {
		defs[pp.def.Name] = pp.def
	}
	return defs, warnings, nil
}

// Keys known at each level of a definition file, for unknown-key warnings and their suggestions.
var (
	topLevelKeys = []string{"pipelines"}
	pipelineKeys = []string{
		"concurrency", "queue_limit", "queue_strategy", "queue_partition_limit", "start_delay", "replace_variables", "interrupt_running",
		"continue_running_tasks_after_failure", "retention_period", "retention_count", "timeout", "env", "tasks",
		"on_error", "schedules",
	}
	taskKeys    = []string{"script", "depends_on", "allow_failure", "env", "timeout", "retry"}
	onErrorKeys = []string{"script", "env", "timeout"}
	retryKeys   = []string{"attempts", "delay", "backoff", "max_delay"}
)

// fileParser turns one definition file into pipelines, collecting problems instead of stopping at
// the first one.
type fileParser struct {
	file      string
	warnings  []Problem
	errors    []Problem
	pipelines []*parsedPipeline
}

// parsedPipeline is a definition together with where its parts were written, for validation
// messages.
type parsedPipeline struct {
	def *Definition
	// line is the line of the pipeline's name.
	line int
	// keys maps each pipeline-level setting that was given (not null) to its line.
	keys map[string]int
	// invalid holds the settings whose value had the wrong type (already reported).
	invalid map[string]bool
	// taskOrder is the tasks' names in the order they were written.
	taskOrder []string
	// taskLines maps each task to the line of its name, dependsOnLines to the line of its depends_on.
	taskLines      map[string]int
	dependsOnLines map[string]int
	// schedules are the pipeline's schedules as read, checked after the whole pipeline is read.
	schedules []*parsedSchedule
}

func (p *fileParser) errorf(n *yaml.Node, format string, args ...any) {
	p.errorAt(lineOf(n), format, args...)
}

func (p *fileParser) errorAt(line int, format string, args ...any) {
	p.errors = append(p.errors, Problem{File: p.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (p *fileParser) warnf(n *yaml.Node, format string, args ...any) {
	p.warnAt(lineOf(n), format, args...)
}

func (p *fileParser) warnAt(line int, format string, args ...any) {
	p.warnings = append(p.warnings, Problem{File: p.file, Line: line, Message: fmt.Sprintf(format, args...)})
}

// parse reads and validates one file. It never panics, whatever data holds.
func parse(file string, data []byte) *fileParser {
	p := &fileParser{file: file}
	if len(data) > MaxFileSize {
		p.errorAt(0, "%v", errTooLarge)
		return p
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decode(dec, &doc); err != nil {
		if !errors.Is(err, io.EOF) { // io.EOF: empty, or only comments
			p.yamlError(err)
		}
		return p
	}
	var next yaml.Node
	if err := decode(dec, &next); err == nil {
		p.warnf(&next, "only the first YAML document of the file is read; the documents after it are ignored")
	} else if !errors.Is(err, io.EOF) {
		line, msg := splitYAMLError(err)
		p.warnAt(line, "only the first YAML document of the file is read; what follows it is ignored (invalid YAML: %s)", msg)
	}
	if line, err := checkAliases(&doc); err != nil {
		p.errorAt(line, "%v", err)
		return p
	}
	if len(doc.Content) == 0 {
		return p
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return p
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "the file must be a mapping with a \"pipelines\" key, got %s", describe(root))
		return p
	}
	found := false
	for _, e := range p.entries(root, "the top level") {
		if e.name != "pipelines" {
			p.unknownKey(e, "unknown top-level key %q", topLevelKeys)
			continue
		}
		found = true
		p.parsePipelines(e.value)
	}
	if !found {
		p.warnf(root, "the file has no \"pipelines\" key: it defines no pipelines")
	}
	return p
}

func (p *fileParser) yamlError(err error) {
	line, msg := splitYAMLError(err)
	p.errorAt(line, "invalid YAML: %s", msg)
}

// unknownKey warns about a key that prunner does not know, suggesting the known key it is probably
// a typo of.
func (p *fileParser) unknownKey(e entry, format string, known []string, args ...any) {
	msg := fmt.Sprintf(format, append([]any{e.name}, args...)...)
	if s := suggest(e.name, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	p.warnAt(lineOf(e.key), "%s", msg)
}

func (p *fileParser) parsePipelines(n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "\"pipelines\" must be a mapping of pipeline names to pipelines, got %s", describe(n))
		return
	}
	for _, e := range p.entries(n, "pipelines") {
		if e.name == "" {
			p.errorf(e.key, "pipeline name must not be empty")
			continue
		}
		pp := p.parsePipeline(e)
		p.pipelines = append(p.pipelines, pp)
		p.validate(pp)
		p.checkSchedules(pp)
	}
}

func (p *fileParser) parsePipeline(e entry) *parsedPipeline {
	name := e.name
	d := &Definition{
		Name:          name,
		SourceFile:    p.file,
		Concurrency:   1,
		QueueStrategy: QueueAppend,
		Tasks:         make(map[string]TaskDefinition),
	}
	pp := &parsedPipeline{
		def:            d,
		line:           lineOf(e.key),
		keys:           make(map[string]int),
		invalid:        make(map[string]bool),
		taskLines:      make(map[string]int),
		dependsOnLines: make(map[string]int),
	}
	where := fmt.Sprintf("pipeline %q", name)
	n := e.value
	if isNull(n) {
		return pp
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping of settings and tasks, got %s", where, describe(n))
		return pp
	}
	for _, s := range p.entries(n, where) {
		v := s.value
		known := false
		for _, k := range pipelineKeys {
			known = known || k == s.name
		}
		if !known {
			p.unknownKey(s, "unknown key %q in pipeline %q", pipelineKeys, name)
			continue
		}
		if isNull(v) { // A setting without a value is treated as absent.
			continue
		}
		pp.keys[s.name] = lineOf(s.key)
		ok := true
		switch s.name {
		case "concurrency":
			d.Concurrency, ok = p.intValue(v, where, s.name)
		case "queue_limit":
			var limit int
			if limit, ok = p.intValue(v, where, s.name); ok {
				d.QueueLimit = &limit
			}
		case "queue_strategy":
			var strategy string
			if strategy, ok = p.stringValue(v, where, s.name); ok {
				d.QueueStrategy = QueueStrategy(strategy)
			}
		case "queue_partition_limit":
			d.QueuePartitionLimit, ok = p.intValue(v, where, s.name)
		case "start_delay":
			d.StartDelay, ok = p.durationValue(v, where, s.name)
		case "continue_running_tasks_after_failure":
			d.ContinueRunningTasksAfterFailure, ok = p.boolValue(v, where, s.name)
		case "retention_period":
			d.RetentionPeriod, ok = p.durationValue(v, where, s.name)
		case "retention_count":
			d.RetentionCount, ok = p.intValue(v, where, s.name)
		case "timeout":
			d.Timeout, ok = p.durationValue(v, where, s.name)
		case "env":
			d.Env = p.env(v, where, fmt.Sprintf("pipeline %q", name))
		case "interrupt_running":
			d.InterruptRunning, ok = p.boolValue(v, where, s.name)
		case "replace_variables":
			d.ReplaceVariables, ok = p.replaceVariables(v, where)
		case "tasks":
			p.parseTasks(pp, v, where)
		case "on_error":
			d.OnError = p.parseOnError(v, name)
		case "schedules":
			p.parseSchedules(pp, v, where)
		}
		if !ok {
			pp.invalid[s.name] = true
		}
	}
	return pp
}

func (p *fileParser) parseTasks(pp *parsedPipeline, n *yaml.Node, where string) {
	if n.Kind != yaml.MappingNode {
		hint := ""
		if n.Kind == yaml.SequenceNode {
			hint = " (write each task's name as a key, not as a list item)"
		}
		p.errorf(n, "%s: tasks must be a mapping of task names to tasks, got %s%s", where, describe(n), hint)
		return
	}
	for _, e := range p.entries(n, "tasks of "+where) {
		switch e.name {
		case "":
			p.errorf(e.key, "%s: task name must not be empty", where)
			continue
		case OnErrorTaskName:
			p.errorf(e.key, "%s: task name %q is reserved for the pipeline's error handler (declare on_error next to tasks, not inside it)", where, OnErrorTaskName)
			continue
		}
		t, dependsOnLine := p.parseTask(e, pp.def.Name)
		pp.def.Tasks[e.name] = t
		pp.taskOrder = append(pp.taskOrder, e.name)
		pp.taskLines[e.name] = lineOf(e.key)
		pp.dependsOnLines[e.name] = dependsOnLine
	}
}

// parseTask reads one task. It also returns the line of its depends_on (0 when absent).
func (p *fileParser) parseTask(e entry, pipelineName string) (TaskDefinition, int) {
	t := TaskDefinition{Name: e.name}
	where := fmt.Sprintf("pipeline %q: task %q", pipelineName, e.name)
	what := fmt.Sprintf("task %q of pipeline %q", e.name, pipelineName)
	n := e.value
	if isNull(n) {
		return t, 0
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping with script, depends_on, allow_failure, env, timeout and retry, got %s", where, describe(n))
		return t, 0
	}
	dependsOnLine := 0
	for _, s := range p.entries(n, what) {
		switch s.name {
		case "script":
			t.Script = p.script(s.value, where)
		case "depends_on":
			dependsOnLine = lineOf(s.key)
			t.DependsOn = p.dependsOn(s.value, where)
		case "allow_failure":
			if !isNull(s.value) {
				t.AllowFailure, _ = p.boolValue(s.value, where, s.name)
			}
		case "env":
			t.Env = p.env(s.value, where, what)
		case "timeout":
			t.Timeout = p.timeout(s.value, where)
		case "retry":
			t.Retry = p.retry(s.value, where, what)
		default:
			p.unknownKey(s, "unknown key %q in task %q of pipeline %q", taskKeys, e.name, pipelineName)
		}
	}
	return t, dependsOnLine
}

func (p *fileParser) parseOnError(n *yaml.Node, pipelineName string) *TaskDefinition {
	where := fmt.Sprintf("pipeline %q: on_error", pipelineName)
	what := fmt.Sprintf("on_error of pipeline %q", pipelineName)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping with script, env and timeout, got %s", where, describe(n))
		return nil
	}
	t := &TaskDefinition{Name: OnErrorTaskName}
	for _, s := range p.entries(n, what) {
		switch s.name {
		case "script":
			t.Script = p.script(s.value, where)
		case "env":
			t.Env = p.env(s.value, where, what)
		case "timeout":
			t.Timeout = p.timeout(s.value, where)
		default:
			p.unknownKey(s, "unknown key %q in on_error of pipeline %q", onErrorKeys, pipelineName)
		}
	}
	return t
}

// script reads a list of command lines. A single string is refused, as in the original prunner:
// it is ambiguous whether it is one line or several.
func (p *fileParser) script(n *yaml.Node, where string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = " (write each command line as a list item: \"- make build\")"
		}
		p.errorf(n, "%s: script must be a list of command lines, got %s%s", where, describe(n), hint)
		return nil
	}
	lines := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode {
			hint := ""
			if item.Kind == yaml.MappingNode {
				hint = " (quote a line that contains \": \", or YAML reads it as a mapping)"
			}
			p.errorf(item, "%s: script line %d must be a string, got %s%s", where, i+1, describe(item), hint)
			continue
		}
		lines = append(lines, scalarString(item))
	}
	return lines
}

// dependsOn reads a list of task names, dropping repeats.
func (p *fileParser) dependsOn(n *yaml.Node, where string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write depends_on: [%s])", n.Value)
		}
		p.errorf(n, "%s: depends_on must be a list of task names, got %s%s", where, describe(n), hint)
		return nil
	}
	deps := make([]string, 0, len(n.Content))
	seen := make(map[string]bool, len(n.Content))
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode || isNull(item) {
			p.errorf(item, "%s: depends_on must list task names, got %s", where, describe(item))
			continue
		}
		if seen[item.Value] {
			p.warnf(item, "%s: task %q is listed more than once in depends_on", where, item.Value)
			continue
		}
		seen[item.Value] = true
		deps = append(deps, item.Value)
	}
	return deps
}

// env reads environment variables. Scalar values of any type keep the form they were written in
// (PORT: 8080 gives "8080", DEBUG: yes gives "yes"); null gives "".
// replaceVariables reads replace_variables: a mapping of variable names to a merge strategy.
func (p *fileParser) replaceVariables(n *yaml.Node, where string) (map[string]VariableMerge, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: replace_variables must be a mapping of variable names to append or replace, got %s", where, describe(n))
		return nil, false
	}
	entries := p.entries(n, "replace_variables of "+where)
	out := make(map[string]VariableMerge, len(entries))
	ok := true
	for _, e := range entries {
		v, valid := p.stringValue(e.value, where, "replace_variables."+e.name)
		if !valid {
			ok = false
			continue
		}
		switch m := VariableMerge(v); m {
		case MergeAppend, MergeReplace:
			out[e.name] = m
		default:
			p.errorf(e.value, "%s: replace_variables.%s must be append or replace, got %q", where, e.name, v)
			ok = false
		}
	}
	return out, ok
}

func (p *fileParser) env(n *yaml.Node, where, what string) map[string]string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: env must be a mapping of variable names to values, got %s", where, describe(n))
		return nil
	}
	entries := p.entries(n, "env of "+what)
	if len(entries) == 0 {
		return nil
	}
	env := make(map[string]string, len(entries))
	for _, e := range entries {
		if e.name == "" || strings.ContainsAny(e.name, "=\x00") {
			p.errorf(e.key, "%s: invalid environment variable name %q", where, e.name)
			continue
		}
		if e.value.Kind != yaml.ScalarNode {
			p.errorf(e.value, "%s: env %s must be a string, got %s", where, e.name, describe(e.value))
			continue
		}
		v := scalarString(e.value)
		if strings.ContainsRune(v, 0) {
			p.errorf(e.value, "%s: env %s must not contain a NUL character", where, e.name)
			continue
		}
		env[e.name] = v
	}
	return env
}

// timeout reads the timeout of a task or of the on_error handler: a duration greater than 0
// (0 when absent or invalid).
func (p *fileParser) timeout(n *yaml.Node, where string) time.Duration {
	if isNull(n) {
		return 0
	}
	d, ok := p.durationValue(n, where, "timeout")
	if !ok {
		return 0
	}
	if d <= 0 {
		p.errorf(n, "%s: timeout must be greater than 0", where)
		return 0
	}
	return d
}

// retry reads a task's retry policy: {attempts: 3, delay: 1s, backoff: 2, max_delay: 1m}.
func (p *fileParser) retry(n *yaml.Node, where, what string) *RetryPolicy {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write retry: {attempts: %s})", n.Value)
		}
		p.errorf(n, "%s: retry must be a mapping with attempts, delay, backoff and max_delay, got %s%s", where, describe(n), hint)
		return nil
	}
	r := &RetryPolicy{Attempts: 1, Backoff: 1}
	where += ": retry"
	var maxDelayKey *yaml.Node
	hasAttempts := false
	for _, s := range p.entries(n, "retry of "+what) {
		v := s.value
		known := false
		for _, k := range retryKeys {
			known = known || k == s.name
		}
		if !known {
			p.unknownKey(s, "unknown key %q in retry of %s", retryKeys, what)
			continue
		}
		if isNull(v) { // A setting without a value is treated as absent.
			continue
		}
		switch s.name {
		case "attempts":
			hasAttempts = true
			a, ok := p.intValue(v, where, s.name)
			switch {
			case !ok:
			case a < 1:
				p.errorf(v, "%s: attempts must be at least 1 (the first try included)", where)
			case a > MaxRetryAttempts:
				p.errorf(v, "%s: attempts must not be greater than %d", where, MaxRetryAttempts)
			default:
				r.Attempts = a
			}
		case "delay":
			d, ok := p.durationValue(v, where, s.name)
			switch {
			case !ok:
			case d < 0:
				p.errorf(v, "%s: delay must not be negative", where)
			default:
				r.Delay = d
			}
		case "backoff":
			b, ok := p.floatValue(v, where, s.name)
			switch {
			case !ok:
			case b < 1 || math.IsNaN(b) || math.IsInf(b, 0):
				p.errorf(v, "%s: backoff must be a number of at least 1, got %s", where, describe(v))
			default:
				r.Backoff = b
			}
		case "max_delay":
			d, ok := p.durationValue(v, where, s.name)
			switch {
			case !ok:
			case d <= 0:
				p.errorf(v, "%s: max_delay must be greater than 0", where)
			default:
				r.MaxDelay, maxDelayKey = d, s.key
			}
		}
	}
	if r.MaxDelay > 0 && r.MaxDelay < r.Delay {
		p.errorAt(lineOf(maxDelayKey), "%s: max_delay (%v) must not be less than delay (%v)", where, r.MaxDelay, r.Delay)
	}
	if !hasAttempts {
		p.warnf(n, "%s: attempts is not set, so the task runs only once (write attempts: 3 for three tries)", where)
	}
	return r
}
