package pipeline

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSchedules(t *testing.T) {
	t.Parallel()
	yaml := `pipelines:
  nightly:
    schedules:
      - name: full
        cron: "0 3 * * *"
        timezone: Europe/Berlin
        variables: {mode: full, count: 3, ratio: 1.50, hex: 0x1F, on: true, none: null, list: [1, "a"], nested: {k: v}, when: 2026-01-02}
        jitter: 30s
        missed: once
        catchup_window: 2h
        overlap: skip
      - name: quick.check_2
        cron: "@every 15m"
    tasks:
      a: {script: [x]}
  parts:
    queue_strategy: partitioned_replace
    queue_partition_limit: 1
    tasks:
      a: {script: [x]}
    schedules:
      - {name: eu, cron: "@daily", queue_partition: eu, missed: all}
      - {name: default, cron: "@hourly", queue_partition: ""}
`
	defs, warns, errs := Parse("p.yml", []byte(yaml))
	if len(errs) > 0 || len(warns) > 0 {
		t.Fatalf("errors %q, warnings %q", problemStrings(errs), problemStrings(warns))
	}
	wantNightly := []ScheduleSpec{
		{
			Pipeline: "nightly", Name: "full", Cron: "0 3 * * *", Timezone: "Europe/Berlin",
			Variables: map[string]any{
				"mode": "full", "count": json.Number("3"), "ratio": json.Number("1.50"), "hex": json.Number("31"),
				"on": true, "none": nil, "list": []any{json.Number("1"), "a"}, "nested": map[string]any{"k": "v"},
				"when": "2026-01-02",
			},
			Jitter: 30 * time.Second, Missed: MissedOnce, CatchupWindow: 2 * time.Hour, Overlap: OverlapSkip,
			Source: SourceFile, SourceFile: "p.yml", SourceLine: 4,
		},
		{
			Pipeline: "nightly", Name: "quick.check_2", Cron: "@every 15m", Missed: MissedSkip,
			CatchupWindow: DefaultCatchupWindow, Overlap: OverlapAllow, Source: SourceFile, SourceFile: "p.yml", SourceLine: 12,
		},
	}
	if got := defs["nightly"].Schedules; !reflect.DeepEqual(got, wantNightly) {
		t.Errorf("nightly schedules:\n got %#v\nwant %#v", got, wantNightly)
	}
	parts := defs["parts"].Schedules
	if len(parts) != 2 || parts[0].QueuePartition != "eu" || parts[0].Missed != MissedAll || parts[1].QueuePartition != "" || parts[0].SourceLine != 22 || parts[1].SourceLine != 23 {
		t.Errorf("parts schedules: %#v", parts)
	}
	for _, s := range parts {
		if s.ID() != "parts/"+s.Name {
			t.Errorf("ID %q", s.ID())
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	t.Parallel()
	head := "pipelines:\n  nightly:\n    tasks:\n      a: {script: [x]}\n    schedules:\n"
	tests := []struct {
		name, yaml string
		wantErrs   []string
	}{
		{
			name:     "bad hour",
			yaml:     "      - name: full\n        cron: \"0 25 * * *\"\n",
			wantErrs: []string{`pipelines.yml:7: pipeline "nightly": schedule "full": cron "0 25 * * *": hour 25 out of range 0-23`},
		},
		{
			name:     "unknown zone",
			yaml:     "      - name: full\n        cron: \"0 3 * * *\"\n        timezone: Europe/Berlinn\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule "full": timezone "Europe/Berlinn": unknown time zone; give an IANA zone name such as Europe/Berlin, America/New_York or UTC`},
		},
		{
			name:     "zone in the expression",
			yaml:     "      - {name: full, cron: \"TZ=UTC\"}\n",
			wantErrs: []string{`pipelines.yml:6: pipeline "nightly": schedule "full": cron "TZ=UTC": a zone prefix (TZ= or CRON_TZ=) is not allowed in the expression; give the zone in timezone`},
		},
		{
			name:     "never fires",
			yaml:     "      - name: feb\n        cron: \"0 0 30 2 *\"\n",
			wantErrs: []string{`pipelines.yml:7: pipeline "nightly": schedule "feb": cron "0 0 30 2 *" never fires: February has no day 30`},
		},
		{
			name:     "unknown key with a suggestion is an error",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        timzone: UTC\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule 1: unknown key "timzone" (did you mean "timezone"?)`},
		},
		{
			name:     "unknown key without a suggestion",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        when: always\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule 1: unknown key "when" (a schedule has name, cron, timezone, variables, queue_partition, jitter, missed, catchup_window and overlap)`},
		},
		{
			name:     "missing name",
			yaml:     "      - cron: \"@daily\"\n",
			wantErrs: []string{`pipelines.yml:6: pipeline "nightly": schedule: name is required (it makes the schedule's ID "<pipeline>/<name>")`},
		},
		{
			name:     "missing cron",
			yaml:     "      - name: full\n",
			wantErrs: []string{`pipelines.yml:6: pipeline "nightly": schedule "full": cron is required: five fields such as "0 3 * * *", a descriptor such as @daily, or "@every 15m"`},
		},
		{
			name:     "bad name",
			yaml:     "      - name: full run\n        cron: \"@daily\"\n",
			wantErrs: []string{`pipelines.yml:6: pipeline "nightly": schedule "full run": name "full run": use letters, digits, "-", "_" and "." only, starting with a letter or digit`},
		},
		{
			name: "duplicate name",
			yaml: "      - name: full\n        cron: \"@daily\"\n      - name: full\n        cron: \"@hourly\"\n",
			wantErrs: []string{
				`pipelines.yml:8: pipeline "nightly": schedule "full" is declared twice (first at line 6); names must be unique within a pipeline`,
			},
		},
		{
			name:     "bad missed",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        missed: sometimes\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule "full": missed must be skip, once or all, got "sometimes"`},
		},
		{
			name:     "bad overlap",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        overlap: queue\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule "full": overlap must be allow or skip, got "queue"`},
		},
		{
			name:     "negative jitter",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        jitter: -1s\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule "full": jitter must not be negative`},
		},
		{
			name:     "jitter without a unit",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        jitter: 30\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule 1: jitter must be a duration with a unit, such as "30s", got "30"`},
		},
		{
			name:     "negative catchup_window",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        catchup_window: -1h\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule "full": catchup_window must not be negative`},
		},
		{
			name:     "partition on an append pipeline",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        queue_partition: eu\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule "full": queue_partition is only used if queue_strategy=partitioned_replace; pipeline "nightly" uses append, so remove it`},
		},
		{
			name:     "variables not a mapping",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        variables: [a]\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule 1: variables must be a mapping of variable names to values, got a list`},
		},
		{
			name:     "a number JSON cannot hold",
			yaml:     "      - name: full\n        cron: \"@daily\"\n        variables: {x: .inf}\n",
			wantErrs: []string{`pipelines.yml:8: pipeline "nightly": schedule 1: variables.x: .inf is not a number JSON can hold; quote it to pass it as a string`},
		},
		{
			name:     "a schedule that is not a mapping",
			yaml:     "      - \"0 3 * * *\"\n",
			wantErrs: []string{`pipelines.yml:6: pipeline "nightly": schedule 1 must be a mapping with name and cron, got "0 3 * * *"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			defs, _, errs := Parse("pipelines.yml", []byte(head+tc.yaml))
			if got := problemStrings(errs); !slices.Equal(got, tc.wantErrs) {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.wantErrs)
			}
			if defs != nil {
				t.Errorf("defs with errors")
			}
		})
	}
	t.Run("schedules as a mapping", func(t *testing.T) {
		t.Parallel()
		_, _, errs := Parse("pipelines.yml", []byte("pipelines:\n  nightly:\n    schedules:\n      full: {cron: \"@daily\"}\n"))
		want := []string{`pipelines.yml:4: pipeline "nightly": schedules must be a list of schedules, got a mapping (write each schedule as a list item: "- name: nightly")`}
		if got := problemStrings(errs); !slices.Equal(got, want) {
			t.Errorf("errors:\n got %q\nwant %q", got, want)
		}
	})
}

// TestLoadReportsScheduleErrors: Load (which prunner validate and the server use) fails on a bad
// schedule with file and line.
func TestLoadReportsScheduleErrors(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{"sub/pipelines.yml": "pipelines:\n  nightly:\n    schedules:\n      - name: full\n        cron: \"0 3 * * 8\"\n"})
	_, _, err := Load(dir, "")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("Load: %v", err)
	}
	want := `pipelines.yml:5: pipeline "nightly": schedule "full": cron "0 3 * * 8": day of week 8 out of range 0-6 (Sunday is 0 or SUN)`
	if !strings.HasSuffix(le.Error(), want) || !strings.Contains(le.Error(), "sub") {
		t.Fatalf("Load error %q, want it to end with %q", le.Error(), want)
	}
}

func TestScheduleCheck(t *testing.T) {
	t.Parallel()
	appendDef := &Definition{Name: "nightly", QueueStrategy: QueueAppend}
	partDef := &Definition{Name: "parts", QueueStrategy: QueuePartitionedReplace, QueuePartitionLimit: 1}

	t.Run("defaults", func(t *testing.T) {
		s := ScheduleSpec{Name: "full", Cron: "0 3 * * *", Source: SourceAPI}
		if err := s.Check(appendDef); err != nil {
			t.Fatal(err)
		}
		if tt, err := s.Timetable(); err != nil || tt.Describe() != "every day at 03:00, UTC" {
			t.Fatalf("Timetable: %v", err)
		}
		if s.Pipeline != "nightly" || s.Missed != MissedSkip || s.CatchupWindow != DefaultCatchupWindow || s.Overlap != OverlapAllow {
			t.Fatalf("defaults not filled: %#v", s)
		}
	})
	t.Run("partitions", func(t *testing.T) {
		for _, p := range []string{"", "eu"} {
			s := ScheduleSpec{Pipeline: "parts", Name: "p", Cron: "@daily", QueuePartition: p}
			if err := s.Check(partDef); err != nil {
				t.Errorf("partition %q: %v", p, err)
			}
		}
	})
	tests := []struct {
		name  string
		spec  ScheduleSpec
		def   *Definition
		field string
		want  string
	}{
		{"unknown pipeline", ScheduleSpec{Pipeline: "gone", Name: "a", Cron: "@daily"}, nil, "pipeline", `schedule "gone/a": unknown pipeline "gone"`},
		{"other pipeline", ScheduleSpec{Pipeline: "other", Name: "a", Cron: "@daily"}, appendDef, "pipeline", `schedule "other/a": belongs to pipeline "other", not "nightly"`},
		{"bad cron", ScheduleSpec{Name: "a", Cron: "61 * * * *"}, appendDef, "cron", `schedule "nightly/a": cron "61 * * * *": minute 61 out of range 0-59`},
		{"bad zone", ScheduleSpec{Name: "a", Cron: "@daily", Timezone: "Nowhere"}, appendDef, "timezone", `schedule "nightly/a": timezone "Nowhere": unknown time zone`},
		{"long name", ScheduleSpec{Name: strings.Repeat("a", 101), Cron: "@daily"}, appendDef, "name", `name is longer than 100 characters`},
		{"dot name", ScheduleSpec{Name: "..", Cron: "@daily"}, appendDef, "name", `name "..": use letters`},
		{"slash in name", ScheduleSpec{Name: "a/b", Cron: "@daily"}, appendDef, "name", `name "a/b": use letters`},
		{"short interval", ScheduleSpec{Name: "a", Cron: "@every 100ms"}, appendDef, "cron", `the interval must be at least 1s`},
		{"partition elsewhere", ScheduleSpec{Name: "a", Cron: "@daily", QueuePartition: "x"}, appendDef, "queue_partition", `queue_partition is only used if queue_strategy=partitioned_replace`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			err := s.Check(tc.def)
			if !errors.Is(err, ErrInvalidSchedule) {
				t.Fatalf("Check = %v, want ErrInvalidSchedule", err)
			}
			if e := AsScheduleError(err); e == nil || e.Field != tc.field {
				t.Fatalf("field of %v, want %q", err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), ".yml") {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
	t.Run("a file schedule's error names its file and line", func(t *testing.T) {
		s := ScheduleSpec{Name: "a", Cron: "0 0 31 2 *", Source: SourceFile, SourceFile: "ops/pipelines.yml", SourceLine: 12}
		err := s.Check(appendDef)
		want := `ops/pipelines.yml:12: schedule "nightly/a": cron "0 0 31 2 *" never fires: February has no day 31`
		if err == nil || err.Error() != want {
			t.Fatalf("Check = %v, want %q", err, want)
		}
	})
}
