package pipeline

// ScheduleRequest asks for a new job of a pipeline. The API (POST /pipelines/schedule) and the
// dashboard (its start form and "run again") fill it in, and the runner admits it; it lives here,
// in the domain, so that all three speak of the same thing and nothing has to copy it between
// look-alike structs.
type ScheduleRequest struct {
	// Pipeline is the name of a loaded pipeline.
	Pipeline string
	// Variables are the job's template variables. The API decodes them with
	// json.Decoder.UseNumber, so that numbers keep the form the client sent.
	Variables map[string]any
	// QueuePartition is the wait-list partition of queue_strategy partitioned_replace ("" when
	// none).
	QueuePartition string
	// User is the token's sub claim, the person or account that asked ("" when none).
	User string
	// IdempotencyKey (the API's Idempotency-Key header) makes the request repeatable: when a
	// stored job already has the key, the request returns that job's ID and starts nothing.
	// "" means no key.
	IdempotencyKey string
}

// Info is one loaded pipeline and its state now: what GET /pipelines, the dashboard's pipelines
// page and the metrics' gauges show.
type Info struct {
	// Name is the pipeline's name (Definition.Name).
	Name string
	// Definition is the loaded definition (concurrency, queue strategy, tasks).
	Definition *Definition
	// RunningJobs and WaitingJobs count the pipeline's running jobs and those on its wait list.
	RunningJobs int
	WaitingJobs int
	// Schedulable is true when a schedule request would be accepted now;
	// NotSchedulableReason then is "", otherwise it says why the request would be rejected
	// (a full wait list, no wait list, a server that shuts down), in a sentence for people.
	Schedulable          bool
	NotSchedulableReason string
}
