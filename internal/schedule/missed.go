package schedule

import (
	"math/rand/v2"
	"time"
)

// Missed-run policies, as written in a schedule's missed: setting.
const (
	MissedSkip = "skip" // no missed fire time fires
	MissedOnce = "once" // the latest missed fire time in the window fires
	MissedAll  = "all"  // every missed fire time in the window fires, in order (at most MaxMissed)
)

// MaxMissed bounds the fire times one call of Missed returns for MissedAll.
const MaxMissed = 1000

// Missed returns the fire times of tt that passed while nothing fired them and that must fire now,
// under policy: the fire times in (max(cursor, now-window), now], where cursor is the latest fire
// time already handled (zero when none). MissedSkip (and any other policy, and a window <= 0)
// gives none; MissedOnce the latest one only; MissedAll each one in order, at most MaxMissed:
// the earliest ones, so a caller that moves its cursor to the last returned time and calls again
// gets the following ones.
func Missed(tt *Timetable, cursor, now time.Time, policy string, window time.Duration) []time.Time {
	if window <= 0 || (policy != MissedOnce && policy != MissedAll) {
		return nil
	}
	from := now.Add(-window)
	if cursor.After(from) {
		from = cursor
	}
	if !from.Before(now) {
		return nil
	}
	if policy == MissedOnce {
		if t := latestBetween(tt, from, now); !t.IsZero() {
			return []time.Time{t}
		}
		return nil
	}
	times, _ := tt.Between(from, now, MaxMissed)
	return times
}

// latestBetween returns the latest fire time in (from, to], or the zero time. It looks back from
// to over doubling spans, so its cost follows the schedule's density near to, not the length of
// the window.
func latestBetween(tt *Timetable, from, to time.Time) time.Time {
	for span := time.Second; ; span *= 2 {
		start := to.Add(-span)
		if !start.After(from) {
			start = from
		}
		if t := tt.Next(start); !t.IsZero() && !t.After(to) {
			for next := tt.Next(t); !next.IsZero() && !next.After(to); next = tt.Next(t) {
				t = next
			}
			return t
		}
		if start.Equal(from) {
			return time.Time{}
		}
	}
}

// JitterDelay returns a random delay in [0, max) to add to a firing, so that many schedules with
// the same fire time do not all start at once; 0 when max <= 0. rnd is the source of randomness
// (nil: the global one); tests pass a seeded one.
func JitterDelay(max time.Duration, rnd *rand.Rand) time.Duration {
	if max <= 0 {
		return 0
	}
	if rnd == nil {
		return time.Duration(rand.Int64N(int64(max)))
	}
	return time.Duration(rnd.Int64N(int64(max)))
}
