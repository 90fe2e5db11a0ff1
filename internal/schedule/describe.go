package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/prunner-dev/prunner/internal/durfmt"
)

// Describe says the expression in plain words, with the zone where it matters: "every day at
// 03:00, Europe/Berlin", "every 15 minutes", "every hour at minute 0, UTC", "at 09:30 on Monday
// to Friday, America/New_York", "every 1h30m". Shapes it has no words for are given as the
// expression itself: "cron 5,10 */2 1-7 * *, UTC".
func (tt *Timetable) Describe() string {
	if tt.every > 0 {
		return "every " + durfmt.Format(tt.every)
	}
	if text, zoneFree := tt.describeFields(); text != "" {
		if zoneFree {
			return text
		}
		return text + ", " + tt.loc.String()
	}
	return "cron " + strings.Join(strings.Fields(tt.expr), " ") + ", " + tt.loc.String()
}

// describeFields puts the common shapes of the five fields into words ("" when it has none).
// zoneFree is true when the zone does not change the fire times (every minute, or every few
// minutes with a step that divides 15: all zones' offsets are multiples of 15 minutes).
func (tt *Timetable) describeFields() (text string, zoneFree bool) {
	s := tt.spec
	minutes, hours := values(s.Minute, 0, 59), values(s.Hour, 0, 23)
	allDays := isAll(s.Month, 1, 12) && isAll(s.Dom, 1, 31) && isAll(s.Dow, 0, 6)
	allHours := len(hours) == 24
	switch {
	case !allDays && !tt.fixed:
		return "", false
	case allHours && len(minutes) == 60:
		return "every minute", true
	case allHours:
		if step, ok := stepOf(minutes, 60); ok {
			return fmt.Sprintf("every %d minutes", step), 15%step == 0
		}
		if len(minutes) == 1 {
			return fmt.Sprintf("every hour at minute %d", minutes[0]), false
		}
		return "", false
	case len(minutes) == 1:
		if step, ok := stepOf(hours, 24); ok {
			return fmt.Sprintf("every %d hours at minute %d", step, minutes[0]), false
		}
	}
	if !tt.fixed {
		return "", false
	}
	return tt.describeDays(fmt.Sprintf("%02d:%02d", tt.hour, tt.minute)), false
}

// describeDays says on which days a fixed-time schedule fires at clock ("" when the day fields
// have no simple words).
func (tt *Timetable) describeDays(clock string) string {
	s := tt.spec
	anyMonth, anyDom, anyDow := isAll(s.Month, 1, 12), isAll(s.Dom, 1, 31), isAll(s.Dow, 0, 6)
	doms, months, dows := values(s.Dom, 1, 31), values(s.Month, 1, 12), values(s.Dow, 0, 6)
	switch {
	case anyMonth && anyDom && anyDow:
		return "every day at " + clock
	case anyMonth && anyDom && len(dows) == 1:
		return fmt.Sprintf("every %s at %s", time.Weekday(dows[0]), clock)
	case anyMonth && anyDom:
		return fmt.Sprintf("at %s on %s", clock, weekdays(dows))
	case anyMonth && anyDow && len(doms) == 1:
		return fmt.Sprintf("at %s on day %d of every month", clock, doms[0])
	case anyDow && len(doms) == 1 && len(months) == 1:
		return fmt.Sprintf("every year on %s %d at %s", time.Month(months[0]), doms[0], clock)
	}
	return ""
}

// weekdays names a set of weekdays: "Monday to Friday" for a run, else a list.
func weekdays(days []int) string {
	names := make([]string, len(days))
	for i, d := range days {
		names[i] = time.Weekday(d).String()
	}
	if len(days) > 2 && days[len(days)-1]-days[0] == len(days)-1 {
		return names[0] + " to " + names[len(names)-1]
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// values lists the values set in a field's bits.
func values(bits uint64, lo, hi int) []int {
	var out []int
	for v := lo; v <= hi; v++ {
		if bits&(1<<v) != 0 {
			out = append(out, v)
		}
	}
	return out
}

// isAll reports whether a field allows every value (written "*" or spelled out).
func isAll(bits uint64, lo, hi int) bool { return len(values(bits, lo, hi)) == hi-lo+1 }

// stepOf reports whether vs is 0, k, 2k, … with k > 1 dividing period, so that the gaps are even
// across the wrap too ("*/15" of minutes, but not "*/7").
func stepOf(vs []int, period int) (int, bool) {
	if len(vs) < 2 || vs[0] != 0 {
		return 0, false
	}
	k := vs[1]
	if period%k != 0 || len(vs) != period/k {
		return 0, false
	}
	for i, v := range vs {
		if v != i*k {
			return 0, false
		}
	}
	return k, true
}
