package runner

import (
	"context"
	"time"

	"github.com/prunner-dev/prunner/internal/store"
)

// retentionLoop applies retention periodically, so retention_period also expires jobs of
// pipelines that see no new jobs.
func (r *Runner) retentionLoop() {
	t := time.NewTicker(r.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stopped:
			return
		case <-t.C:
			r.applyRetentionAll()
		}
	}
}

func (r *Runner) applyRetentionAll() {
	for _, name := range r.defs.Load().Names() {
		r.applyRetention(name)
	}
}

// applyRetention deletes the finished jobs of a loaded pipeline that its retention settings no
// longer keep, with their output. Pipelines no longer in the files keep their history.
func (r *Runner) applyRetention(name string) {
	d := r.defs.Load().Get(name)
	if d == nil || (d.RetentionPeriod == 0 && d.RetentionCount == 0) {
		return
	}
	p := store.RetentionParams{Pipeline: name, KeepNewest: d.RetentionCount}
	if d.RetentionPeriod > 0 {
		p.EndedBefore = r.now().Add(-d.RetentionPeriod)
	}
	ids, err := r.st.DeleteFinished(context.Background(), p)
	if err != nil {
		r.log.Error("retention", "pipeline", name, "error", err)
		return
	}
	for _, id := range ids {
		if err := r.logs.DeleteJob(context.Background(), id); err != nil {
			r.log.Error("retention: remove logs", "job_id", id, "error", err)
		}
	}
	if len(ids) > 0 {
		r.log.Info("retention removed finished jobs", "pipeline", name, "count", len(ids))
		// Space was freed: take the reserve back if it was used.
		if err := r.reserve.fill(); err != nil {
			r.log.Warn("could not reserve disk space in the data directory", "error", err)
		}
	}
}
