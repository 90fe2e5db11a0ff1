package scheduler

import "time"

// Clock is the scheduler's time: what time it is, and a timer that says when an instant has
// come. Tests inject a clock they advance by hand, so that they never sleep until a fire time.
// The timer takes an instant rather than a duration, so that a clock advanced between reading
// the time and arming the timer does not move the deadline.
type Clock interface {
	Now() time.Time
	TimerAt(at time.Time) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	// C receives once when the timer's duration has passed.
	C() <-chan time.Time
	// Stop stops the timer; it reports whether it stopped it before it fired.
	Stop() bool
}

// realClock is the Clock of the time package.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) TimerAt(at time.Time) Timer { return realTimer{time.NewTimer(time.Until(at))} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
