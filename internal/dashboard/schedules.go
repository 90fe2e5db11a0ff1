package dashboard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/web/templates"
)

// scheduleFirings is how many of a schedule's latest firings its page shows.
const scheduleFirings = 10

// scheduleRoutes adds the schedules pages (issue 11): the list, a schedule's page, the create
// form, and the actions pause, resume, run now, edit and delete (POSTs, each redirecting).
func (d *Dashboard) scheduleRoutes(ui fiber.Router) {
	ui.Get("/schedules", d.auth, d.schedulesPage)
	ui.Get("/schedules/new", d.auth, d.newSchedulePage)
	ui.Post("/schedules/new", d.sameOrigin, d.auth, d.createSchedule)
	ui.Get("/schedules/:pipeline/:name", d.auth, d.schedulePage)
	ui.Post("/schedules/:pipeline/:name/pause", d.sameOrigin, d.auth, d.pauseSchedule)
	ui.Post("/schedules/:pipeline/:name/resume", d.sameOrigin, d.auth, d.resumeSchedule)
	ui.Post("/schedules/:pipeline/:name/run", d.sameOrigin, d.auth, d.runSchedule)
	ui.Post("/schedules/:pipeline/:name/edit", d.sameOrigin, d.auth, d.editSchedule)
	ui.Post("/schedules/:pipeline/:name/delete", d.sameOrigin, d.auth, d.deleteSchedule)
}

// scheduleID is the ID of the schedule in the request's path.
func scheduleID(c *fiber.Ctx) string { return param(c, "pipeline") + "/" + param(c, "name") }

func (d *Dashboard) schedulesPage(c *fiber.Ctx) error {
	pipe := c.Query("pipeline")
	views, err := d.cfg.Schedules.List(c.UserContext(), pipe)
	if err != nil {
		return d.fail(c, err)
	}
	l := d.layout(c, "Schedules", "schedules")
	if pipe != "" {
		l.Title = "Schedules of " + pipe
	}
	page := view.SchedulesPage{Layout: l, Pipeline: pipe, NewURL: d.paths.NewSchedule(), AllURL: d.paths.Schedules("")}
	in := view.ScheduleInput{Paths: d.paths, CSRF: l.CSRF, Now: d.now(), Next: d.paths.Schedules(pipe)}
	for _, v := range views {
		page.Schedules = append(page.Schedules, view.NewScheduleRow(v, in))
	}
	return d.render(c, fiber.StatusOK, templates.SchedulesPageView(page))
}

func (d *Dashboard) schedulePage(c *fiber.Ctx) error {
	return d.renderSchedule(c, fiber.StatusOK, scheduleID(c), nil)
}

// renderSchedule shows schedule id's page; form, when not nil, replaces the edit form (sent
// again with its error).
func (d *Dashboard) renderSchedule(c *fiber.Ctx, status int, id string, form *view.ScheduleForm) error {
	ctx := c.UserContext()
	v, err := d.cfg.Schedules.Get(ctx, id)
	if err != nil {
		return d.fail(c, err)
	}
	firings, err := d.cfg.Schedules.Firings(ctx, id, scheduleFirings)
	if err != nil {
		return d.fail(c, err)
	}
	l := d.layout(c, "Schedule "+id, "schedules")
	now := d.now()
	row := view.NewScheduleRow(v, view.ScheduleInput{Paths: d.paths, CSRF: l.CSRF, Now: now, Next: d.paths.Schedule(id)})
	page := view.SchedulePage{Layout: l, Schedule: row, SchedulesURL: d.paths.Schedules("")}
	view.ScheduleDetails(&page, v)
	loc := view.ZoneOf(v.Spec.Timezone)
	for _, f := range firings {
		page.Firings = append(page.Firings, view.NewFiringRow(d.paths, f, loc, now))
	}
	if v.Spec.Source == pipeline.SourceAPI {
		if form == nil {
			f := view.EditForm(v, d.paths.ScheduleAction(id, "edit"), l.CSRF)
			form = &f
		}
		page.Form = form
		page.DeleteURL = d.paths.ScheduleAction(id, "delete")
	}
	return d.render(c, status, templates.SchedulePageView(page))
}

// pauseSchedule pauses a schedule with the note given, and returns to the page it came from.
func (d *Dashboard) pauseSchedule(c *fiber.Ctx) error {
	paused, note := true, strings.TrimSpace(c.FormValue("note"))
	return d.patchAndReturn(c, pipeline.SchedulePatch{Paused: &paused, Note: &note})
}

// resumeSchedule resumes a paused schedule, and returns to the page it came from.
func (d *Dashboard) resumeSchedule(c *fiber.Ctx) error {
	paused := false
	return d.patchAndReturn(c, pipeline.SchedulePatch{Paused: &paused})
}

func (d *Dashboard) patchAndReturn(c *fiber.Ctx, patch pipeline.SchedulePatch) error {
	id := scheduleID(c)
	if _, err := d.cfg.Schedules.Update(c.UserContext(), id, patch); err != nil {
		return d.fail(c, err)
	}
	to := d.paths.Schedule(id)
	if next := c.FormValue("next"); next != "" {
		to = d.safeNext(next)
	}
	return c.Redirect(to, fiber.StatusSeeOther)
}

// runSchedule starts a job of the schedule now ("Run now") and opens it.
func (d *Dashboard) runSchedule(c *fiber.Ctx) error {
	jobID, err := d.cfg.Schedules.Trigger(c.UserContext(), scheduleID(c), sessionFrom(c).User)
	if err != nil {
		return d.fail(c, err)
	}
	return c.Redirect(d.paths.Job(jobID), fiber.StatusSeeOther)
}

// deleteSchedule deletes an API schedule and returns to the list.
func (d *Dashboard) deleteSchedule(c *fiber.Ctx) error {
	if err := d.cfg.Schedules.Delete(c.UserContext(), scheduleID(c)); err != nil {
		return d.fail(c, err)
	}
	return c.Redirect(d.paths.Schedules(""), fiber.StatusSeeOther)
}

func (d *Dashboard) newSchedulePage(c *fiber.Ctx) error {
	l := d.layout(c, "New schedule", "schedules")
	f := view.ScheduleForm{Pipeline: c.Query("pipeline"), Missed: string(pipeline.MissedSkip),
		Overlap: string(pipeline.OverlapAllow), CatchupWindow: "24h", Jitter: "0s"}
	return d.renderNewSchedule(c, fiber.StatusOK, l, f)
}

func (d *Dashboard) renderNewSchedule(c *fiber.Ctx, status int, l view.Layout, f view.ScheduleForm) error {
	pipes, err := d.runner.Pipelines(c.UserContext())
	if err != nil {
		return d.fail(c, err)
	}
	for _, p := range pipes {
		f.Pipelines = append(f.Pipelines, p.Name)
	}
	f.Action, f.CSRF = d.paths.NewSchedule(), l.CSRF
	return d.render(c, status, templates.NewSchedulePageView(view.ScheduleFormPage{
		Layout: l, Form: f.WithChoices(), SchedulesURL: d.paths.Schedules(""),
	}))
}

// createSchedule creates an API schedule from the form and opens it; a refused one shows the
// form again with the scheduler's message (the one the API answers with).
func (d *Dashboard) createSchedule(c *fiber.Ctx) error {
	f := scheduleFormFrom(c)
	l := d.layout(c, "New schedule", "schedules")
	spec, msg := specFromForm(f)
	if msg != "" {
		f.Error = msg
		return d.renderNewSchedule(c, fiber.StatusBadRequest, l, f)
	}
	v, err := d.cfg.Schedules.Create(c.UserContext(), spec)
	if err != nil {
		status, msg := d.formFailure(c, err)
		f.Error = msg
		return d.renderNewSchedule(c, status, l, f)
	}
	return c.Redirect(d.paths.Schedule(v.Spec.ID()), fiber.StatusSeeOther)
}

// editSchedule changes an API schedule from its edit form; a refused change shows the form
// again with the scheduler's message.
func (d *Dashboard) editSchedule(c *fiber.Ctx) error {
	id := scheduleID(c)
	f := scheduleFormFrom(c)
	f.Edit, f.Action, f.CSRF = true, d.paths.ScheduleAction(id, "edit"), d.csrfToken(c)
	f.Pipeline, f.Name, _ = strings.Cut(id, "/")
	again := func(status int, msg string) error {
		f.Error = msg
		form := f.WithChoices()
		return d.renderSchedule(c, status, id, &form)
	}
	spec, msg := specFromForm(f)
	if msg != "" {
		return again(fiber.StatusBadRequest, msg)
	}
	if spec.Variables == nil {
		spec.Variables = map[string]any{} // the form shows all variables: none left clears them
	}
	_, err := d.cfg.Schedules.Update(c.UserContext(), id, pipeline.SchedulePatch{
		Cron: &spec.Cron, Timezone: &spec.Timezone, Variables: spec.Variables, QueuePartition: &spec.QueuePartition,
		Jitter: &spec.Jitter, Missed: &spec.Missed, CatchupWindow: &spec.CatchupWindow, Overlap: &spec.Overlap,
	})
	if errors.Is(err, pipeline.ErrScheduleNotFound) {
		return d.fail(c, err)
	}
	if err != nil {
		status, msg := d.formFailure(c, err)
		return again(status, msg)
	}
	return c.Redirect(d.paths.Schedule(id), fiber.StatusSeeOther)
}

// formFailure is the status and message of a refused form: the error's own message for the
// scheduler's refusals (what the API answers too), failure's otherwise.
func (d *Dashboard) formFailure(c *fiber.Ctx, err error) (int, string) {
	status, _, msg := failure(err)
	if status >= fiber.StatusInternalServerError && !errors.Is(err, pipeline.ErrShuttingDown) {
		d.logger.Error("dashboard: schedule change failed", "path", c.Path(), "error", err)
	}
	if errors.Is(err, pipeline.ErrUnknownPipeline) {
		// The form named a pipeline that is gone (its page answers 404): the form is wrong.
		status = fiber.StatusBadRequest
	}
	return status, msg
}

// scheduleFormFrom reads the schedule form as it was sent.
func scheduleFormFrom(c *fiber.Ctx) view.ScheduleForm {
	f := view.ScheduleForm{
		Pipeline:       strings.TrimSpace(c.FormValue("pipeline")),
		Name:           strings.TrimSpace(c.FormValue("name")),
		Cron:           strings.TrimSpace(c.FormValue("cron")),
		Timezone:       strings.TrimSpace(c.FormValue("timezone")),
		QueuePartition: strings.TrimSpace(c.FormValue("partition")),
		Jitter:         strings.TrimSpace(c.FormValue("jitter")),
		Missed:         c.FormValue("missed"),
		CatchupWindow:  strings.TrimSpace(c.FormValue("catchup_window")),
		Overlap:        c.FormValue("overlap"),
		JSON:           c.FormValue("variables_json"),
	}
	f.Rows = formRows(c)
	return f
}

// formRows reads the filled key/value rows of a form's variables.
func formRows(c *fiber.Ctx) []view.KV {
	keys := c.Request().PostArgs().PeekMulti("var_key")
	values := c.Request().PostArgs().PeekMulti("var_value")
	var rows []view.KV
	for i := range keys {
		kv := view.KV{Key: strings.TrimSpace(string(keys[i]))}
		if i < len(values) {
			kv.Value = string(values[i])
		}
		if kv.Key != "" || kv.Value != "" {
			rows = append(rows, kv)
		}
	}
	return rows
}

// specFromForm turns the form into a spec for the scheduler, which validates it; it checks only
// what the form's text decides (variables, the durations' syntax), with the API's messages.
func specFromForm(f view.ScheduleForm) (pipeline.ScheduleSpec, string) {
	vars, msg := parseVariables(f.Rows, f.JSON)
	if msg != "" {
		return pipeline.ScheduleSpec{}, msg
	}
	spec := pipeline.ScheduleSpec{
		Pipeline:       f.Pipeline,
		Name:           f.Name,
		Cron:           f.Cron,
		Timezone:       f.Timezone,
		Variables:      vars,
		QueuePartition: f.QueuePartition,
		Missed:         pipeline.MissedPolicy(f.Missed),
		Overlap:        pipeline.OverlapPolicy(f.Overlap),
		Source:         pipeline.SourceAPI,
	}
	var err error
	if spec.Jitter, err = formDuration("jitter", f.Jitter); err != nil {
		return spec, err.Error()
	}
	if spec.CatchupWindow, err = formDuration("catchupWindow", f.CatchupWindow); err != nil {
		return spec, err.Error()
	}
	return spec, ""
}

// formDuration parses a duration field; empty is 0 (the scheduler's default applies).
func formDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as 30s, 15m or 24h", field, s)
	}
	return d, nil
}

// nextRunsWait bounds how long the pipelines page waits for the scheduler (which answers only
// once it has loaded the schedules): the home page must not hang on it.
const nextRunsWait = 2 * time.Second

// nextRuns returns each pipeline's next scheduled run: the earliest next fire time of its
// schedules that are not paused. Without a scheduler it is empty. ok is false when the
// scheduler did not answer (logged): the page then shows the next runs as unknown, and the
// rest of it as usual.
func (d *Dashboard) nextRuns(ctx context.Context) (next map[string]time.Time, ok bool) {
	next = map[string]time.Time{}
	if d.cfg.Schedules == nil {
		return next, true
	}
	ctx, cancel := context.WithTimeout(ctx, nextRunsWait)
	defer cancel()
	views, err := d.cfg.Schedules.List(ctx, "")
	if err != nil {
		d.logger.Warn("dashboard: list schedules for the next runs", "error", err)
		return next, false
	}
	for _, v := range views {
		if v.Paused || len(v.Next) == 0 {
			continue
		}
		if t, ok := next[v.Spec.Pipeline]; !ok || v.Next[0].Before(t) {
			next[v.Spec.Pipeline] = v.Next[0]
		}
	}
	return next, true
}
