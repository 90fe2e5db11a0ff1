package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
)

const browserSchedulePipelines = `
pipelines:
  nightly:
    tasks:
      backup: {script: ["echo backup {{ .mode }}"]}
    schedules:
      - name: full
        cron: "0 3 * * *"
        timezone: Europe/Berlin
        variables: {mode: full}
`

// TestSchedulesInBrowser: the Schedules page describes a file schedule in plain words; Pause
// with a note, Resume and Run now work in a real browser; a new API schedule is created through
// the form, a bad expression shows the API's message, and a started job links to its schedule.
func TestSchedulesInBrowser(t *testing.T) {
	ctx := browserTab(t)
	shots := os.Getenv("PRUNNER_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &tab{t: t, ctx: ctx, shots: shots}
	s := newServer(t, browserSchedulePipelines).start()
	token := mintToken(t, s.secret, jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(time.Hour).Unix()})
	b.do("sign in",
		chromedp.Navigate(s.url+"/ui/login"),
		chromedp.WaitVisible(chromedp.CSS(tid("login-token"))),
		chromedp.SetValue(chromedp.CSS(tid("login-token")), "Bearer "+token),
		chromedp.Click(chromedp.CSS(tid("login-submit"))),
		chromedp.WaitVisible(chromedp.CSS(tid("pipelines"))),
	)
	b.do("open the schedules page", chromedp.Click(chromedp.CSS(tid("nav-schedules"))), chromedp.WaitVisible(chromedp.CSS(tid("schedules"))))
	row := `[data-schedule="nightly/full"] `
	if d := b.eval(`document.querySelector('[data-schedule="nightly/full"] [data-testid="schedule-description"]').textContent`); !strings.Contains(d, "every day at 03:00, Europe/Berlin") {
		t.Errorf("description %q", d)
	}
	b.noCSPViolations("schedules")
	b.screenshot("schedules")

	// Pause with a note, then resume.
	b.do("pause with a note",
		chromedp.Click(chromedp.CSS(row+tid("pause-toggle"))),
		chromedp.SetValue(chromedp.CSS(row+tid("pause-note")), "database migration"),
		chromedp.Click(chromedp.CSS(row+tid("schedule-pause"))),
	)
	b.waitFor("the pause and its note", `(document.querySelector('[data-schedule="nightly/full"] [data-testid="schedule-pause-note"]') || {textContent: ''}).textContent.includes('database migration')`, 10*time.Second)
	if v := s.getSchedule("nightly/full"); !v.Paused || v.PauseNote != "database migration" {
		t.Errorf("API sees the schedule as paused=%v note=%q", v.Paused, v.PauseNote)
	}
	b.screenshot("schedules-paused")
	b.click("resume", row+tid("schedule-resume"), 10*time.Second)
	b.waitFor("the resume", `!!document.querySelector('[data-schedule="nightly/full"] [data-testid="pause-toggle"]')`, 10*time.Second)

	// Run now: a job of the schedule starts, and its page links back to the schedule.
	b.eval(`window.__beforeRun = 'yes'`)
	b.click("run now", row+tid("schedule-run"), 10*time.Second)
	b.waitFor("the page after Run now", `!window.__beforeRun && document.readyState === 'complete'`, 10*time.Second)
	var jobID string
	eventually(t, 10*time.Second, "a job started by the schedule", func() bool {
		if jobs := s.scheduledJobs("nightly/full"); len(jobs) > 0 {
			jobID = jobs[0].ID
		}
		return jobID != ""
	})
	b.do("open the job", chromedp.Navigate(s.url+"/ui/jobs/"+jobID), chromedp.WaitVisible(chromedp.CSS(tid("job"))))
	if !strings.Contains(b.eval(`document.body.innerText`), "nightly/full") {
		t.Errorf("the job page does not name its schedule")
	}

	// Create an API schedule through the form; a bad expression first.
	b.do("open the new-schedule form", chromedp.Navigate(s.url+"/ui/schedules/new"), chromedp.WaitVisible(chromedp.CSS(tid("schedule-form"))))
	b.do("submit a bad expression",
		chromedp.SetValue(chromedp.CSS(tid("schedule-name")), "hourly"),
		chromedp.SetValue(chromedp.CSS(tid("schedule-cron-input")), "0 25 * * *"),
		chromedp.Click(chromedp.CSS(tid("schedule-submit"))),
	)
	b.waitFor("the expression's error", `(document.querySelector('[data-testid="schedule-error"]') || {textContent: ''}).textContent.includes('hour 25')`, 10*time.Second)
	b.do("fix the expression",
		chromedp.SetValue(chromedp.CSS(tid("schedule-cron-input")), "0 * * * *"),
		chromedp.Click(chromedp.CSS(tid("schedule-submit"))),
	)
	eventually(t, 10*time.Second, "the new schedule in the API", func() bool {
		status, _ := s.do("GET", "/schedules/nightly/hourly", nil)
		return status == 200
	})
	b.noCSPViolations("schedule form")
}
