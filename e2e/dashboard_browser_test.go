package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"
)

// The dashboard's end-to-end test drives the real binary with a real headless Chromium (Debian's
// chromium package; .ci/run installs it). It skips with a message when no browser is found.
//
// Screenshots go to a temporary directory, or to $PRUNNER_SCREENSHOTS when set. With
// UPDATE_DOCS_SCREENSHOT=1 the job page's screenshot is also written to docs/dashboard-job.png.

const dashboardPipelines = `
pipelines:
  release:
    tasks:
      checkout:
        script:
          - echo "checking out {{ .branch }}"
          - sleep 0.5
      build:
        depends_on: [checkout]
        script:
          - 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do echo "[build] {{ .branch }}: compiling package $i of 14"; sleep 0.35; done'
          - echo "[build] binary size 12.4 MB"
      lint:
        depends_on: [checkout]
        script:
          - echo "[lint] 214 files checked"
          - sleep 1
      test:
        depends_on: [build, lint]
        script:
          - for i in 1 2 3 4; do echo "[test] suite $i passed"; sleep 0.2; done
          - 'echo "warning: 1 flaky test skipped" >&2'
      package:
        depends_on: [test]
        script:
          - echo "[package] release {{ .version }} for {{ .branch }}"
      docs:
        depends_on: [test]
        script:
          - echo "[docs] 36 pages"
  long:
    tasks:
      wait:
        script:
          - echo "waiting for a long time"
          - sleep 300
`

func chromiumPath() string {
	if p := os.Getenv("PRUNNER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// browserTab starts a headless Chromium with a fresh profile and returns a tab's context. Every
// page of the tab records Content-Security-Policy violations in window.__csp.
func browserTab(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("no chromium binary found (install Debian's chromium, or set PRUNNER_CHROMIUM): skipping the browser test")
	}
	profile := t.TempDir()
	marker := newMarker(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Env(markerEnv+"="+marker),
		// Chromium keeps its singleton socket in a directory of its own below TMPDIR and leaves
		// it there: give it the test's, which the test removes.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
		reapMarked(t, marker)
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', function (e) { window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });`,
	})
	if err != nil {
		t.Fatalf("install CSP recorder: %v", err)
	}
	return ctx
}

type tab struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// click clicks the element sel matches on a page that live updates change. An update (an SSE
// swap) may replace the element between the moment chromedp finds it and the click, which then
// fails with "Could not find node with given id": the element that replaced it is clicked, until
// the timeout.
func (b *tab) click(what, sel string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(sel)))
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "node with given id") || time.Now().After(deadline) {
			b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *tab) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true. A poll cut short by a navigation
// (a form submit in flight) is started again on the new page.
func (b *tab) waitFor(what, cond string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		_, err = chromedp.Run(b.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(50*time.Millisecond)))
		// A navigation while polling destroys the page's JavaScript context ("navigated or
		// closed", "Cannot find context with specified id", "Execution context was
		// destroyed"): poll the new page until the deadline.
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		b.screenshot("timeout-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("waiting for %s (%s): %v; page text:\n%.3000s", what, cond, err, b.eval(`document.body ? document.body.innerText : ''`))
	}
}

func (b *tab) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

func (b *tab) screenshot(name string) []byte {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return nil
	}
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return png
}

// noCSPViolations fails when the current page reported a CSP violation.
func (b *tab) noCSPViolations(page string) {
	b.t.Helper()
	if v := b.eval(`JSON.stringify(window.__csp || [])`); v != "[]" {
		b.t.Errorf("%s: CSP violations %s", page, v)
	}
}

// colorScheme emulates prefers-color-scheme ("" for the default).
func (b *tab) colorScheme(scheme string) {
	b.t.Helper()
	params := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, params); err != nil {
		b.t.Fatalf("emulate %s colour scheme: %v", scheme, err)
	}
}

func tid(id string) string { return `[data-testid="` + id + `"]` }

func jsString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

func TestDashboardInBrowser(t *testing.T) {
	ctx := browserTab(t)
	shots := os.Getenv("PRUNNER_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &tab{t: t, ctx: ctx, shots: shots}
	s := newServer(t, dashboardPipelines).start()
	token := mintToken(t, s.secret, jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(time.Hour).Unix()})

	// A browser that opens / lands on the login page; a pasted token signs in.
	b.do("open the dashboard", chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.CSS(tid("login-token"))))
	if loc := b.location(); !strings.Contains(loc, "/ui/login") {
		t.Fatalf("opening / led to %s, want the login page", loc)
	}
	b.noCSPViolations("login")
	b.screenshot("01-login")
	b.do("sign in",
		chromedp.SetValue(chromedp.CSS(tid("login-token")), "Bearer "+token),
		chromedp.Click(chromedp.CSS(tid("login-submit"))),
		chromedp.WaitVisible(chromedp.CSS(tid("pipelines"))),
	)
	if user := b.eval(`document.querySelector('[data-testid="user"]').textContent.trim()`); user != "ada" {
		t.Errorf("signed in as %q, want ada", user)
	}
	b.noCSPViolations("pipelines")
	b.screenshot("02-pipelines")

	// Start the release pipeline with variables through the form; the new job opens.
	row := `[data-pipeline="release"] `
	b.do("open the start form", chromedp.Click(chromedp.CSS(row+tid("start-toggle"))), chromedp.WaitVisible(chromedp.CSS(row+tid("start-form"))))
	b.eval(`(function () {
		var f = document.querySelector('[data-pipeline="release"] [data-testid="start-form"]');
		var keys = f.querySelectorAll('[data-testid="var-key"]'), values = f.querySelectorAll('[data-testid="var-value"]');
		keys[0].value = 'branch'; values[0].value = 'main';
		keys[1].value = 'version'; values[1].value = '1.4.2';
		return '';
	})()`)
	b.screenshot("03-start-form")
	b.do("start the job", chromedp.Click(chromedp.CSS(row+tid("start-submit"))), chromedp.WaitVisible(chromedp.CSS(tid("job"))))
	jobURL := b.location()
	jobID := b.eval(`document.querySelector('[data-testid="job"]').dataset.jobId`)
	if vars := b.eval(`document.querySelector('[data-testid="job-variables"]').innerText`); !strings.Contains(vars, "branch") || !strings.Contains(vars, "main") || !strings.Contains(vars, "1.4.2") {
		t.Errorf("job variables shown: %q", vars)
	}
	if api := s.job(jobID); api.Variables["branch"] != "main" || api.Variables["version"] != "1.4.2" || api.User != "ada" {
		t.Errorf("API sees the job as %+v", api)
	}

	// With no task chosen, the log panel follows the task that matters: once checkout has
	// ended, a running task's panel and output replace it without a reload.
	b.eval(`window.__noReload = 'yes'`)
	b.waitFor("the log panel to switch to a running task",
		`['build', 'lint'].includes(document.querySelector('[data-testid="log"]').dataset.task)`, 15*time.Second)
	b.waitFor("the running task's output in the switched panel",
		`/\[(build|lint)\]/.test(document.querySelector('[data-testid="log-stdout"]').textContent)`, 15*time.Second)
	if b.eval(`window.__noReload || ''`) != "yes" {
		t.Errorf("the job page reloaded to switch its log panel")
	}

	// Open the build task's log from the graph, then watch without reloading: log lines
	// appear, node colours change, and the job ends as succeeded.
	b.click("open the build log from the graph", `[data-testid="graph-node"][data-task="build"]`, 10*time.Second)
	b.do("wait for the build log", chromedp.WaitVisible(chromedp.CSS(`[data-testid="log"][data-task="build"]`)))
	if !strings.HasPrefix(b.location(), jobURL+"?task=build") {
		t.Errorf("graph node led to %s", b.location())
	}
	b.eval(`window.__noReload = 'yes'`)
	b.waitFor("the build to run", `document.querySelector('[data-testid="graph-node"][data-task="build"]').dataset.status === 'running'`, 15*time.Second)
	b.waitFor("build output", `document.querySelector('[data-testid="log-stdout"]').textContent.includes('compiling package 5 of 14')`, 20*time.Second)
	if status := b.eval(`document.querySelector('[data-testid="job-status"]').dataset.status`); status != "running" {
		t.Errorf("job status while building = %q, want running", status)
	}
	b.noCSPViolations("job")
	png := b.screenshot("04-job-running")
	if os.Getenv("UPDATE_DOCS_SCREENSHOT") == "1" && png != nil {
		if err := os.WriteFile(filepath.Join("..", "docs", "dashboard-job.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.waitFor("more build output", `document.querySelector('[data-testid="log-stdout"]').textContent.includes('binary size 12.4 MB')`, 20*time.Second)
	b.waitFor("the job to succeed", `document.querySelector('[data-testid="job-status"]').dataset.status === 'succeeded'`, 30*time.Second)
	if b.eval(`window.__noReload || ''`) != "yes" {
		t.Errorf("the job page reloaded")
	}
	// The head, graph and task list are separate events of the stream: wait for each.
	b.waitFor("every graph node done", `Array.from(document.querySelectorAll('[data-testid="graph-node"]')).map(n => n.dataset.status).join() === 'done,done,done,done,done,done'`, 10*time.Second)
	b.waitFor("a timeline bar for every task", `document.querySelectorAll('[data-testid="timeline-bar"]').length === 6`, 10*time.Second)
	b.waitFor("the end of the build log", `document.querySelector('[data-testid="log-head"] [data-testid="status"]').dataset.status === 'done'`, 10*time.Second)
	lines := b.eval(`document.querySelector('[data-testid="log-stdout"]').textContent`)
	if strings.Count(lines, "compiling package") != 14 {
		t.Errorf("build log has %d package lines, want 14 (no gaps, no duplicates):\n%s", strings.Count(lines, "compiling package"), lines)
	}
	b.screenshot("05-job-done")
	b.colorScheme("dark")
	b.screenshot("05-job-done-dark")
	b.colorScheme("")

	// The jobs page shows a job started elsewhere without a reload.
	b.do("open the jobs page", chromedp.Navigate(s.url+"/ui/jobs"), chromedp.WaitVisible(chromedp.CSS(tid("jobs-table"))))
	b.eval(`window.__noReload = 'yes'`)
	other := s.schedule("release", map[string]any{"branch": "feature/x", "version": "2"})
	b.waitFor("the new job in the list", `!!document.querySelector('[data-testid="job-row"][data-job-id=`+jsString(other)+`]')`, 10*time.Second)
	b.waitFor("the new job to finish in the list", `document.querySelector('[data-testid="job-row"][data-job-id=`+jsString(other)+`]').dataset.status === 'succeeded'`, 40*time.Second)
	if b.eval(`window.__noReload || ''`) != "yes" {
		t.Errorf("the jobs page reloaded")
	}
	b.noCSPViolations("jobs")
	b.screenshot("06-jobs")
	b.do("narrow the window", chromedp.EmulateViewport(390, 844))
	b.screenshot("06-jobs-phone")
	b.do("open the job on a phone", chromedp.Navigate(jobURL), chromedp.WaitVisible(chromedp.CSS(tid("job"))))
	b.screenshot("06-job-phone")
	b.do("widen the window", chromedp.EmulateViewport(1280, 800))

	// Cancel a long job, with the confirmation step.
	b.do("open the pipelines page", chromedp.Navigate(s.url+"/ui/"), chromedp.WaitVisible(chromedp.CSS(tid("pipelines"))))
	b.do("start the long job",
		chromedp.Click(chromedp.CSS(`[data-pipeline="long"] `+tid("start-toggle"))),
		chromedp.Click(chromedp.CSS(`[data-pipeline="long"] `+tid("start-submit"))),
		chromedp.WaitVisible(chromedp.CSS(tid("job"))),
	)
	longID := b.eval(`document.querySelector('[data-testid="job"]').dataset.jobId`)
	b.waitFor("the long job's output", `document.querySelector('[data-testid="log-stdout"]').textContent.includes('waiting for a long time')`, 15*time.Second)
	b.click("ask to cancel", tid("job-cancel"), 10*time.Second)
	b.do("wait for the confirmation", chromedp.WaitVisible(chromedp.CSS(tid("confirm-cancel"))))
	b.screenshot("07-confirm-cancel")
	b.do("confirm", chromedp.Click(chromedp.CSS(tid("confirm-cancel-submit"))), chromedp.WaitVisible(chromedp.CSS(tid("job"))))
	b.waitFor("the job to be canceled", `document.querySelector('[data-testid="job-status"]').dataset.status === 'canceled'`, 20*time.Second)
	if j := s.job(longID); !j.Canceled {
		t.Errorf("API: long job not canceled: %+v", j)
	}
	b.screenshot("08-canceled")

	// Sign out, then sign in with a token that expires in a moment: once it has, pages say so.
	b.do("sign out", chromedp.Click(chromedp.CSS(tid("logout"))), chromedp.WaitVisible(chromedp.CSS(tid("login-form"))))
	expired := mintToken(t, s.secret, jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(-time.Minute).Unix()})
	b.do("paste an expired token",
		chromedp.SetValue(chromedp.CSS(tid("login-token")), expired),
		chromedp.Click(chromedp.CSS(tid("login-submit"))),
	)
	// The sign-out page shows a flash too: wait for the new page's message, not just any flash.
	b.waitFor("the expired-token message",
		`(document.querySelector('[data-testid="flash"]') || {textContent: ""}).textContent.includes("This token expired at")`, 10*time.Second)
	if msg := b.eval(`document.querySelector('[data-testid="flash"]').textContent`); !strings.Contains(msg, "This token expired at") {
		t.Errorf("expired token message = %q", msg)
	}
	short := mintToken(t, s.secret, jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(3 * time.Second).Unix()})
	b.do("sign in briefly",
		chromedp.SetValue(chromedp.CSS(tid("login-token")), short),
		chromedp.Click(chromedp.CSS(tid("login-submit"))),
		chromedp.WaitVisible(chromedp.CSS(tid("pipelines"))),
	)
	time.Sleep(time.Until(time.Now().Add(4 * time.Second)))
	b.do("open a page after expiry", chromedp.Navigate(s.url+"/ui/jobs"), chromedp.WaitVisible(chromedp.CSS(tid("flash"))))
	if msg := b.eval(`document.querySelector('[data-testid="flash"]').textContent`); !strings.Contains(msg, "session has expired") {
		t.Errorf("after expiry the login page says %q", msg)
	}
	if loc := b.location(); !strings.Contains(loc, "reason=expired") || !strings.Contains(loc, "next=%2Fui%2Fjobs") {
		t.Errorf("after expiry at %s", loc)
	}
	b.screenshot("09-expired")
	t.Logf("screenshots in %s", shots)
}
