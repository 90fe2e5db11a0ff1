package pipeline

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestParseTimeoutsAndRetries(t *testing.T) {
	t.Parallel()
	const file = `pipelines:
  release:
    timeout: 1h
    tasks:
      build:
        script: [make]
        timeout: 5m
        retry: {attempts: 3, delay: 1s, backoff: 2, max_delay: 10s}
      flaky:
        script: [curl]
        retry:
          attempts: 5
          backoff: 1.5
      plain:
        script: [true]
        retry: {attempts: 2}
    on_error:
      script: [notify]
      timeout: 30s
`
	got, warns, errs := Parse("p.yml", []byte(file))
	if len(errs) > 0 || len(warns) > 0 {
		t.Fatalf("errors %q, warnings %q", problemStrings(errs), problemStrings(warns))
	}
	want := &Definition{
		Name: "release", SourceFile: "p.yml", Concurrency: 1, QueueStrategy: QueueAppend,
		Timeout: time.Hour,
		Tasks: map[string]TaskDefinition{
			"build": {
				Name: "build", Script: []string{"make"}, Timeout: 5 * time.Minute,
				Retry: &RetryPolicy{Attempts: 3, Delay: time.Second, Backoff: 2, MaxDelay: 10 * time.Second},
			},
			"flaky": {Name: "flaky", Script: []string{"curl"}, Retry: &RetryPolicy{Attempts: 5, Backoff: 1.5}},
			"plain": {Name: "plain", Script: []string{"true"}, Retry: &RetryPolicy{Attempts: 2, Backoff: 1}},
		},
		OnError: &TaskDefinition{Name: OnErrorTaskName, Script: []string{"notify"}, Timeout: 30 * time.Second},
	}
	if !reflect.DeepEqual(got["release"], want) {
		t.Errorf("definition:\n got %+v\nwant %+v", got["release"], want)
	}

	// The new settings are part of the definition snapshot that jobs keep.
	data, err := json.Marshal(got["release"])
	if err != nil {
		t.Fatal(err)
	}
	var back Definition
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, want) {
		t.Errorf("JSON round trip:\n got %+v\nwant %+v\n%s", &back, want, data)
	}
}

func TestParseTimeoutAndRetryProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		yaml      string
		wantErrs  []string
		wantWarns []string
	}{
		{
			name: "task timeout 0",
			yaml: `pipelines:
  p:
    tasks:
      t: {script: [x], timeout: 0}
`,
			wantErrs: []string{`pipelines.yml:4: pipeline "p": task "t": timeout must be greater than 0`},
		},
		{
			name: "negative task timeout",
			yaml: `pipelines:
  p:
    tasks:
      t: {script: [x], timeout: -5s}
`,
			wantErrs: []string{`pipelines.yml:4: pipeline "p": task "t": timeout must be greater than 0`},
		},
		{
			name: "task timeout without unit",
			yaml: `pipelines:
  p:
    tasks:
      t: {script: [x], timeout: 5}
`,
			wantErrs: []string{`pipelines.yml:4: pipeline "p": task "t": timeout must be a duration with a unit, such as "5s", got "5"`},
		},
		{
			name: "pipeline timeout 0s",
			yaml: `pipelines:
  p:
    timeout: 0s
    tasks:
      t: {script: [x]}
`,
			wantErrs: []string{`pipelines.yml:3: pipeline "p": timeout must be greater than 0`},
		},
		{
			name: "pipeline timeout not a duration",
			yaml: `pipelines:
  p:
    timeout: soon
`,
			wantErrs: []string{`pipelines.yml:3: pipeline "p": timeout must be a duration such as "10s", "5m" or "48h", got "soon"`},
		},
		{
			name: "null timeouts are absent",
			yaml: `pipelines:
  p:
    timeout:
    tasks:
      t: {script: [x], timeout: ~, retry: ~}
`,
		},
		{
			name: "on_error timeout",
			yaml: `pipelines:
  p:
    on_error:
      script: [x]
      timeout: -1s
`,
			wantErrs: []string{`pipelines.yml:5: pipeline "p": on_error: timeout must be greater than 0`},
		},
		{
			name: "retry policy out of range",
			yaml: `pipelines:
  p:
    tasks:
      t:
        script: [x]
        retry:
          attempts: 0
          delay: -1s
          backoff: 0.5
          max_delay: 0s
`,
			wantErrs: []string{
				`pipelines.yml:7: pipeline "p": task "t": retry: attempts must be at least 1 (the first try included)`,
				`pipelines.yml:8: pipeline "p": task "t": retry: delay must not be negative`,
				`pipelines.yml:9: pipeline "p": task "t": retry: backoff must be a number of at least 1, got "0.5"`,
				`pipelines.yml:10: pipeline "p": task "t": retry: max_delay must be greater than 0`,
			},
		},
		{
			name: "retry values of the wrong type",
			yaml: `pipelines:
  p:
    tasks:
      t:
        script: [x]
        retry:
          attempts: many
          delay: 5
          backoff: double
`,
			wantErrs: []string{
				`pipelines.yml:7: pipeline "p": task "t": retry: attempts must be an integer, got "many"`,
				`pipelines.yml:8: pipeline "p": task "t": retry: delay must be a duration with a unit, such as "5s", got "5"`,
				`pipelines.yml:9: pipeline "p": task "t": retry: backoff must be a number, got "double"`,
			},
		},
		{
			name: "too many attempts",
			yaml: `pipelines:
  p:
    tasks:
      t: {script: [x], retry: {attempts: 101}}
`,
			wantErrs: []string{`pipelines.yml:4: pipeline "p": task "t": retry: attempts must not be greater than 100`},
		},
		{
			name: "max_delay below delay",
			yaml: `pipelines:
  p:
    tasks:
      t:
        script: [x]
        retry: {attempts: 3, delay: 10s, max_delay: 5s}
`,
			wantErrs: []string{`pipelines.yml:6: pipeline "p": task "t": retry: max_delay (5s) must not be less than delay (10s)`},
		},
		{
			name: "retry as a number",
			yaml: `pipelines:
  p:
    tasks:
      t: {script: [x], retry: 3}
`,
			wantErrs: []string{`pipelines.yml:4: pipeline "p": task "t": retry must be a mapping with attempts, delay, backoff and max_delay, got "3" (write retry: {attempts: 3})`},
		},
		{
			name: "unknown keys",
			yaml: `pipelines:
  p:
    time_out: 1m
    tasks:
      t:
        script: [x]
        timout: 5s
        rety: {attempts: 2}
        retry: {attempts: 2, dealy: 1s, max-delay: 1m}
    on_error:
      script: [x]
      retry: {attempts: 2}
`,
			wantWarns: []string{
				`pipelines.yml:3: unknown key "time_out" in pipeline "p" (did you mean "timeout"?)`,
				`pipelines.yml:7: unknown key "timout" in task "t" of pipeline "p" (did you mean "timeout"?)`,
				`pipelines.yml:8: unknown key "rety" in task "t" of pipeline "p" (did you mean "retry"?)`,
				`pipelines.yml:9: unknown key "dealy" in retry of task "t" of pipeline "p" (did you mean "delay"?)`,
				`pipelines.yml:9: unknown key "max-delay" in retry of task "t" of pipeline "p" (did you mean "max_delay"?)`,
				`pipelines.yml:12: unknown key "retry" in on_error of pipeline "p"`,
			},
		},
		{
			name: "retry without attempts",
			yaml: `pipelines:
  p:
    tasks:
      t: {script: [x], retry: {delay: 1s}}
`,
			wantWarns: []string{`pipelines.yml:4: pipeline "p": task "t": retry: attempts is not set, so the task runs only once (write attempts: 3 for three tries)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, warns, errs := Parse("pipelines.yml", []byte(tt.yaml))
			if got := problemStrings(errs); !slices.Equal(got, tt.wantErrs) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.wantErrs)
			}
			if got := problemStrings(warns); !slices.Equal(got, tt.wantWarns) {
				t.Errorf("warnings:\n got %q\nwant %q", got, tt.wantWarns)
			}
		})
	}
}

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		policy       *RetryPolicy
		wantAttempts int
		// wantDelays are the waits after failed attempts 1, 2, 3, …
		wantDelays []time.Duration
	}{
		{"none", nil, 1, []time.Duration{0, 0}},
		{"attempts only", &RetryPolicy{Attempts: 3}, 3, []time.Duration{0, 0}},
		{"constant", &RetryPolicy{Attempts: 3, Delay: time.Second, Backoff: 1}, 3, []time.Duration{time.Second, time.Second}},
		{"backoff unset", &RetryPolicy{Attempts: 3, Delay: time.Second}, 3, []time.Duration{time.Second, time.Second}},
		{
			"exponential", &RetryPolicy{Attempts: 5, Delay: 100 * time.Millisecond, Backoff: 2}, 5,
			[]time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
		},
		{
			"capped", &RetryPolicy{Attempts: 5, Delay: time.Second, Backoff: 3, MaxDelay: 5 * time.Second}, 5,
			[]time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second},
		},
		{
			"huge growth saturates", &RetryPolicy{Attempts: 100, Delay: time.Hour, Backoff: 1000}, 100,
			[]time.Duration{time.Hour, 1000 * time.Hour},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.policy.MaxAttempts(); got != tt.wantAttempts {
				t.Errorf("MaxAttempts() = %d, want %d", got, tt.wantAttempts)
			}
			for i, want := range tt.wantDelays {
				if got := tt.policy.DelayAfter(i + 1); got != want {
					t.Errorf("DelayAfter(%d) = %v, want %v", i+1, got, want)
				}
			}
		})
	}
	// Far beyond any real wait the delay stays positive instead of overflowing.
	p := &RetryPolicy{Attempts: 100, Delay: time.Hour, Backoff: 1000}
	if got := p.DelayAfter(99); got <= 0 {
		t.Errorf("DelayAfter(99) = %v, want a positive saturated wait", got)
	}
}
