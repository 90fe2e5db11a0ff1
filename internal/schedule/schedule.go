// Package schedule computes when a schedule fires: it parses an expression (five cron fields, a
// descriptor such as @daily, or "@every <duration>") in an IANA time zone with
// github.com/robfig/cron/v3, and computes the fire times itself from the parsed fields, following
// cronie's daylight-saving rules where the library's own Next does not. It knows nothing of
// pipelines or stores: times in, times out.
//
// # Expressions
//
//   - Five fields "minute hour day-of-month month day-of-week" as the library reads them
//     (ranges, lists, steps, names such as JAN and MON; day of week 0-6, Sunday is 0). When both
//     day of month and day of week are restricted, a day matching either one fires (cron's rule);
//     a field written as "*" does not restrict.
//   - Descriptors @hourly, @daily (@midnight), @weekly, @monthly, @yearly (@annually).
//   - "@every <duration>" (time.ParseDuration), at least one second and a whole number of
//     seconds. It fires at every multiple of the interval since the Unix epoch (1970-01-01
//     00:00:00 UTC), so the rhythm is the same across restarts and does not depend on when the
//     schedule was created; the zone is ignored ("@every 24h" fires at 00:00 UTC).
//   - The zone is never part of the expression: a "TZ=" or "CRON_TZ=" prefix is refused.
//     Expressions that can never fire ("0 0 30 2 *") are refused.
//
// # Daylight saving (cronie's rules)
//
// Fire times are computed from instants, never from wall-clock strings: for each local calendar
// day that the day fields allow, the wall times of the minute and hour fields are turned into
// instants with the zone's actual transitions (time.Time.ZoneBounds), so shifts of any size
// (Australia/Lord_Howe shifts 30 minutes) are handled alike.
//
//   - A fixed-time schedule has a single minute and a single hour ("30 2 * * *"; @daily,
//     @weekly, @monthly and @yearly are fixed at 00:00). A wall time that does not exist on a
//     spring-forward day fires once, at the instant of the transition (the first instant after
//     the jump: "30 2 * * *" in Europe/Berlin fires at 03:00 CEST on 2026-03-29). A wall time
//     that occurs twice on a fall-back day fires once, at its first occurrence.
//   - Every other schedule (the minute or hour field is a wildcard, step, list or range,
//     such as "0 * * * *", "*/15 * * * *" or @hourly) keeps its rhythm in real time: every
//     instant whose local wall time matches fires, once. Wall times that do not exist do not fire (an hourly
//     schedule fires 23 times on a spring-forward day of a one-hour shift), and wall times that
//     occur twice fire at both instants (25 times on a fall-back day).
package schedule

import (
	_ "time/tzdata" // zones work on hosts without a tz database

	"time"

	"github.com/robfig/cron/v3"
)

// Timetable is a parsed expression in a zone. It is immutable and safe for concurrent use.
type Timetable struct {
	expr string
	loc  *time.Location
	// every is the interval of an "@every" expression (0 for cron fields and descriptors).
	every time.Duration
	// spec holds the cron fields as bit sets (nil for "@every").
	spec *cron.SpecSchedule
	// fixed is true when the minute and hour fields are single values (hour:minute).
	fixed        bool
	hour, minute int
}

// Next returns the first fire time strictly after t, in UTC, following cronie's rules for
// daylight-saving changes (see the package documentation). It returns the zero time only when
// there is no fire time in the next nine years, which Parse rules out.
func (tt *Timetable) Next(t time.Time) time.Time {
	if tt.every > 0 {
		return nextEvery(tt.every, t)
	}
	return tt.nextCron(t)
}

// Upcoming returns the next n fire times after t, in order.
func (tt *Timetable) Upcoming(t time.Time, n int) []time.Time {
	times := make([]time.Time, 0, max(n, 0))
	for len(times) < n {
		t = tt.Next(t)
		if t.IsZero() {
			break
		}
		times = append(times, t)
	}
	return times
}

// Between returns the fire times in (from, to], in order, at most max of them; more reports
// whether there were more than max.
func (tt *Timetable) Between(from, to time.Time, max int) (times []time.Time, more bool) {
	t := from
	for {
		t = tt.Next(t)
		if t.IsZero() || t.After(to) {
			return times, false
		}
		if len(times) >= max {
			return times, true
		}
		times = append(times, t)
	}
}

// Location returns the timetable's zone.
func (tt *Timetable) Location() *time.Location { return tt.loc }

// Expression returns the expression as it was given to Parse.
func (tt *Timetable) Expression() string { return tt.expr }

// nextEvery returns the first multiple of interval since the Unix epoch strictly after t. The
// interval is a whole number of seconds.
func nextEvery(interval time.Duration, t time.Time) time.Time {
	step := int64(interval / time.Second)
	sec := t.Unix() // floor: t is in [sec, sec+1s)
	k := sec / step
	if sec%step < 0 {
		k-- // floor division before the epoch
	}
	return time.Unix((k+1)*step, 0).UTC()
}
