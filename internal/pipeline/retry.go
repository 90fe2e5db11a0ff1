package pipeline

import (
	"math"
	"time"
)

// MaxRetryAttempts bounds retry.attempts: every attempt keeps its output files and a line in the
// task's record, so an unbounded count could fill the disk with one flapping task.
const MaxRetryAttempts = 100

// RetryPolicy says how often and how soon a failed task runs again. It is part of definition
// snapshots (stored as JSON with each job).
type RetryPolicy struct {
	// Attempts is the total number of tries, the first included (>= 1).
	Attempts int `json:"attempts"`
	// Delay is the wait after the first failed attempt (>= 0).
	Delay time.Duration `json:"delay,omitempty"`
	// Backoff multiplies the wait after each further failed attempt (>= 1; 0 is read as 1).
	Backoff float64 `json:"backoff,omitempty"`
	// MaxDelay caps the wait (0 = no cap).
	MaxDelay time.Duration `json:"maxDelay,omitempty"`
}

// MaxAttempts returns the total number of tries the policy allows: 1 for a nil policy.
func (p *RetryPolicy) MaxAttempts() int {
	if p == nil || p.Attempts < 1 {
		return 1
	}
	return p.Attempts
}

// DelayAfter returns the wait after failed attempt n (1-based) before attempt n+1:
// Delay * Backoff^(n-1), capped by MaxDelay.
func (p *RetryPolicy) DelayAfter(n int) time.Duration {
	if p == nil || p.Delay <= 0 {
		return 0
	}
	backoff := p.Backoff
	if backoff < 1 {
		backoff = 1
	}
	d := float64(p.Delay) * math.Pow(backoff, float64(max(n, 1)-1))
	// The largest wait there is (about 146 years), so that the conversion below cannot
	// overflow; float64 cannot hold math.MaxInt64 exactly.
	limit := float64(time.Duration(1 << 62))
	if p.MaxDelay > 0 {
		limit = min(limit, float64(p.MaxDelay))
	}
	if d >= limit || math.IsNaN(d) {
		return time.Duration(limit)
	}
	return time.Duration(d)
}
