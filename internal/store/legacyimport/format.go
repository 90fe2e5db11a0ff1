package legacyimport

import (
	"time"
)

// The on-disk format of the original Flowpack/prunner (v1.x), as its JSON data store writes it:
// DATA/data.json holds one object {"Jobs": [...]} whose keys are the Go field names of the
// original's persisted structs (it sets no JSON names). Times are RFC 3339 with nanoseconds and
// the writer's zone offset; the job ID is a UUID string. The original omits false booleans, nil
// times, empty variables and empty strings. Task output lives next to it in
// DATA/logs/<jobID>/<task name>-stdout.log and …-stderr.log. The structs below decode exactly
// that; fields this importer does not use are left out.

// legacyData is the whole data.json.
type legacyData struct {
	Jobs []legacyJob `json:"Jobs"`
}

// legacyJob is one job record of the original.
type legacyJob struct {
	ID       string `json:"ID"`
	Pipeline string `json:"Pipeline"`
	// Completed is set when the job's run ended (also when it was canceled while running).
	Completed bool `json:"Completed"`
	// Canceled is set for a job canceled while running, one canceled or replaced on the wait
	// list, and one that the original found running or waiting at its own restart.
	Canceled  bool           `json:"Canceled"`
	Created   time.Time      `json:"Created"`
	Start     *time.Time     `json:"Start"`
	End       *time.Time     `json:"End"`
	Variables map[string]any `json:"Variables"`
	User      string         `json:"User"`
	Tasks     []legacyTask   `json:"Tasks"`
}

// legacyTask is one task record of a job of the original. Status holds the same tokens as
// pipeline.TaskStatus (waiting, running, skipped, done, error, canceled).
type legacyTask struct {
	Name      string     `json:"Name"`
	DependsOn []string   `json:"DependsOn"`
	Status    string     `json:"Status"`
	Start     *time.Time `json:"Start"`
	End       *time.Time `json:"End"`
	Skipped   bool       `json:"Skipped"`
	ExitCode  int        `json:"ExitCode"`
	Errored   bool       `json:"Errored"`
	Error     *string    `json:"Error"`
}

// legacyLogName returns the file name (inside DATA/logs/<jobID>/) under which the original
// kept one output stream ("stdout" or "stderr") of a task.
func legacyLogName(task, stream string) string {
	return task + "-" + stream + ".log"
}
