package schedule

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func mustParse(t *testing.T, expr, zone string) *Timetable {
	t.Helper()
	tt, err := Parse(expr, zone)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", expr, zone, err)
	}
	return tt
}

// TestNextAcrossDaylightSaving checks single fire times around both changes of each zone, given
// as UTC instants. Fixed-time schedules fire once at the jump in a spring-forward gap and once
// at the first occurrence in a fall-back overlap.
func TestNextAcrossDaylightSaving(t *testing.T) {
	tests := []struct {
		name, expr, zone string
		after            time.Time
		want             []time.Time
	}{
		{
			name: "Berlin spring: 02:30 does not exist, fires at the jump (03:00 CEST)",
			expr: "30 2 * * *", zone: "Europe/Berlin", after: utc(2026, 3, 27, 12, 0),
			want: []time.Time{utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)},
		},
		{
			name: "Berlin fall: 02:30 occurs twice, fires at the first (CEST) only",
			expr: "30 2 * * *", zone: "Europe/Berlin", after: utc(2026, 10, 23, 12, 0),
			want: []time.Time{utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)},
		},
		{
			name: "Berlin fall: asked between the two 02:30s, the next is the following day",
			expr: "30 2 * * *", zone: "Europe/Berlin", after: utc(2026, 10, 25, 0, 45),
			want: []time.Time{utc(2026, 10, 26, 1, 30)},
		},
		{
			name: "New York spring: 02:30 does not exist, fires at 03:00 EDT",
			expr: "30 2 * * *", zone: "America/New_York", after: utc(2026, 3, 7, 12, 0),
			want: []time.Time{utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)},
		},
		{
			name: "New York fall: 01:30 fires at the first (EDT) occurrence",
			expr: "30 1 * * *", zone: "America/New_York", after: utc(2026, 10, 31, 12, 0),
			want: []time.Time{utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)},
		},
		{
			name: "Lord Howe spring (30-minute jump at 02:00): 02:15 fires at the jump",
			expr: "15 2 * * *", zone: "Australia/Lord_Howe", after: utc(2026, 10, 3, 12, 0),
			want: []time.Time{utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15)},
		},
		{
			name: "Lord Howe fall (back 30 minutes at 02:00): 01:45 fires at the first (+11) occurrence",
			expr: "45 1 * * *", zone: "Australia/Lord_Howe", after: utc(2026, 4, 4, 12, 0),
			want: []time.Time{utc(2026, 4, 4, 14, 45), utc(2026, 4, 5, 15, 15)},
		},
		{
			name: "Lord Howe: 02:30 exists on the spring day (after the jump)",
			expr: "30 2 * * *", zone: "Australia/Lord_Howe", after: utc(2026, 10, 3, 12, 0),
			want: []time.Time{utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 30)},
		},
		{
			name: "Berlin spring in 2045 (past the listed transitions: the zone's rule applies)",
			expr: "30 2 * * *", zone: "Europe/Berlin", after: utc(2045, 3, 25, 12, 0),
			want: []time.Time{utc(2045, 3, 26, 1, 0), utc(2045, 3, 27, 0, 30)},
		},
		{
			name: "Berlin fall in 2045",
			expr: "30 2 * * *", zone: "Europe/Berlin", after: utc(2045, 10, 28, 12, 0),
			want: []time.Time{utc(2045, 10, 29, 0, 30), utc(2045, 10, 30, 1, 30)},
		},
		{
			name: "New York across the new year of 2041",
			expr: "15 14 1 * *", zone: "America/New_York", after: utc(2040, 12, 1, 19, 15),
			want: []time.Time{utc(2041, 1, 1, 19, 15), utc(2041, 2, 1, 19, 15)},
		},
		{
			name: "Santiago fall (back at midnight): 23:30 fires at its first occurrence only",
			expr: "30 23 * * *", zone: "America/Santiago", after: utc(2026, 4, 4, 12, 0),
			want: []time.Time{utc(2026, 4, 5, 2, 30), utc(2026, 4, 6, 3, 30)},
		},
		{
			name: "Santiago fall: between the two 23:30s, the next is the following day",
			expr: "30 23 * * *", zone: "America/Santiago", after: utc(2026, 4, 5, 2, 45),
			want: []time.Time{utc(2026, 4, 6, 3, 30)},
		},
		{
			name: "Santiago fall: hourly fires in the repeated hour of the previous date",
			expr: "0 * * * *", zone: "America/Santiago", after: utc(2026, 4, 5, 1, 30),
			want: []time.Time{utc(2026, 4, 5, 2, 0), utc(2026, 4, 5, 3, 0), utc(2026, 4, 5, 4, 0)},
		},
		{
			name: "Santiago spring (midnight does not exist): @daily fires at the jump, 01:00",
			expr: "@daily", zone: "America/Santiago", after: utc(2026, 9, 5, 12, 0),
			want: []time.Time{utc(2026, 9, 6, 4, 0), utc(2026, 9, 7, 3, 0)},
		},
		{
			name: "UTC daily",
			expr: "0 3 * * *", zone: "", after: utc(2026, 3, 29, 3, 0),
			want: []time.Time{utc(2026, 3, 30, 3, 0), utc(2026, 3, 31, 3, 0)},
		},
		{
			name: "weekdays in New York across the spring change",
			expr: "30 9 * * 1-5", zone: "America/New_York", after: utc(2026, 3, 6, 15, 0),
			want: []time.Time{utc(2026, 3, 9, 13, 30), utc(2026, 3, 10, 13, 30)},
		},
		{
			name: "hourly in Berlin keeps its rhythm through the fall-back hour",
			expr: "0 * * * *", zone: "Europe/Berlin", after: utc(2026, 10, 24, 23, 30),
			want: []time.Time{utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 2, 0)},
		},
		{
			name: "hourly in Berlin skips the hour that does not exist",
			expr: "0 * * * *", zone: "Europe/Berlin", after: utc(2026, 3, 28, 23, 30),
			want: []time.Time{utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)},
		},
		{
			name: "Feb 29 fires in leap years only",
			expr: "0 0 29 2 *", zone: "", after: utc(2026, 1, 1, 0, 0),
			want: []time.Time{utc(2028, 2, 29, 0, 0), utc(2032, 2, 29, 0, 0)},
		},
		{
			name: "day of month or day of week when both are restricted",
			expr: "0 12 13 * 5", zone: "", after: utc(2026, 2, 1, 0, 0),
			want: []time.Time{utc(2026, 2, 6, 12, 0), utc(2026, 2, 13, 12, 0), utc(2026, 2, 20, 12, 0)},
		},
		{
			name: "@weekly is Sunday 00:00 in the zone",
			expr: "@weekly", zone: "Europe/Berlin", after: utc(2026, 12, 1, 0, 0),
			want: []time.Time{utc(2026, 12, 5, 23, 0), utc(2026, 12, 12, 23, 0)},
		},
		{
			name: "@every counts from the Unix epoch",
			expr: "@every 7m", zone: "Europe/Berlin", after: time.Unix(7*60*1000+5, 0).UTC(),
			want: []time.Time{time.Unix(7*60*1001, 0).UTC(), time.Unix(7*60*1002, 0).UTC()},
		},
		{
			name: "@every from an exact multiple goes to the next one",
			expr: "@every 1h", zone: "", after: utc(2026, 3, 29, 1, 0),
			want: []time.Time{utc(2026, 3, 29, 2, 0), utc(2026, 3, 29, 3, 0)},
		},
		{
			name: "@every before the epoch",
			expr: "@every 1h", zone: "", after: utc(1969, 12, 31, 22, 30),
			want: []time.Time{utc(1969, 12, 31, 23, 0), utc(1970, 1, 1, 0, 0)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := mustParse(t, tc.expr, tc.zone)
			got := tt.Upcoming(tc.after, len(tc.want))
			if !equalTimes(got, tc.want) {
				t.Fatalf("Upcoming(%v) = %v, want %v", tc.after, got, tc.want)
			}
			for _, g := range got {
				if g.Location() != time.UTC {
					t.Fatalf("fire time %v is not in UTC", g)
				}
			}
		})
	}
}

// TestFiringsPerDay counts the fire times of one local day: schedules whose minute or hour is a
// wildcard or step keep their rhythm in real time, fixed-time ones fire exactly once.
func TestFiringsPerDay(t *testing.T) {
	tests := []struct {
		expr, zone string
		day        time.Time // the local date
		want       int
	}{
		{"0 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 0), 23},
		{"0 * * * *", "Europe/Berlin", utc(2026, 3, 28, 0, 0), 24},
		{"0 * * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 0), 25},
		{"*/15 * * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 0), 92},
		{"*/15 * * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 0), 100},
		{"30 2 * * *", "Europe/Berlin", utc(2026, 3, 29, 0, 0), 1},
		{"30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 0), 1},
		{"0 * * * *", "America/New_York", utc(2026, 3, 8, 0, 0), 23},
		{"0 * * * *", "America/New_York", utc(2026, 11, 1, 0, 0), 25},
		{"30 1 * * *", "America/New_York", utc(2026, 11, 1, 0, 0), 1},
		{"0 * * * *", "Australia/Lord_Howe", utc(2026, 10, 4, 0, 0), 23}, // 02:00 does not exist
		{"0 * * * *", "Australia/Lord_Howe", utc(2026, 4, 5, 0, 0), 24},  // no whole hour repeats
		{"*/15 * * * *", "Australia/Lord_Howe", utc(2026, 10, 4, 0, 0), 94},
		{"*/15 * * * *", "Australia/Lord_Howe", utc(2026, 4, 5, 0, 0), 98}, // 01:30 and 01:45 twice
		{"45 1 * * *", "Australia/Lord_Howe", utc(2026, 4, 5, 0, 0), 1},
		{"* * * * *", "", utc(2026, 3, 29, 0, 0), 1440},
		{"0 * * * *", "America/Santiago", utc(2026, 4, 4, 0, 0), 25},
		{"0 * * * *", "America/Santiago", utc(2026, 9, 6, 0, 0), 23},
		{"0 * * * *", "Europe/Berlin", utc(2045, 10, 29, 0, 0), 25},
		{"0 * * * *", "Europe/Berlin", utc(2045, 3, 26, 0, 0), 23},
		{"0 * * * *", "Europe/Berlin", utc(2040, 12, 31, 0, 0), 24},
	}
	for _, tc := range tests {
		t.Run(tc.expr+" "+tc.zone+" "+tc.day.Format("2006-01-02"), func(t *testing.T) {
			tt := mustParse(t, tc.expr, tc.zone)
			loc := tt.Location()
			all, _ := tt.Between(tc.day.AddDate(0, 0, -2), tc.day.AddDate(0, 0, 3), 50000)
			var times []time.Time // those whose local date is the day
			for _, f := range all {
				if y, m, d := f.In(loc).Date(); time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Equal(tc.day) {
					times = append(times, f)
				}
			}
			if len(times) != tc.want {
				t.Fatalf("%d fire times, want %d: %v", len(times), tc.want, times)
			}
			for i := 1; i < len(times); i++ {
				if !times[i].After(times[i-1]) {
					t.Fatalf("fire times out of order or repeated: %v then %v", times[i-1], times[i])
				}
			}
		})
	}
}

// TestNextAgreesWithTheLibraryOnPlainDays: away from daylight-saving changes the fire times are
// the library's.
func TestNextAgreesWithTheLibraryOnPlainDays(t *testing.T) {
	exprs := []string{"* * * * *", "*/7 * * * *", "5,10 */2 1-7 * *", "0 9 * * MON-FRI", "15 14 1 * *",
		"0 0 1 1 *", "0 22 * * 1-5", "23 0-20/2 * * *", "@hourly", "@daily", "@monthly", "@yearly", "0 12 13 * 5"}
	for _, expr := range exprs {
		for _, zone := range []string{"", "Asia/Kathmandu", "America/New_York"} {
			tt := mustParse(t, expr, zone)
			lib, err := parser.Parse("TZ=" + tt.Location().String() + " " + expr)
			if err != nil {
				t.Fatal(err)
			}
			from := utc(2026, 5, 1, 0, 0)
			a, b := from, from
			for range 200 {
				a, b = tt.Next(a), lib.Next(b).UTC()
				if !a.Equal(b) {
					t.Fatalf("%q in %q: Next = %v, the library says %v", expr, zone, a, b)
				}
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ expr, zone, want string }{
		{"0 25 * * *", "", `cron "0 25 * * *": hour 25 out of range 0-23`},
		{"60 * * * *", "", `minute 60 out of range 0-59`},
		{"0 0 0 * *", "", `day of month 0 out of range 1-31`},
		{"0 0 * 13 *", "", `month 13 out of range 1-12`},
		{"0 0 * * 7", "", `day of week 7 out of range 0-6 (Sunday is 0 or SUN)`},
		{"0 0 * * FOO", "", `day of week "FOO": "FOO" is not a number`},
		{"0 5-2 * * *", "", `hour "5-2": the range 5-2 runs backwards`},
		{"*/0 * * * *", "", `minute "*/0": the step after "/" must be a positive number`},
		{"0 0 * *", "", `expected 5 fields (minute hour day-of-month month day-of-week), found 4`},
		{"0 0 0 * * *", "", `expected 5 fields`},
		{"", "", `cron expression is empty`},
		{"   ", "", `cron expression is empty`},
		{"@fortnightly", "", `unknown descriptor`},
		{"@every", "", `write "@every <duration>"`},
		{"@every soon", "", `"soon" is not a duration`},
		{"@every 500ms", "", `at least 1s`},
		{"@every 1.5s", "", `whole number of seconds`},
		{"@every -5m", "", `at least 1s`},
		{"TZ=UTC", "", `a zone prefix (TZ= or CRON_TZ=) is not allowed in the expression; give the zone in timezone`},
		{"TZ=Europe/Berlin 0 3 * * *", "", `zone prefix`},
		{"CRON_TZ=UTC 0 3 * * *", "", `zone prefix`},
		{"cron_tz=UTC 0 3 * * *", "", `zone prefix`},
		{"0 0 30 2 *", "", `cron "0 0 30 2 *" never fires: February has no day 30`},
		{"0 0 31 4,6 *", "", `never fires: April or June has no day 31`},
		{"0 0 30,31 2 *", "", `never fires: February has no day 30 or 31`},
		{"0 3 * * *", "Mars/Olympus_Mons", `timezone "Mars/Olympus_Mons": unknown time zone`},
		{"0 3 * * *", "Local", `the host's zone is not allowed`},
	}
	for _, tc := range tests {
		t.Run(tc.expr+" "+tc.zone, func(t *testing.T) {
			tt, err := Parse(tc.expr, tc.zone)
			if err == nil {
				t.Fatalf("accepted; Describe: %s", tt.Describe())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, expr := range []string{"0 0 29 2 *", "0 0 31 * *", "0 0 30 2 1", "0 0 31 2,3 *", "@hourly", "@daily",
		"@midnight", "@weekly", "@monthly", "@yearly", "@annually", "@every 1s", "@every 90s", "@every 36h",
		" 0 3 * * * ", "0 0 * jan-mar sun", "? * * * *"} {
		tt := mustParse(t, expr, "Europe/Berlin")
		if next := tt.Next(utc(2026, 1, 1, 0, 0)); next.IsZero() {
			t.Errorf("%q: no next fire time", expr)
		}
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct{ expr, zone, want string }{
		{"0 3 * * *", "Europe/Berlin", "every day at 03:00, Europe/Berlin"},
		{"*/15 * * * *", "", "every 15 minutes"},
		{"*/15 * * * *", "Asia/Kathmandu", "every 15 minutes"},
		{"*/30 * * * *", "Asia/Kathmandu", "every 30 minutes, Asia/Kathmandu"},
		{"* * * * *", "Europe/Berlin", "every minute"},
		{"0 * * * *", "", "every hour at minute 0, UTC"},
		{"@hourly", "", "every hour at minute 0, UTC"},
		{"5 */6 * * *", "UTC", "every 6 hours at minute 5, UTC"},
		{"30 9 * * 1-5", "America/New_York", "at 09:30 on Monday to Friday, America/New_York"},
		{"0 18 * * 1,3,5", "", "at 18:00 on Monday, Wednesday and Friday, UTC"},
		{"0 18 * * 6,0", "", "at 18:00 on Sunday and Saturday, UTC"},
		{"@weekly", "", "every Sunday at 00:00, UTC"},
		{"@daily", "", "every day at 00:00, UTC"},
		{"@monthly", "", "at 00:00 on day 1 of every month, UTC"},
		{"@yearly", "Europe/Berlin", "every year on January 1 at 00:00, Europe/Berlin"},
		{"15 4 24 12 *", "", "every year on December 24 at 04:15, UTC"},
		{"@every 1h30m", "Europe/Berlin", "every 1h30m"},
		{"@every 15m", "", "every 15m"},
		{"@every 90s", "", "every 1m30s"},
		{"@every 24h", "", "every 24h"},
		{"5,10 */2 1-7 * *", "", "cron 5,10 */2 1-7 * *, UTC"},
		{"*/7 * * * *", "", "cron */7 * * * *, UTC"},
		{"0 9 * * 1-5", "", "at 09:00 on Monday to Friday, UTC"},
	}
	for _, tc := range tests {
		if got := mustParse(t, tc.expr, tc.zone).Describe(); got != tc.want {
			t.Errorf("Describe(%q, %q) = %q, want %q", tc.expr, tc.zone, got, tc.want)
		}
	}
}

func TestBetweenIsBounded(t *testing.T) {
	tt := mustParse(t, "* * * * *", "")
	from := utc(2026, 1, 1, 0, 0)
	times, more := tt.Between(from, from.Add(10*time.Minute), 3)
	if !more || !equalTimes(times, []time.Time{utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 3)}) {
		t.Fatalf("Between = %v, more %v", times, more)
	}
	times, more = tt.Between(from, from.Add(3*time.Minute), 3)
	if more || len(times) != 3 {
		t.Fatalf("exactly max in range: %v, more %v", times, more)
	}
	times, more = tt.Between(from, from.Add(30*time.Second), 3)
	if more || len(times) != 0 {
		t.Fatalf("empty range: %v, more %v", times, more)
	}
}

func TestMissed(t *testing.T) {
	hourly := mustParse(t, "0 * * * *", "")
	now := utc(2026, 6, 1, 12, 30)
	cursor := utc(2026, 6, 1, 9, 0) // fired last at 09:00; 10, 11 and 12 were missed
	tests := []struct {
		name   string
		cursor time.Time
		policy string
		window time.Duration
		want   []time.Time
	}{
		{"skip", cursor, MissedSkip, 24 * time.Hour, nil},
		{"unknown policy is skip", cursor, "sometimes", 24 * time.Hour, nil},
		{"once: the latest", cursor, MissedOnce, 24 * time.Hour, []time.Time{utc(2026, 6, 1, 12, 0)}},
		{"all: each in order", cursor, MissedAll, 24 * time.Hour, []time.Time{utc(2026, 6, 1, 10, 0), utc(2026, 6, 1, 11, 0), utc(2026, 6, 1, 12, 0)}},
		{"all: the window cuts the older ones", cursor, MissedAll, 2 * time.Hour, []time.Time{utc(2026, 6, 1, 11, 0), utc(2026, 6, 1, 12, 0)}},
		{"once: nothing in the window", cursor, MissedOnce, 20 * time.Minute, nil},
		{"all: no cursor, the window decides", time.Time{}, MissedAll, 151 * time.Minute, []time.Time{utc(2026, 6, 1, 10, 0), utc(2026, 6, 1, 11, 0), utc(2026, 6, 1, 12, 0)}},
		{"all: nothing missed", utc(2026, 6, 1, 12, 0), MissedAll, 24 * time.Hour, nil},
		{"once: zero window", cursor, MissedOnce, 0, nil},
		{"all: a fire time at now counts", utc(2026, 6, 1, 11, 30), MissedAll, time.Hour, []time.Time{utc(2026, 6, 1, 12, 0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := now
			if tc.name == "all: a fire time at now counts" {
				n = utc(2026, 6, 1, 12, 0)
			}
			if got := Missed(hourly, tc.cursor, n, tc.policy, tc.window); !equalTimes(got, tc.want) {
				t.Fatalf("Missed = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("all is capped at MaxMissed, earliest first", func(t *testing.T) {
		every := mustParse(t, "* * * * *", "")
		got := Missed(every, time.Time{}, now, MissedAll, 48*time.Hour)
		if len(got) != MaxMissed || !got[0].Equal(now.Add(-48*time.Hour).Add(time.Minute)) {
			t.Fatalf("%d times from %v", len(got), got[0])
		}
	})
	t.Run("once looks far back cheaply", func(t *testing.T) {
		yearly := mustParse(t, "@yearly", "")
		got := Missed(yearly, time.Time{}, now, MissedOnce, 3*365*24*time.Hour)
		if !equalTimes(got, []time.Time{utc(2026, 1, 1, 0, 0)}) {
			t.Fatalf("Missed = %v", got)
		}
	})
}

func TestJitterDelay(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	if d := JitterDelay(0, rnd); d != 0 {
		t.Fatalf("no jitter: %v", d)
	}
	if d := JitterDelay(-time.Second, nil); d != 0 {
		t.Fatalf("negative jitter: %v", d)
	}
	const max = 30 * time.Second
	var low, high bool
	for range 10000 {
		d := JitterDelay(max, rnd)
		if d < 0 || d >= max {
			t.Fatalf("delay %v outside [0, %v)", d, max)
		}
		low, high = low || d < max/10, high || d > max*9/10
	}
	if !low || !high {
		t.Fatalf("delays do not spread over [0, %v): low %v high %v", max, low, high)
	}
	if d := JitterDelay(time.Nanosecond, nil); d != 0 {
		t.Fatalf("1ns jitter: %v", d)
	}
}

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// TestNextIsCheap guards the cost of a firing's next fire time: thousands of schedules compute one
// every minute. (A generous bound: the machine may be busy; a few microseconds is typical.)
func TestNextIsCheap(t *testing.T) {
	tt := mustParse(t, "* * * * *", "Europe/Berlin")
	at := utc(2026, 6, 1, 0, 0)
	start := time.Now()
	const n = 5000
	for range n {
		at = tt.Next(at)
	}
	if per := time.Since(start) / n; per > 200*time.Microsecond {
		t.Fatalf("Next takes %v", per)
	}
	if want := utc(2026, 6, 1, 0, 0).Add(n * time.Minute); !at.Equal(want) {
		t.Fatalf("after %d minutes: %v, want %v", n, at, want)
	}
}

// TestTwoYearsOfFireTimes walks two years of fire times in zones with daylight saving: they are
// strictly increasing, a fixed-time schedule fires exactly once per local day (at its wall time
// unless that does not exist), and an hourly one fires at every real hour whose wall time is on
// the hour.
func TestTwoYearsOfFireTimes(t *testing.T) {
	from, to := utc(2026, 1, 1, 0, 0), utc(2028, 1, 1, 0, 0)
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "UTC"} {
		t.Run(zone, func(t *testing.T) {
			daily := mustParse(t, "30 2 * * *", zone)
			times, _ := daily.Between(from, to, 10000)
			days := map[string]bool{}
			for i, f := range times {
				local := f.In(daily.Location())
				if i > 0 && !f.After(times[i-1]) {
					t.Fatalf("not increasing: %v then %v", times[i-1], f)
				}
				if start, _ := local.ZoneBounds(); (local.Hour() != 2 || local.Minute() != 30) && !start.Equal(f) {
					t.Fatalf("%v (%v) is neither 02:30 nor a transition", f, local)
				}
				key := local.Format("2006-01-02")
				if days[key] {
					t.Fatalf("two fire times on %s", key)
				}
				days[key] = true
			}
			if len(days) != 730 {
				t.Fatalf("%d days with a fire time, want 730", len(days))
			}

			hourly := mustParse(t, "0 * * * *", zone)
			got, _ := hourly.Between(from, to, 100000)
			want := 0
			for u := from.Add(time.Minute); !u.After(to); u = u.Add(time.Minute) {
				if u.In(hourly.Location()).Minute() == 0 {
					want++
				}
			}
			if len(got) != want {
				t.Fatalf("hourly: %d fire times, want %d (every real minute whose wall minute is 0)", len(got), want)
			}
		})
	}
}
