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
