package dashboard

import (
	"bytes"
	"errors"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/web/templates"
)

// layout builds the frame of a page for the request's session.
func (d *Dashboard) layout(c *fiber.Ctx, title, nav string) view.Layout {
	l := view.Layout{Title: title, Paths: d.paths, Nav: nav, CSRF: d.csrfToken(c), Assets: d.assets, Schedules: d.cfg.Schedules != nil, Nodes: d.cfg.Nodes != nil}
	if s := sessionFrom(c); s != nil {
		l.SignedIn, l.User, l.ViaHeader = true, s.User, s.ViaHeader
	}
	return l
}

// render renders comp into a buffer first, so that a failed render never sends half a page.
func (d *Dashboard) render(c *fiber.Ctx, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.UserContext(), &buf); err != nil {
		d.logger.Error("dashboard: render failed", "path", c.Path(), "error", err)
		c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
		return c.Status(fiber.StatusInternalServerError).SendString("internal error")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).Send(buf.Bytes())
}

// errorPage answers with a page that explains the problem, never a raw status.
func (d *Dashboard) errorPage(c *fiber.Ctx, status int, heading, msg string) error {
	back, backText := d.paths.Home(), "Back to the pipelines"
	if status == fiber.StatusNotFound {
		back, backText = d.paths.Jobs("", "", ""), "Back to the jobs"
	}
	return d.render(c, status, templates.ErrorPageView(view.ErrorPage{
		Layout:  d.layout(c, heading, ""),
		Status:  status,
		Heading: heading,
		Message: msg,
		BackURL: back,
		Back:    backText,
	}))
}

// fail maps an error to a page: the one mapping from the dashboard's errors to statuses and
// messages that are safe to show. Internal errors are logged, not shown.
func (d *Dashboard) fail(c *fiber.Ctx, err error) error {
	status, heading, msg := failure(err)
	if status >= fiber.StatusInternalServerError && !errors.Is(err, pipeline.ErrShuttingDown) {
		d.logger.Error("dashboard request failed", "method", c.Method(), "path", c.Path(), "error", err)
	}
	return d.errorPage(c, status, heading, msg)
}

func failure(err error) (status int, heading, msg string) {
	switch {
	case errors.Is(err, pipeline.ErrScheduleNotFound):
		return fiber.StatusNotFound, "Schedule not found", "There is no schedule with this ID. It may have been deleted, or its pipeline removed."
	case errors.Is(err, pipeline.ErrScheduleFromFile):
		return fiber.StatusConflict, "Declared in a file", err.Error()
	case errors.Is(err, pipeline.ErrScheduleExists):
		return fiber.StatusConflict, "Schedule exists", err.Error()
	case errors.Is(err, pipeline.ErrInvalidSchedule):
		return fiber.StatusBadRequest, "Invalid schedule", err.Error()
	case errors.Is(err, pipeline.ErrJobNotFound):
		return fiber.StatusNotFound, "Job not found", "There is no job with this ID. Retention may have deleted it."
	case errors.Is(err, pipeline.ErrTaskNotFound):
		return fiber.StatusNotFound, "Task not found", "This job has no task of that name."
	case errors.Is(err, pipeline.ErrUnknownPipeline):
		return fiber.StatusNotFound, "Pipeline not found", "No pipeline of that name is loaded."
	case errors.Is(err, pipeline.ErrJobFinished):
		return fiber.StatusConflict, "Job already finished", "The job has already finished; there is nothing to cancel."
	case errors.Is(err, pipeline.ErrQueueFull), errors.Is(err, pipeline.ErrNoQueue):
		// 409, where the API answers 400 for old clients, on purpose: the form was filled in
		// correctly, and it is the pipeline's state now (a full wait list, no wait list) that
		// refuses the job; sending the same form again later may well work. Admission's
		// messages name the pipeline and its limits; they are meant for people.
		return fiber.StatusConflict, "Not scheduled", err.Error()
	case errors.Is(err, pipeline.ErrShuttingDown):
		return fiber.StatusServiceUnavailable, "Server is shutting down", "The server is shutting down and accepts no new jobs. Try again after the restart."
	case errors.Is(err, store.ErrUnavailable):
		return fiber.StatusServiceUnavailable, "Database unreachable", "The job database cannot be reached just now: nothing was stored. Try again in a moment."
	default:
		return fiber.StatusInternalServerError, "Something went wrong", "The server could not answer this request. Its log has the details."
	}
}

func (d *Dashboard) notFound(c *fiber.Ctx) error {
	return d.errorPage(c, fiber.StatusNotFound, "Page not found", "There is no dashboard page at this address.")
}
