package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// scheduleHandlers serves the routes of schedules (issue 11): list, create, show, change,
// delete, trigger and backfill. They exist only when Config.Schedules is set.
type scheduleHandlers struct {
	schedules Schedules
}

// registerSchedules adds the schedule routes. A schedule's ID "<pipeline>/<name>" contains a
// slash: it is routed as two path segments (/schedules/nightly/full), and also accepted as one
// escaped segment (/schedules/nightly%2Ffull).
func registerSchedules(app *fiber.App, s Schedules, authn fiber.Handler) {
	h := &scheduleHandlers{schedules: s}
	app.Get("/schedules", authn, h.list)
	app.Post("/schedules", authn, h.create)
	for _, base := range []string{"/schedules/:pipeline/:name", "/schedules/:id"} {
		app.Get(base, authn, h.get)
		app.Patch(base, authn, h.update)
		app.Delete(base, authn, h.delete)
		app.Post(base+"/trigger", authn, h.trigger)
		app.Post(base+"/backfill", authn, h.backfill)
	}
}

// scheduleIDParam returns the schedule ID of the request's path: "<pipeline>/<name>" from two
// segments, or one escaped segment that holds the slash. An ID that is not of that form is
// not found.
func scheduleIDParam(c *fiber.Ctx) (string, error) {
	if raw := c.Params("id"); raw != "" {
		id, err := url.PathUnescape(raw)
		if err != nil || !strings.Contains(id, "/") {
			return "", fmt.Errorf("schedule %q: %w", raw, pipeline.ErrScheduleNotFound)
		}
		return id, nil
	}
	p, err1 := url.PathUnescape(c.Params("pipeline"))
	n, err2 := url.PathUnescape(c.Params("name"))
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("schedule %q: %w", c.Params("pipeline")+"/"+c.Params("name"), pipeline.ErrScheduleNotFound)
	}
	return p + "/" + n, nil
}

// pipelineOf is the pipeline part of a schedule ID.
func pipelineOf(id string) string {
	p, _, _ := strings.Cut(id, "/")
	return p
}

// list serves GET /schedules (?pipeline=): every schedule, sorted by ID.
func (h *scheduleHandlers) list(c *fiber.Ctx) error {
	views, err := h.schedules.List(c.UserContext(), c.Query("pipeline"))
	if err != nil {
		return err
	}
	out := schedulesResponse{Schedules: make([]scheduleView, 0, len(views))}
	for _, v := range views {
		out.Schedules = append(out.Schedules, newScheduleView(v))
	}
	return c.JSON(out)
}

// get serves GET /schedules/{id}.
func (h *scheduleHandlers) get(c *fiber.Ctx) error {
	id, err := scheduleIDParam(c)
	if err != nil {
		return err
	}
	v, err := h.schedules.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(newScheduleView(v))
}

// create serves POST /schedules: 201 with the new schedule.
func (h *scheduleHandlers) create(c *fiber.Ctx) error {
	var body createScheduleBody
	if err := decodeStrict(c.Body(), &body); err != nil {
		return err
	}
	spec, err := body.spec()
	if err != nil {
		return err
	}
	v, err := h.schedules.Create(c.UserContext(), spec)
	if err != nil {
		return &scheduleError{pipeline: spec.Pipeline, err: err}
	}
	return c.Status(fiber.StatusCreated).JSON(newScheduleView(v))
}

// update serves PATCH /schedules/{id}: 200 with the changed schedule.
func (h *scheduleHandlers) update(c *fiber.Ctx) error {
	id, err := scheduleIDParam(c)
	if err != nil {
		return err
	}
	var body patchScheduleBody
	if err := decodeStrict(c.Body(), &body); err != nil {
		return err
	}
	patch, err := body.patch(id)
	if err != nil {
		return err
	}
	v, err := h.schedules.Update(c.UserContext(), id, patch)
	if err != nil {
		return &scheduleError{pipeline: pipelineOf(id), err: err}
	}
	return c.JSON(newScheduleView(v))
}

// delete serves DELETE /schedules/{id}: 204 without a body. The jobs it started stay.
func (h *scheduleHandlers) delete(c *fiber.Ctx) error {
	id, err := scheduleIDParam(c)
	if err != nil {
		return err
	}
	if err := h.schedules.Delete(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// trigger serves POST /schedules/{id}/trigger: a job now, through normal admission; 202 with
// its ID like POST /pipelines/schedule.
func (h *scheduleHandlers) trigger(c *fiber.Ctx) error {
	id, err := scheduleIDParam(c)
	if err != nil {
		return err
	}
	jobID, err := h.schedules.Trigger(c.UserContext(), id, userFrom(c))
	if err != nil {
		return &scheduleError{pipeline: pipelineOf(id), err: err}
	}
	return c.Status(fiber.StatusAccepted).JSON(scheduleResponse{JobID: jobID})
}

// backfillBody is the body of POST /schedules/{id}/backfill: the range (from, to] of fire
// times, RFC 3339.
type backfillBody struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// backfill serves POST /schedules/{id}/backfill: one job per fire time in (from, to], at most
// pipeline.MaxBackfill; 202 with the firings recorded.
func (h *scheduleHandlers) backfill(c *fiber.Ctx) error {
	id, err := scheduleIDParam(c)
	if err != nil {
		return err
	}
	var body backfillBody
	if err := decodeStrict(c.Body(), &body); err != nil {
		return err
	}
	from, err := parseInstant("from", body.From)
	if err != nil {
		return err
	}
	to, err := parseInstant("to", body.To)
	if err != nil {
		return err
	}
	if !to.After(from) {
		return badRequest("to must be after from")
	}
	firings, err := h.schedules.Backfill(c.UserContext(), id, from, to, userFrom(c))
	if err != nil {
		return &scheduleError{pipeline: pipelineOf(id), err: err}
	}
	return c.Status(fiber.StatusAccepted).JSON(firingsResponse{Firings: newFiringViews(firings)})
}

// parseInstant parses a required RFC 3339 field of a request body.
func parseInstant(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, badRequest(field + " is required (an RFC 3339 time such as 2026-01-31T03:00:00Z)")
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badRequest(fmt.Sprintf("%s: %q is not an RFC 3339 time such as 2026-01-31T03:00:00Z", field, s))
	}
	return t, nil
}

// decodeStrict decodes a JSON request body into v. Numbers in variables stay json.Number (as
// in POST /pipelines/schedule); an unknown field is a 400 that names it, so that a misspelled
// field is never silently ignored.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("Error decoding JSON: " + err.Error())
	}
	if dec.More() {
		return badRequest("Error decoding JSON: more than one JSON value in the body")
	}
	return nil
}

// parseDurationField parses a duration field of a schedule body ("30s", "24h", "1h30m0s").
func parseDurationField(field, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badRequest(fmt.Sprintf("%s: %q is not a duration such as 30s, 15m or 24h", field, s))
	}
	return d, nil
}

// variablesObject returns a variables field as an object; null is nil, anything else a 400.
func variablesObject(v any) (map[string]any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	default:
		return nil, badRequest("Error decoding JSON: variables must be an object")
	}
}

// createScheduleBody is the body of POST /schedules: the fields of a schedule in the pipelines
// file, plus pipeline. Durations are strings ("30s", "24h").
type createScheduleBody struct {
	Pipeline       string  `json:"pipeline"`
	Name           string  `json:"name"`
	Cron           string  `json:"cron"`
	Timezone       string  `json:"timezone"`
	Variables      any     `json:"variables"`
	QueuePartition string  `json:"queuePartition"`
	Jitter         *string `json:"jitter"`
	Missed         string  `json:"missed"`
	CatchupWindow  *string `json:"catchupWindow"`
	Overlap        string  `json:"overlap"`
}

// spec turns the body into the spec that Schedules.Create validates; it checks only what JSON
// decoding cannot (the shape of variables, the durations' syntax).
func (b *createScheduleBody) spec() (pipeline.ScheduleSpec, error) {
	vars, err := variablesObject(b.Variables)
	if err != nil {
		return pipeline.ScheduleSpec{}, err
	}
	spec := pipeline.ScheduleSpec{
		Pipeline:       b.Pipeline,
		Name:           b.Name,
		Cron:           b.Cron,
		Timezone:       b.Timezone,
		Variables:      vars,
		QueuePartition: b.QueuePartition,
		Missed:         pipeline.MissedPolicy(b.Missed),
		Overlap:        pipeline.OverlapPolicy(b.Overlap),
		Source:         pipeline.SourceAPI,
	}
	if b.Jitter != nil {
		if spec.Jitter, err = parseDurationField("jitter", *b.Jitter); err != nil {
			return spec, err
		}
	}
	if b.CatchupWindow != nil {
		if spec.CatchupWindow, err = parseDurationField("catchupWindow", *b.CatchupWindow); err != nil {
			return spec, err
		}
	}
	return spec, nil
}

// patchScheduleBody is the body of PATCH /schedules/{id}: any of the create fields (absent or
// null: unchanged) plus paused and note. pipeline and name may be given but not changed.
type patchScheduleBody struct {
	Pipeline       *string `json:"pipeline"`
	Name           *string `json:"name"`
	Cron           *string `json:"cron"`
	Timezone       *string `json:"timezone"`
	Variables      any     `json:"variables"`
	QueuePartition *string `json:"queuePartition"`
	Jitter         *string `json:"jitter"`
	Missed         *string `json:"missed"`
	CatchupWindow  *string `json:"catchupWindow"`
	Overlap        *string `json:"overlap"`
	Paused         *bool   `json:"paused"`
	Note           *string `json:"note"`
}

// patch turns the body into the change of schedule id.
func (b *patchScheduleBody) patch(id string) (pipeline.SchedulePatch, error) {
	pipe, name, _ := strings.Cut(id, "/")
	if b.Pipeline != nil && *b.Pipeline != pipe || b.Name != nil && *b.Name != name {
		return pipeline.SchedulePatch{}, badRequest("a schedule's pipeline and name cannot be changed: create a new schedule and delete this one")
	}
	vars, err := variablesObject(b.Variables)
	if err != nil {
		return pipeline.SchedulePatch{}, err
	}
	p := pipeline.SchedulePatch{
		Cron:           b.Cron,
		Timezone:       b.Timezone,
		Variables:      vars,
		QueuePartition: b.QueuePartition,
		Paused:         b.Paused,
		Note:           b.Note,
	}
	if b.Missed != nil {
		m := pipeline.MissedPolicy(*b.Missed)
		p.Missed = &m
	}
	if b.Overlap != nil {
		o := pipeline.OverlapPolicy(*b.Overlap)
		p.Overlap = &o
	}
	if p.Jitter, err = optionalDuration("jitter", b.Jitter); err != nil {
		return p, err
	}
	if p.CatchupWindow, err = optionalDuration("catchupWindow", b.CatchupWindow); err != nil {
		return p, err
	}
	return p, nil
}

// optionalDuration parses a duration field that may be absent (nil).
func optionalDuration(field string, s *string) (*time.Duration, error) {
	if s == nil {
		return nil, nil
	}
	d, err := parseDurationField(field, *s)
	if err != nil {
		return nil, err
	}
	return &d, nil
}
