package store

import "errors"

// ErrUnavailable is wrapped around the error of a store call that failed because the database
// could not be reached or did not answer in time: the connection was refused, lost or timed
// out, or the server is shutting down or starting up. A write that fails with it stored
// nothing and may be retried once the database is back. (A connection lost after a commit was
// sent is not ErrUnavailable: the write may have been stored.) Errors about the data (a
// constraint, a missing job) are never ErrUnavailable.
//
// The HTTP API answers it with 503; the runner retries the writes about its running jobs until
// they succeed or its lease is lost.
var ErrUnavailable = errors.New("database unavailable")
