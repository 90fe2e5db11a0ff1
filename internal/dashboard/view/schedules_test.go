package view

import (
	"testing"
	"time"
	// The zones of these tests also on hosts without tzdata (the binary embeds it too).
	_ "time/tzdata"
)

// TestZonedShowsTheSchedulesZone: the schedule's wall time with the zone's abbreviation,
// across DST changes (Lord Howe shifts by 30 minutes), with the year only when it differs.
func TestZonedShowsTheSchedulesZone(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		zone string
		at   time.Time
		want string
	}{
		{"Europe/Berlin", time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), "Sun Mar 29 03:00 CEST"},
		{"Europe/Berlin", time.Date(2026, 3, 28, 2, 0, 0, 0, time.UTC), "Sat Mar 28 03:00 CET"},
		{"America/New_York", time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), "Sun Nov 1 01:30 EST"},
		{"Australia/Lord_Howe", time.Date(2026, 4, 4, 14, 0, 0, 0, time.UTC), "Sun Apr 5 01:00 +11"},
		{"Australia/Lord_Howe", time.Date(2026, 4, 4, 15, 0, 0, 0, time.UTC), "Sun Apr 5 01:30 +1030"},
		{"", time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC), "Fri Jan 1 2027 03:00 UTC"},
		{"Not/A_Zone", time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC), "Mon Mar 2 03:00 UTC"},
	} {
		z := Zoned(tc.at, ZoneOf(tc.zone), now)
		if z.InZone != tc.want {
			t.Errorf("Zoned(%v, %q).InZone = %q, want %q", tc.at, tc.zone, z.InZone, tc.want)
		}
		if want := tc.at.UTC().Format(time.RFC3339); z.Viewer.ISO != want {
			t.Errorf("Zoned(%v).Viewer.ISO = %q, want %q", tc.at, z.Viewer.ISO, want)
		}
	}
}

func TestSchedulePathKeepsTheIDsSlash(t *testing.T) {
	p := Paths{Base: "/prunner"}
	if got := p.Schedule("night ly/full?x"); got != "/prunner/ui/schedules/night%20ly/full%3Fx" {
		t.Errorf("Schedule() = %q", got)
	}
	if got := p.ScheduleAction("a/b", "pause"); got != "/prunner/ui/schedules/a/b/pause" {
		t.Errorf("ScheduleAction() = %q", got)
	}
	if got := p.Schedules("a&b"); got != "/prunner/ui/schedules?pipeline=a%26b" {
		t.Errorf("Schedules() = %q", got)
	}
}
