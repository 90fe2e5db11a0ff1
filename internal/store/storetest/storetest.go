// Package storetest is the conformance suite of store.Store: every backend runs Run, so that the
// semantics documented in package store are checked, not assumed. Today the one backend is the
// embedded SQLite store (internal/store/sqlite); a new backend passes this suite unchanged.
package storetest

import (
	"testing"

	"github.com/prunner-dev/prunner/internal/store"
)

// Run runs the conformance suite against a backend. open must return a new, empty store for
// each call and close it in t.Cleanup; the subtests run in parallel, each on its own store.
//
// The tests live in files by topic; this list names every one of them, grouped by file, so that
// one look shows what the suite covers.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		// admit.go, idempotency.go
		{"AdmitStrategies", testAdmitStrategies},
		{"AdmitStoresJob", testAdmitStoresJob},
		{"AdmitRejectedStoresNothing", testAdmitRejectedStoresNothing},
		{"AdmitReplaced", testAdmitReplaced},
		{"AdmitReplaceVariables", testAdmitReplaceVariables},
		{"AdmitDuplicateID", testAdmitDuplicateID},
		{"AdmitConcurrent", testAdmitConcurrent},
		{"AdmitIdempotencyKey", testAdmitIdempotencyKey},
		// claim.go
		{"ClaimFIFO", testClaimFIFO},
		{"ClaimRespectsConcurrency", testClaimRespectsConcurrency},
		{"ClaimStartDelay", testClaimStartDelay},
		{"ClaimSkipsJobsStillDelayed", testClaimSkipsJobsStillDelayed},
		{"ClaimNothingQueued", testClaimNothingQueued},
		{"ClaimLimit", testClaimLimit},
		{"AdmitNoStart", testAdmitNoStart},
		// finish.go
		{"FinishJob", testFinishJob},
		{"FinishJobErrors", testFinishJobErrors},
		{"FinishAndClaim", testFinishAndClaim},
		{"CancelQueuedFreesSlot", testCancelQueuedFreesSlot},
		{"CancelQueuedNotQueued", testCancelQueuedNotQueued},
		{"RecoverRunning", testRecoverRunning},
		// tasks.go
		{"UpdateTask", testUpdateTask},
		{"UpdateTaskOnError", testUpdateTaskOnError},
		{"UpdateTaskUnknownJob", testUpdateTaskUnknownJob},
		{"UpdateTaskAttempts", testUpdateTaskAttempts},
		// jobs.go
		{"JobUnknown", testJobUnknown},
		{"JobsQuery", testJobsQuery},
		{"JobsTasks", testJobsTasks},
		{"JobsPagingWhileAdding", testJobsPagingWhileAdding},
		{"JobsUnknownCursor", testJobsUnknownCursor},
		{"EachJob", testEachJob},
		{"EachJobFrom", testEachJobFrom},
		{"JobsLongMixedList", testJobsLongMixedList},
		{"JobsAfterLateTaskUpdate", testJobsAfterLateTaskUpdate},
		// roundtrip.go
		{"VariablesRoundTrip", testVariablesRoundTrip},
		{"TimesRoundTrip", testTimesRoundTrip},
		{"DefinitionRoundTrip", testDefinitionRoundTrip},
		// pipelinestate.go
		{"PipelineStates", testPipelineStates},
		{"QueuedPipelines", testQueuedPipelines},
		// retention.go
		{"DeleteFinished", testDeleteFinished},
		// import.go
		{"ImportJobs", testImportJobs},
		{"ImportJobsInvalid", testImportJobsInvalid},
		// schedules.go (and RunPersistence there)
		{"FiringOncePerKey", testFiringOncePerKey},
		{"FiringConcurrentSameKey", testFiringConcurrentSameKey},
		{"FiringCronCursor", testFiringCronCursor},
		{"FiringSkipIfActive", testFiringSkipIfActive},
		{"FiringRejected", testFiringRejected},
		{"ScheduledJobRoundTrip", testScheduledJobRoundTrip},
		{"ScheduleCRUD", testScheduleCRUD},
		{"SchedulePause", testSchedulePause},
		{"EnsureScheduleStates", testEnsureScheduleStates},
		{"FiringsBounded", testFiringsBounded},
		{"FiringsShowJobStatus", testFiringsShowJobStatus},
		// this file
		{"CloseIdempotent", testCloseIdempotent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// testCloseIdempotent: closing a store again is harmless.
func testCloseIdempotent(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	for i := range 3 {
		if err := s.Close(); err != nil {
			t.Errorf("Close() #%d error: %v", i+1, err)
		}
	}
}
