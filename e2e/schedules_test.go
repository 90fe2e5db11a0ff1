package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scheduledJob is a job of the job list with the fields of schedules.
type scheduledJob struct {
	ID           string  `json:"id"`
	User         string  `json:"user"`
	Status       string  `json:"status"`
	Start        *string `json:"start"`
	End          *string `json:"end"`
	Schedule     string  `json:"schedule"`
	ScheduledFor string  `json:"scheduledFor"`
	Variables    map[string]any
}

// scheduledJobs returns the jobs of schedule id (every job of a schedule when id is ""), by
// fire time.
func (s *server) scheduledJobs(id string) []scheduledJob {
	s.t.Helper()
	status, body := s.do("GET", "/pipelines/jobs", nil)
	if status != http.StatusOK {
		s.t.Fatalf("GET /pipelines/jobs: %d %s", status, body)
	}
	var list struct {
		Jobs []scheduledJob `json:"jobs"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		s.t.Fatal(err)
	}
	var jobs []scheduledJob
	for _, j := range list.Jobs {
		if j.Schedule != "" && (id == "" || j.Schedule == id) {
			jobs = append(jobs, j)
		}
	}
	sort.Slice(jobs, func(i, k int) bool { return jobs[i].ScheduledFor < jobs[k].ScheduledFor })
	return jobs
}

// fireTime parses a job's scheduledFor.
func fireTime(t *testing.T, j scheduledJob) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, j.ScheduledFor)
	if err != nil {
		t.Fatalf("job %s: scheduledFor %q: %v", j.ID, j.ScheduledFor, err)
	}
	return at
}

// assertOncePerFireTime fails when a fire time of a schedule started more than one job.
func assertOncePerFireTime(t *testing.T, jobs []scheduledJob) {
	t.Helper()
	seen := map[string]string{}
	for _, j := range jobs {
		key := j.Schedule + "@" + j.ScheduledFor
		if other, ok := seen[key]; ok {
			t.Errorf("fire time %s started two jobs: %s and %s", key, other, j.ID)
		}
		seen[key] = j.ID
	}
}

// stopGracefully stops the server with SIGINT and waits for it to exit.
func (s *server) stopGracefully() {
	s.t.Helper()
	s.signal(syscall.SIGINT)
	if code := s.wait(30 * time.Second); code != 0 {
		s.t.Fatalf("server exited with %d\n%s", code, s.output.String())
	}
}

func TestScheduleFiresJobsOfTheSchedule(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  tick:
    tasks:
      t: {script: ["echo {{ .who }}"]}
    schedules:
      - name: every-second
        cron: "@every 1s"
        variables: {who: clock}
`).start()
	var jobs []scheduledJob
	eventually(t, 10*time.Second, "three jobs of the schedule", func() bool {
		jobs = s.scheduledJobs("tick/every-second")
		return len(jobs) >= 3
	})
	for _, j := range jobs {
		if j.User != "schedule:tick/every-second" || j.Variables["who"] != "clock" {
			t.Errorf("job %+v; want user schedule:tick/every-second and the schedule's variables", j)
		}
		if at := fireTime(t, j); !at.Equal(at.Truncate(time.Second)) {
			t.Errorf("scheduledFor %v is not a whole second", at)
		}
	}
	assertOncePerFireTime(t, jobs)
	j := s.waitFinished(jobs[0].ID)
	if out, _ := s.logs(j.ID, "t"); out != "clock\n" {
		t.Errorf("the scheduled job wrote %q, want its variable", out)
	}
}

// missedFile is a pipelines file with one schedule every 2 seconds and the given missed policy.
func missedFile(policy string) string {
	return fmt.Sprintf(`
pipelines:
  m:
    tasks:
      t: {script: ["true"]}
    schedules:
      - name: s
        cron: "@every 2s"
        missed: %s
`, policy)
}

// justAfterEvenSecond waits until a little after a fire time of "@every 2s", so that the next
// one is almost two seconds away.
func justAfterEvenSecond() time.Time {
	now := time.Now()
	next := now.Truncate(2 * time.Second).Add(2*time.Second + 150*time.Millisecond)
	time.Sleep(time.Until(next))
	return time.Now()
}

func TestScheduleMissedPoliciesAcrossARestart(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{"skip", "once", "all"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, missedFile(policy)).start()
			eventually(t, 10*time.Second, "a first firing", func() bool { return len(s.scheduledJobs("m/s")) > 0 })
			s.stopGracefully()
			stopped := time.Now().UTC()
			time.Sleep(5 * time.Second)
			restarted := justAfterEvenSecond().UTC()
			s.restart()
			// The fire times that passed while it was down.
			var missed []time.Time
			for at := stopped.Truncate(2 * time.Second).Add(2 * time.Second); !at.After(restarted); at = at.Add(2 * time.Second) {
				missed = append(missed, at)
			}
			// Past the next regular fire time: the catch-up is done by then.
			eventually(t, 10*time.Second, "a firing after the restart", func() bool {
				jobs := s.scheduledJobs("m/s")
				return fireTime(t, jobs[len(jobs)-1]).After(restarted)
			})
			jobs := s.scheduledJobs("m/s")
			assertOncePerFireTime(t, jobs)
			var fired []time.Time
			for _, j := range jobs {
				if at := fireTime(t, j); at.After(stopped) && !at.After(restarted) {
					fired = append(fired, at)
				}
			}
			var want []time.Time
			switch policy {
			case "once":
				want = missed[len(missed)-1:]
			case "all":
				want = missed
			}
			if fmt.Sprint(fired) != fmt.Sprint(want) {
				t.Errorf("missed: %s fired %v of the fire times %v missed while down; want %v", policy, fired, missed, want)
			}
		})
	}
}

func TestScheduleOverlapSkip(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  slow:
    concurrency: 5
    tasks:
      t: {script: ["sleep 3"]}
    schedules:
      - name: s
        cron: "@every 1s"
        overlap: skip
`).start()
	time.Sleep(5 * time.Second)
	jobs := s.scheduledJobs("slow/s")
	if len(jobs) == 0 || len(jobs) > 2 {
		t.Fatalf("%d jobs in 5 s of a 3-second task fired every second with overlap: skip; want 1 or 2", len(jobs))
	}
	if len(jobs) == 2 {
		first := s.waitFinished(jobs[0].ID)
		second := s.job(jobs[1].ID)
		if second.Start == nil || *second.Start < *first.End {
			t.Errorf("the second job started at %v, before the first ended at %v", second.Start, *first.End)
		}
	}
}

// scheduleJSON is a schedule as the API shows it.
type scheduleJSON struct {
	ID        string   `json:"id"`
	Source    string   `json:"source"`
	Paused    bool     `json:"paused"`
	PauseNote string   `json:"pauseNote"`
	Cron      string   `json:"cron"`
	Next      []string `json:"next"`
}

func (s *server) getSchedule(id string) scheduleJSON {
	s.t.Helper()
	status, body := s.do("GET", "/schedules/"+id, nil)
	if status != http.StatusOK {
		s.t.Fatalf("GET /schedules/%s: %d %s", id, status, body)
	}
	var v scheduleJSON
	if err := json.Unmarshal(body, &v); err != nil {
		s.t.Fatal(err)
	}
	return v
}

func TestFileSchedulesSurviveReloadsWithTheirPause(t *testing.T) {
	t.Parallel()
	file := func(extra string) string {
		return `
pipelines:
  p:
    tasks:
      t: {script: ["true"]}
    schedules:
      - name: paused
        cron: "@every 1s"
` + extra
	}
	s := newServer(t, file("")).start()
	status, body := s.do("PATCH", "/schedules/p/paused", map[string]any{"paused": true, "note": "until the migration is done"})
	if status != http.StatusOK {
		t.Fatalf("pause: %d %s", status, body)
	}
	pausedAt := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	// A reload that changes the file: a second schedule appears, the paused one stays.
	writeFile(t, filepath.Join(s.dir, "pipelines.yml"), file(`      - name: added
        cron: "@every 1s"
`))
	s.signal(syscall.SIGUSR1)
	eventually(t, 10*time.Second, "the added schedule fires", func() bool { return len(s.scheduledJobs("p/added")) > 0 })
	if v := s.getSchedule("p/paused"); !v.Paused || v.PauseNote != "until the migration is done" || v.Source != "file" {
		t.Errorf("after the reload: %+v; want still paused with the note", v)
	}
	// And a restart.
	s.stopGracefully()
	s.restart()
	time.Sleep(2 * time.Second)
	if v := s.getSchedule("p/paused"); !v.Paused {
		t.Errorf("after the restart: %+v; want still paused", v)
	}
	for _, j := range s.scheduledJobs("p/paused") {
		if fireTime(t, j).After(pausedAt) {
			t.Errorf("the paused schedule fired at %s", j.ScheduledFor)
		}
	}
	// A file schedule cannot be changed or deleted through the API.
	if status, body := s.do("PATCH", "/schedules/p/paused", map[string]any{"cron": "@every 5s"}); status != http.StatusConflict || !strings.Contains(string(body), "pipelines.yml") {
		t.Errorf("PATCH cron of a file schedule = %d %s; want 409 naming the file", status, body)
	}
	if status, _ := s.do("DELETE", "/schedules/p/paused", nil); status != http.StatusConflict {
		t.Errorf("DELETE of a file schedule = %d, want 409", status)
	}
	// Resumed: it fires again, without catching up the paused fire times.
	resumed := time.Now().UTC()
	if status, body := s.do("PATCH", "/schedules/p/paused", map[string]any{"paused": false}); status != http.StatusOK {
		t.Fatalf("resume: %d %s", status, body)
	}
	eventually(t, 10*time.Second, "the resumed schedule fires", func() bool {
		for _, j := range s.scheduledJobs("p/paused") {
			if fireTime(t, j).After(resumed) {
				return true
			}
		}
		return false
	})
	for _, j := range s.scheduledJobs("p/paused") {
		if at := fireTime(t, j); at.After(pausedAt) && !at.After(resumed.Truncate(time.Second)) {
			t.Errorf("resume caught up the paused fire time %s", j.ScheduledFor)
		}
	}
	// Removed from the file: it stops.
	writeFile(t, filepath.Join(s.dir, "pipelines.yml"), "pipelines:\n  p:\n    tasks:\n      t: {script: [\"true\"]}\n")
	s.signal(syscall.SIGUSR1)
	eventually(t, 10*time.Second, "the schedules removed", func() bool {
		status, _ := s.do("GET", "/schedules/p/added", nil)
		return status == http.StatusNotFound
	})
	time.Sleep(1500 * time.Millisecond)
	n := len(s.scheduledJobs(""))
	time.Sleep(2 * time.Second)
	if m := len(s.scheduledJobs("")); m != n {
		t.Errorf("%d jobs of removed schedules started after the reload", m-n)
	}
}

func TestScheduleAPI(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  p:
    tasks:
      t: {script: ["true"]}
`).start()
	create := map[string]any{"pipeline": "p", "name": "hourly", "cron": "0 * * * *", "timezone": "Australia/Lord_Howe", "variables": map[string]any{"k": "v"}}
	status, body := s.do("POST", "/schedules", create)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var v scheduleJSON
	if err := json.Unmarshal(body, &v); err != nil || v.ID != "p/hourly" || v.Source != "api" || len(v.Next) != 5 {
		t.Fatalf("created %s (%v); want p/hourly from the API with five next fire times", body, err)
	}
	if status, _ := s.do("POST", "/schedules", create); status != http.StatusConflict {
		t.Errorf("create of an existing name = %d, want 409", status)
	}
	for name, bad := range map[string]map[string]any{
		"bad expression":   {"pipeline": "p", "name": "x", "cron": "0 0 30 2 *"},
		"unknown zone":     {"pipeline": "p", "name": "x", "cron": "0 * * * *", "timezone": "Mars/Olympus"},
		"unknown pipeline": {"pipeline": "nope", "name": "x", "cron": "0 * * * *"},
	} {
		if status, body := s.do("POST", "/schedules", bad); status != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
			t.Errorf("create with %s = %d %s; want 400 with an error", name, status, body)
		}
	}
	if status, body := s.do("PATCH", "/schedules/p/hourly", map[string]any{"paused": true, "note": "n"}); status != http.StatusOK || !strings.Contains(string(body), `"pauseNote":"n"`) {
		t.Errorf("pause = %d %s", status, body)
	}
	status, body = s.do("POST", "/schedules/p/hourly/trigger", nil)
	if status != http.StatusAccepted {
		t.Fatalf("trigger: %d %s", status, body)
	}
	var trig struct {
		JobID string `json:"jobId"`
	}
	_ = json.Unmarshal(body, &trig)
	if j := s.waitFinished(trig.JobID); j.User != "schedule:p/hourly" || j.Variables["k"] != "v" {
		t.Errorf("triggered job %+v", j)
	}
	to := time.Now().UTC().Truncate(time.Hour)
	from := to.Add(-3 * time.Hour)
	status, body = s.do("POST", "/schedules/p/hourly/backfill", map[string]any{"from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)})
	if status >= 300 {
		t.Fatalf("backfill: %d %s", status, body)
	}
	// Hourly in a zone 10:30 or 11 hours ahead: three fire times in any three hours.
	var backfilled []string
	for _, j := range s.scheduledJobs("p/hourly") {
		if j.ID != trig.JobID {
			backfilled = append(backfilled, j.ScheduledFor)
		}
	}
	if len(backfilled) != 3 {
		t.Errorf("backfill of three hours started jobs for %v, want three", backfilled)
	}
	status, body = s.do("POST", "/schedules/p/hourly/backfill", map[string]any{"from": to.Add(-2000 * time.Hour).Format(time.RFC3339), "to": to.Format(time.RFC3339)})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "1000") {
		t.Errorf("backfill beyond the bound = %d %s; want 400 naming it", status, body)
	}
	if status, body := s.do("PATCH", "/schedules/p/hourly", map[string]any{"paused": false, "cron": "30 * * * *"}); status != http.StatusOK || !strings.Contains(string(body), `"paused":false`) {
		t.Errorf("resume and change = %d %s", status, body)
	}
	if status, _ := s.do("DELETE", "/schedules/p/hourly", nil); status >= 300 {
		t.Errorf("delete = %d", status)
	}
	if status, _ := s.do("GET", "/schedules/p/hourly", nil); status != http.StatusNotFound {
		t.Errorf("GET after delete = %d, want 404", status)
	}
}

func TestKill9DuringFiringsNeverStartsAFireTimeTwice(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("pipelines:\n  k:\n    concurrency: 50\n    tasks:\n      t: {script: [\"true\"]}\n    schedules:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "      - {name: s%02d, cron: \"@every 1s\", missed: all}\n", i)
	}
	s := newServer(t, b.String()).start()
	for round := range 4 {
		// Kill at a different point of a second each round: before, during and after a burst.
		time.Sleep(time.Duration(1100+round*230) * time.Millisecond)
		s.kill9()
		s.restart()
	}
	time.Sleep(2 * time.Second)
	jobs := s.scheduledJobs("")
	if len(jobs) < 20 {
		t.Fatalf("only %d jobs of 20 schedules firing every second", len(jobs))
	}
	assertOncePerFireTime(t, jobs)
}
