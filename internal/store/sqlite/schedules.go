package sqlite

// INTERIM (issue 11 skeleton): the schedule methods of store.Store, to be implemented with
// migration 0005. Every method fails until then.

import (
	"context"
	"errors"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

var errSchedulesTODO = errors.New("schedules: not implemented yet")

func (s *Store) CreateSchedule(ctx context.Context, spec pipeline.ScheduleSpec, now time.Time) error {
	return errSchedulesTODO
}
func (s *Store) UpdateSchedule(ctx context.Context, spec pipeline.ScheduleSpec) error {
	return errSchedulesTODO
}
func (s *Store) DeleteSchedule(ctx context.Context, id string) error { return errSchedulesTODO }
func (s *Store) APISchedules(ctx context.Context) ([]pipeline.ScheduleSpec, error) {
	return nil, errSchedulesTODO
}
func (s *Store) EnsureScheduleStates(ctx context.Context, ids []string, now time.Time) error {
	return errSchedulesTODO
}
func (s *Store) ScheduleStates(ctx context.Context) (map[string]pipeline.ScheduleState, error) {
	return nil, errSchedulesTODO
}
func (s *Store) SetSchedulePaused(ctx context.Context, id string, paused bool, note string, now time.Time) error {
	return errSchedulesTODO
}
func (s *Store) AdvanceScheduleCursor(ctx context.Context, id string, t time.Time) error {
	return errSchedulesTODO
}
func (s *Store) ScheduleFirings(ctx context.Context, id string, limit int) ([]pipeline.ScheduleFiring, error) {
	return nil, errSchedulesTODO
}
func (s *Store) LastFirings(ctx context.Context) (map[string]pipeline.ScheduleFiring, error) {
	return nil, errSchedulesTODO
}
