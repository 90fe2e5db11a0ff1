package runner

import (
	"errors"

	"github.com/prunner-dev/prunner/internal/store"
)

// logStoreError logs the failure of background work (a poll, a claim, the reaper): an error
// of its own as an error, and a database that cannot be reached (store.ErrUnavailable) once, as
// a warning, when the outage begins. While it lasts, every poll fails the same way several
// times a second; those failures go to the debug level, and storeReachable says when it ended.
func (r *Runner) logStoreError(what string, err error, args ...any) {
	args = append(args, "error", err)
	if !errors.Is(err, store.ErrUnavailable) {
		r.log.Error(what, args...)
		return
	}
	if r.storeDown.CompareAndSwap(false, true) {
		r.log.Warn("database unavailable: waiting for it (running jobs go on; requests get 503)", append(args, "during", what)...)
		return
	}
	r.log.Debug(what, args...)
}

// storeReachable notes that the background work reached the database, and logs the end of an
// outage that logStoreError logged.
func (r *Runner) storeReachable() {
	if r.storeDown.CompareAndSwap(true, false) {
		r.log.Info("database reachable again")
	}
}
