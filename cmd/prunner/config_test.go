package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestParseConfigShutdownAndDurabilityFlags: --drain-timeout and --sync-full, from flags and from
// the environment, with their defaults and their errors.
func TestParseConfigShutdownAndDurabilityFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantDrain time.Duration
		wantSync  bool
		wantErr   string
	}{
		{"defaults: no drain limit, synchronous=NORMAL", nil, nil, 0, false, ""},
		{"flags", []string{"--drain-timeout", "90s", "--sync-full"}, nil, 90 * time.Second, true, ""},
		{"environment", nil, map[string]string{"PRUNNER_DRAIN_TIMEOUT": "2m", "PRUNNER_SYNC_FULL": "true"}, 2 * time.Minute, true, ""},
		{"a flag wins over the environment", []string{"--drain-timeout", "1s"}, map[string]string{"PRUNNER_DRAIN_TIMEOUT": "2m"}, time.Second, false, ""},
		{"negative drain timeout", []string{"--drain-timeout", "-1s"}, nil, 0, false, "--drain-timeout must not be negative"},
	}
	for _, tt := range tests {
		cfg, err := parseConfig(tt.args, tt.env, io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if cfg.drainTimeout != tt.wantDrain || cfg.syncFull != tt.wantSync {
			t.Errorf("%s: drain %v, sync-full %v; want %v, %v", tt.name, cfg.drainTimeout, cfg.syncFull, tt.wantDrain, tt.wantSync)
		}
	}
}

// TestParseConfigMaxJobs: --max-jobs from the flag and PRUNNER_MAX_JOBS, 0 by default, and its
// errors.
func TestParseConfigMaxJobs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    int
		wantErr string
	}{
		{"default: no limit", nil, nil, 0, ""},
		{"flag", []string{"--max-jobs", "3"}, nil, 3, ""},
		{"environment", nil, map[string]string{"PRUNNER_MAX_JOBS": "2"}, 2, ""},
		{"a flag wins over the environment", []string{"--max-jobs", "1"}, map[string]string{"PRUNNER_MAX_JOBS": "2"}, 1, ""},
		{"negative", []string{"--max-jobs", "-1"}, nil, 0, "--max-jobs must not be negative"},
		{"not a number", nil, map[string]string{"PRUNNER_MAX_JOBS": "two"}, 0, `PRUNNER_MAX_JOBS="two": not a whole number`},
	}
	for _, tt := range tests {
		cfg, err := parseConfig(tt.args, tt.env, io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if cfg.maxJobs != tt.want {
			t.Errorf("%s: max jobs %d, want %d", tt.name, cfg.maxJobs, tt.want)
		}
	}
}
