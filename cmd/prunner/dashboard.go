package main

import (
	"context"

	"github.com/prunner-dev/prunner/internal/dashboard"
	"github.com/prunner-dev/prunner/internal/runner"
)

// dashboardRunner adapts the runner to the dashboard's view of it.
type dashboardRunner struct{ *runner.Runner }

func (a dashboardRunner) Schedule(ctx context.Context, req dashboard.StartRequest) (string, error) {
	return a.Runner.Schedule(ctx, runner.ScheduleRequest{
		Pipeline:       req.Pipeline,
		Variables:      req.Variables,
		QueuePartition: req.QueuePartition,
		User:           req.User,
	})
}

func (a dashboardRunner) Pipelines(ctx context.Context) ([]dashboard.Pipeline, error) {
	infos, err := a.Runner.Pipelines(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.Pipeline, len(infos))
	for i, p := range infos {
		out[i] = dashboard.Pipeline{
			Name:                 p.Definition.Name,
			RunningJobs:          p.Running,
			WaitingJobs:          p.Waiting,
			Schedulable:          p.Schedulable,
			NotSchedulableReason: p.Reason,
			Definition:           p.Definition,
		}
	}
	return out, nil
}
