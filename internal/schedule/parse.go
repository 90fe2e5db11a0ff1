package schedule

import (
	"errors"
	"fmt"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser reads five fields and the descriptors. It never sees a zone: Parse refuses a TZ= or
// CRON_TZ= prefix before calling it (the library panics on a bare "TZ=UTC").
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// starBit is the library's mark of a field written as "*" (SpecSchedule's top bit).
const starBit = 1 << 63

// descriptors are the named expressions Parse accepts besides "@every <duration>".
var descriptors = []string{"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}

// field describes one of the five cron fields, for messages.
type field struct {
	name     string
	min, max int
	hint     string
}

var fields = [5]field{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, hint: " (or a name such as JAN)"},
	{name: "day of week", min: 0, max: 6, hint: " (Sunday is 0 or SUN)"},
}

// Parse parses expr in the zone named timezone ("" = UTC). Errors say what is wrong in words a
// user can act on: a bad field, an unknown zone, an expression that never fires, an interval
// under one second, a TZ= or CRON_TZ= prefix (the zone belongs in timezone).
func Parse(expr, timezone string) (*Timetable, error) {
	loc, err := LoadZone(timezone)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(expr)
	tt := &Timetable{expr: expr, loc: loc}
	switch {
	case text == "":
		return nil, errors.New("cron expression is empty: write five fields such as \"0 3 * * *\", a descriptor such as @daily, or \"@every 15m\"")
	case hasZonePrefix(text):
		return nil, fmt.Errorf("cron %q: a zone prefix (TZ= or CRON_TZ=) is not allowed in the expression; give the zone in timezone", expr)
	case strings.HasPrefix(text, "@every"):
		tt.every, err = parseEvery(expr, text)
		if err != nil {
			return nil, err
		}
		return tt, nil
	}
	if tt.spec, err = parseCron(expr, text); err != nil {
		return nil, err
	}
	if err := checkFires(expr, tt.spec); err != nil {
		return nil, err
	}
	tt.hour, tt.minute, tt.fixed = fixedTime(tt.spec)
	return tt, nil
}

// LoadZone loads the IANA zone called name; "" is UTC. "Local" is refused: a schedule must not
// depend on the zone of the host it runs on.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if strings.EqualFold(name, "Local") {
		return nil, fmt.Errorf("timezone %q: the host's zone is not allowed; give an IANA zone name such as Europe/Berlin, or UTC", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: unknown time zone; give an IANA zone name such as Europe/Berlin, America/New_York or UTC", name)
	}
	return loc, nil
}

func hasZonePrefix(text string) bool {
	upper := strings.ToUpper(text)
	return strings.HasPrefix(upper, "TZ=") || strings.HasPrefix(upper, "CRON_TZ=")
}

// parseEvery reads "@every <duration>": at least one second, a whole number of seconds.
func parseEvery(expr, text string) (time.Duration, error) {
	arg := strings.TrimSpace(strings.TrimPrefix(text, "@every"))
	if arg == "" || !strings.HasPrefix(text, "@every ") {
		return 0, fmt.Errorf("cron %q: write \"@every <duration>\", such as \"@every 15m\" or \"@every 1h30m\"", expr)
	}
	d, err := time.ParseDuration(arg)
	switch {
	case err != nil:
		return 0, fmt.Errorf("cron %q: %q is not a duration; write one such as 90s, 15m or 1h30m", expr, arg)
	case d < time.Second:
		return 0, fmt.Errorf("cron %q: the interval must be at least 1s", expr)
	case d%time.Second != 0:
		return 0, fmt.Errorf("cron %q: the interval must be a whole number of seconds", expr)
	}
	return d, nil
}

// parseCron reads five fields or a descriptor with the library. A bad field is found by parsing
// each field alone, so that the message can name it.
func parseCron(expr, text string) (*cron.SpecSchedule, error) {
	if strings.HasPrefix(text, "@") {
		known := false
		for _, d := range descriptors {
			known = known || d == text
		}
		if !known {
			return nil, fmt.Errorf("cron %q: unknown descriptor; use one of %s, or \"@every <duration>\"", expr, strings.Join(descriptors, " "))
		}
	} else {
		parts := strings.Fields(text)
		if len(parts) != len(fields) {
			return nil, fmt.Errorf("cron %q: expected 5 fields (minute hour day-of-month month day-of-week), found %d", expr, len(parts))
		}
		for i, part := range parts {
			probe := []string{"*", "*", "*", "*", "*"}
			probe[i] = part
			if _, err := parser.Parse(strings.Join(probe, " ")); err != nil {
				return nil, fmt.Errorf("cron %q: %s", expr, fieldProblem(fields[i], part, err))
			}
		}
	}
	s, err := parser.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %v", expr, err)
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("cron %q: unsupported expression", expr)
	}
	return spec, nil
}

// The library's messages for a bad field, turned into words by fieldProblem.
var (
	reAbove     = regexp.MustCompile(`end of range \((\d+)\) above maximum`)
	reBelow     = regexp.MustCompile(`beginning of range \((\d+)\) below minimum`)
	reBackwards = regexp.MustCompile(`beginning of range \((\d+)\) beyond end of range \((\d+)\)`)
	reNotNumber = regexp.MustCompile(`failed to parse int from ([^:]*):`)
)

// fieldProblem says what is wrong with one field (part) given the library's error.
func fieldProblem(f field, part string, err error) string {
	msg := err.Error()
	outOfRange := func(v string) string {
		return fmt.Sprintf("%s %s out of range %d-%d%s", f.name, v, f.min, f.max, f.hint)
	}
	switch {
	case reAbove.MatchString(msg):
		return outOfRange(reAbove.FindStringSubmatch(msg)[1])
	case reBelow.MatchString(msg):
		return outOfRange(reBelow.FindStringSubmatch(msg)[1])
	case strings.Contains(msg, "negative number"):
		return fmt.Sprintf("%s %q: negative numbers are not allowed (range %d-%d)", f.name, part, f.min, f.max)
	case reBackwards.MatchString(msg):
		m := reBackwards.FindStringSubmatch(msg)
		return fmt.Sprintf("%s %q: the range %s-%s runs backwards; write the smaller value first", f.name, part, m[1], m[2])
	case strings.Contains(msg, "step of range"):
		return fmt.Sprintf("%s %q: the step after \"/\" must be a positive number", f.name, part)
	case reNotNumber.MatchString(msg):
		return fmt.Sprintf("%s %q: %q is not a number%s", f.name, part, reNotNumber.FindStringSubmatch(msg)[1], f.hint)
	case strings.Contains(msg, "too many"):
		return fmt.Sprintf("%s %q: write a value, a range a-b, a step */n or a-b/n, or a list of those separated by commas", f.name, part)
	}
	return fmt.Sprintf("%s %q: %v", f.name, part, err)
}

// checkFires refuses an expression whose day fields can never match a calendar day ("0 0 30 2
// *"). The check is exact, without scanning a calendar: when day of month or day of week is
// "*", both must match (and every month holds every weekday); when both are restricted, either
// one is enough, and the day of week always is. So only "a restricted day of month with day of
// week *" can fail: some allowed month must have some allowed day (February counts 29 days:
// "0 0 29 2 *" fires in leap years).
func checkFires(expr string, s *cron.SpecSchedule) error {
	if s.Dom&starBit != 0 || s.Dow&starBit == 0 {
		return nil
	}
	var months, days []string
	for m := 1; m <= 12; m++ {
		if s.Month&(1<<m) == 0 {
			continue
		}
		months = append(months, time.Month(m).String())
		for d := 1; d <= maxDaysIn(time.Month(m)); d++ {
			if s.Dom&(1<<d) != 0 {
				return nil
			}
		}
	}
	for d := 1; d <= 31; d++ {
		if s.Dom&(1<<d) != 0 {
			days = append(days, strconv.Itoa(d))
		}
	}
	return fmt.Errorf("cron %q never fires: %s has no day %s", expr, joinOr(months), joinOr(days))
}

// maxDaysIn is the most days month m has (29 for February).
func maxDaysIn(m time.Month) int {
	switch m {
	case time.February:
		return 29
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// joinOr joins words as "a, b or c".
func joinOr(words []string) string {
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// fixedTime reports whether the minute and hour fields are single values, and which.
func fixedTime(s *cron.SpecSchedule) (hour, minute int, fixed bool) {
	h, m := s.Hour&^starBit, s.Minute&^starBit
	if bits.OnesCount64(h) != 1 || bits.OnesCount64(m) != 1 {
		return 0, 0, false
	}
	return bits.TrailingZeros64(h), bits.TrailingZeros64(m), true
}
