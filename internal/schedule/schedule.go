// Package schedule computes when a schedule fires: it parses an expression (five cron fields, a
// descriptor such as @daily, or "@every <duration>") in an IANA time zone with
// github.com/robfig/cron/v3, and wraps the parser where its answers differ from cronie's
// daylight-saving rules. It knows nothing of pipelines or stores: times in, times out.
package schedule

import (
	_ "time/tzdata" // zones work on hosts without a tz database

	"time"
)

// Timetable is a parsed expression in a zone. It is immutable and safe for concurrent use.
type Timetable struct {
	expr string
	loc  *time.Location
	// INTERIM (issue 11 skeleton): fields of the parsed expression.
}

// Parse parses expr in the zone named timezone ("" = UTC). Errors say what is wrong in words a
// user can act on: a bad field, an unknown zone, an expression that never fires, an interval
// under one second, a TZ= or CRON_TZ= prefix (the zone belongs in timezone).
func Parse(expr, timezone string) (*Timetable, error) {
	panic("INTERIM: schedule.Parse")
}

// Next returns the first fire time strictly after t, in UTC, following cronie's rules for
// daylight-saving changes (see the package tests).
func (tt *Timetable) Next(t time.Time) time.Time { panic("INTERIM") }

// Upcoming returns the next n fire times after t.
func (tt *Timetable) Upcoming(t time.Time, n int) []time.Time { panic("INTERIM") }

// Between returns the fire times in (from, to], in order, at most max of them; more reports
// whether there were more than max.
func (tt *Timetable) Between(from, to time.Time, max int) (times []time.Time, more bool) {
	panic("INTERIM")
}

// Describe says the expression in plain words, with the zone: "every day at 03:00,
// Europe/Berlin", "every 15 minutes", "at minute 0 of every hour, UTC".
func (tt *Timetable) Describe() string { panic("INTERIM") }

// Location returns the timetable's zone.
func (tt *Timetable) Location() *time.Location { return tt.loc }
