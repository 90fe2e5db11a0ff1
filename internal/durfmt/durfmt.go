// Package durfmt writes durations the way people write them in pipelines.yml and API requests.
package durfmt

import (
	"strings"
	"time"
)

// Format writes d as time.Duration.String does, without the zero units it appends: "24h0m0s"
// becomes "24h", "1h30m0s" "1h30m", "1m0s" "1m"; "90s" stays "1m30s" and zero is "0s". What it
// writes parses back to d with time.ParseDuration.
func Format(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
