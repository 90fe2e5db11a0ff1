package pipeline

import (
	"encoding/hex"
	"strconv"
)

// LogFileName returns the name of the file that holds one output stream of one attempt of a task,
// inside its job's log directory (DATA/logs/<jobID>/). The task name is hex-encoded, so that any
// name (with slashes, dots or NUL) maps to a plain file name. The first attempt (attempt <= 1)
// has no suffix; a retried task keeps each further attempt's output in its own file
// (<hex>.attempt2.stdout, …). The names are persisted on disk: never change them.
func LogFileName(task string, attempt int, stream LogStream) string {
	name := hex.EncodeToString([]byte(task))
	if attempt > 1 {
		name += ".attempt" + strconv.Itoa(attempt)
	}
	return name + "." + string(stream)
}
