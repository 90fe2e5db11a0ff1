package main

import (
	"context"

	"github.com/prunner-dev/prunner/internal/api"
	"github.com/prunner-dev/prunner/internal/runner"
)

// apiRunner adapts the runner to the API's view of it.
type apiRunner struct{ *runner.Runner }

func (a apiRunner) Schedule(ctx context.Context, req api.ScheduleRequest) (string, error) {
	return a.Runner.Schedule(ctx, runner.ScheduleRequest{
		Pipeline:       req.Pipeline,
		Variables:      req.Variables,
		QueuePartition: req.QueuePartition,
		User:           req.User,
		IdempotencyKey: req.IdempotencyKey,
	})
}

func (a apiRunner) Pipelines(ctx context.Context) ([]api.PipelineInfo, error) {
	infos, err := a.Runner.Pipelines(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.PipelineInfo, len(infos))
	for i, p := range infos {
		out[i] = api.PipelineInfo{
			Name:                 p.Definition.Name,
			Running:              p.Running > 0,
			Schedulable:          p.Schedulable,
			RunningJobs:          p.Running,
			WaitingJobs:          p.Waiting,
			NotSchedulableReason: p.Reason,
			Definition:           p.Definition,
		}
	}
	return out, nil
}
