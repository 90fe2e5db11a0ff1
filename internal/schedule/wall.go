package schedule

import (
	"time"
)

// maxScanDays bounds the calendar days Next looks at: nine years, more than the longest gap
// between two days an accepted expression allows (February 29 of 2096 and of 2104).
const maxScanDays = 9*366 + 2

// period is a stretch of time in which the zone keeps one offset (from time.Time.ZoneBounds).
// A zero start or end means the period is open on that side.
type period struct {
	start, end time.Time
	offset     time.Duration
}

func (p period) contains(u time.Time) bool {
	return (p.start.IsZero() || !u.Before(p.start)) && (p.end.IsZero() || u.Before(p.end))
}

// zonePeriods are the periods of a zone that overlap a window, in order.
type zonePeriods []period

// periodsAround returns the periods of loc that hold the instants whose local date is day
// (given as 00:00 UTC of that date), with a wide margin: offsets lie within a day of UTC.
// Neighbouring periods with the same offset are merged, so a day without a transition has one.
func periodsAround(loc *time.Location, day time.Time) zonePeriods {
	from, to := day.Add(-26*time.Hour), day.Add(50*time.Hour)
	ps, ok := boundedPeriods(loc, from, to)
	if !ok {
		ps = sampledPeriods(loc, from, to)
	}
	return ps.merged()
}

// boundedPeriods reads the periods from time.Time.ZoneBounds. It reports false when an answer
// does not hold the instant asked about: for instants past the zone's last listed transition
// (where the zone's rule string applies, from 2037 on), the standard library's bounds are
// clipped at years and can miss the instant at the boundary.
func boundedPeriods(loc *time.Location, from, to time.Time) (zonePeriods, bool) {
	ps := make(zonePeriods, 0, 4)
	for u := from; len(ps) < 16; {
		local := u.In(loc)
		start, end := local.ZoneBounds()
		if (!start.IsZero() && start.After(u)) || (!end.IsZero() && !end.After(u)) {
			return nil, false
		}
		_, off := local.Zone()
		ps = append(ps, period{start: start, end: end, offset: time.Duration(off) * time.Second})
		if end.IsZero() || !end.Before(to) {
			return ps, true
		}
		u = end
	}
	return nil, false
}

// sampledPeriods finds the transitions in [from, to] by reading the offset every hour and
// searching each change to the second. It is the fallback of boundedPeriods; the outer periods
// are left open.
func sampledPeriods(loc *time.Location, from, to time.Time) zonePeriods {
	offsetAt := func(u time.Time) time.Duration {
		_, off := u.In(loc).Zone()
		return time.Duration(off) * time.Second
	}
	ps := zonePeriods{{offset: offsetAt(from)}}
	for a := from; a.Before(to); a = a.Add(time.Hour) {
		b := a.Add(time.Hour)
		if offsetAt(b) == ps[len(ps)-1].offset {
			continue
		}
		lo, hi := a, b // offset(lo) is the old one, offset(hi) the new one
		for hi.Sub(lo) > time.Second {
			mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
			if offsetAt(mid) == ps[len(ps)-1].offset {
				lo = mid
			} else {
				hi = mid
			}
		}
		ps[len(ps)-1].end = hi
		ps = append(ps, period{start: hi, offset: offsetAt(hi)})
	}
	return ps
}

// merged joins neighbouring periods with the same offset.
func (ps zonePeriods) merged() zonePeriods {
	out := ps[:1]
	for _, p := range ps[1:] {
		if last := &out[len(out)-1]; last.offset == p.offset {
			last.end = p.end
			continue
		}
		out = append(out, p)
	}
	return out
}

// occurrences returns the instants whose local wall time is wall (a wall time written as a UTC
// time), in order: none in a spring-forward gap, two in a fall-back overlap.
func (ps zonePeriods) occurrences(wall time.Time) []time.Time {
	var out []time.Time
	for _, p := range ps {
		if u := wall.Add(-p.offset); p.contains(u) {
			out = append(out, u)
		}
	}
	return out
}

// gapEnd returns the transition whose gap holds the wall time (the first instant after the
// jump), or the zero time when wall is not in a gap.
func (ps zonePeriods) gapEnd(wall time.Time) time.Time {
	for i := 0; i+1 < len(ps); i++ {
		t := ps[i].end
		if !wall.Before(t.Add(ps[i].offset)) && wall.Before(t.Add(ps[i+1].offset)) {
			return t
		}
	}
	return time.Time{}
}

// maxOffset is the largest offset of the periods.
func (ps zonePeriods) maxOffset() time.Duration {
	m := ps[0].offset
	for _, p := range ps[1:] {
		m = max(m, p.offset)
	}
	return m
}

// nextCron returns the first fire time of the cron fields strictly after t. It walks the local
// calendar days from the day before t's local date and takes the earliest fire time after t; it
// stops once a day starts after the best fire time found (fall-back overlaps can put a later
// day's first instant before an earlier day's last one, so the first day with a fire time is not
// always the answer).
func (tt *Timetable) nextCron(t time.Time) time.Time {
	y, m, d := t.In(tt.loc).Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	var best time.Time
	for i := 0; i < maxScanDays; i, day = i+1, day.AddDate(0, 0, 1) {
		matches := tt.dayMatches(day)
		if best.IsZero() && !matches {
			continue
		}
		ps := periodsAround(tt.loc, day)
		if !best.IsZero() && day.Add(-ps.maxOffset()).After(best) {
			break // this day's first instant comes after the best fire time
		}
		if !matches {
			continue
		}
		if f := tt.firstOnDay(day, ps, t); !f.IsZero() && (best.IsZero() || f.Before(best)) {
			best = f
		}
	}
	return best.UTC()
}

// dayMatches applies the month, day-of-month and day-of-week fields to a date (cron's rule:
// when both day fields are restricted, either one matching is enough).
func (tt *Timetable) dayMatches(day time.Time) bool {
	s := tt.spec
	if s.Month&(1<<uint(day.Month())) == 0 {
		return false
	}
	dom := s.Dom&(1<<uint(day.Day())) != 0
	dow := s.Dow&(1<<uint(day.Weekday())) != 0
	if s.Dom&starBit != 0 || s.Dow&starBit != 0 {
		return dom && dow
	}
	return dom || dow
}

// firstOnDay returns the earliest fire time after t among the wall times of day (zero when
// none).
func (tt *Timetable) firstOnDay(day time.Time, ps zonePeriods, t time.Time) time.Time {
	if tt.fixed {
		f := tt.fixedInstant(day.Add(time.Duration(tt.hour)*time.Hour+time.Duration(tt.minute)*time.Minute), ps)
		if f.After(t) {
			return f
		}
		return time.Time{}
	}
	if len(ps) == 1 {
		return tt.firstOnSteadyDay(day, ps[0].offset, t)
	}
	return tt.firstOnChangingDay(day, ps, t)
}

// fixedInstant is when a fixed-time schedule fires for a wall time: its first occurrence, or,
// when the wall time falls into a spring-forward gap, the instant of the jump.
func (tt *Timetable) fixedInstant(wall time.Time, ps zonePeriods) time.Time {
	if occ := ps.occurrences(wall); len(occ) > 0 {
		return occ[0]
	}
	return ps.gapEnd(wall)
}

// firstOnSteadyDay handles a day with one offset throughout: wall times map to instants in order,
// so the first matching wall time after t is the answer.
func (tt *Timetable) firstOnSteadyDay(day time.Time, offset time.Duration, t time.Time) time.Time {
	after := t.Add(offset) // t as a wall time
	for h := 0; h < 24; h++ {
		hour := day.Add(time.Duration(h) * time.Hour)
		if tt.spec.Hour&(1<<h) == 0 || hour.Add(time.Hour).Before(after) {
			continue
		}
		for m := 0; m < 60; m++ {
			if tt.spec.Minute&(1<<m) == 0 {
				continue
			}
			if wall := hour.Add(time.Duration(m) * time.Minute); wall.After(after) {
				return wall.Add(-offset)
			}
		}
	}
	return time.Time{}
}

// firstOnChangingDay handles a day around a transition: every occurrence of every matching wall
// time fires (nonexistent ones do not), and the earliest after t is the answer.
func (tt *Timetable) firstOnChangingDay(day time.Time, ps zonePeriods, t time.Time) time.Time {
	var best time.Time
	for h := 0; h < 24; h++ {
		if tt.spec.Hour&(1<<h) == 0 {
			continue
		}
		for m := 0; m < 60; m++ {
			if tt.spec.Minute&(1<<m) == 0 {
				continue
			}
			for _, u := range ps.occurrences(day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)) {
				if u.After(t) && (best.IsZero() || u.Before(best)) {
					best = u
				}
			}
		}
	}
	return best
}
