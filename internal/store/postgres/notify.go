package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// Wake-ups (store.Wakeups) are PostgreSQL notifications, sent by pg_notify inside the
// transaction that made the change, so that they go out when it commits and never when it rolls
// back:
//
//   - channel prunner_wake, payload a pipeline name: Admit stored a queued job; FinishJob or
//     FinishAndClaim ended a running job of a pipeline that has queued jobs (a slot is free);
//   - channel prunner_cancel, payload a job ID: RequestCancel recorded a cancel request.
//
// Only a store registered as a node sends prunner_wake (a store of one node has nobody to
// wake, and its transactions stay as they were); RequestCancel always notifies. Every payload
// begins with the sending node's ID (see wakePayload), so that a listener drops the
// notifications of its own node, which acted on its changes itself. Notifications are per
// database, not per schema: stores in two schemas of one database wake each other for nothing
// (a claim that finds no job), which costs a transaction and is harmless.

const (
	wakeChannel   = "prunner_wake"
	cancelChannel = "prunner_cancel"
)

var (
	notifySQL = `SELECT pg_notify($1, $2)`
	// notifyFreedSlotSQL wakes the other nodes for the pipeline of job $1 when it has queued
	// jobs; $2 is the payload's prefix (wakePayload with no subject).
	notifyFreedSlotSQL = `SELECT pg_notify('` + wakeChannel + `', $2 || j.pipeline) FROM jobs j
		WHERE j.id = $1 AND EXISTS (SELECT 1 FROM jobs q WHERE q.status = '` + queued + `' AND q.pipeline = j.pipeline)`
	requestCancelReadSQL = `SELECT status, COALESCE(node, '') FROM jobs WHERE id = $1 FOR UPDATE`
	requestCancelSQL     = `UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, $2) WHERE id = $1`
	cancelRequestsSQL    = `SELECT id FROM jobs WHERE status = '` + running + `' AND node = $1 AND lease_epoch = $2
		AND cancel_requested_at IS NOT NULL ORDER BY seq`
)

var (
	_ store.Wakeups      = (*Store)(nil)
	_ store.RemoteCancel = (*Store)(nil)
)

// wakePayload is a notification's payload: the length of the sender's node ID, a colon, the ID
// and the subject (a pipeline name or a job ID), so that any node ID and subject decode.
func wakePayload(sender, subject string) string {
	return strconv.Itoa(len(sender)) + ":" + sender + subject
}

// parseWakePayload splits a payload made by wakePayload; false when it is not one.
func parseWakePayload(p string) (sender, subject string, ok bool) {
	num, rest, found := strings.Cut(p, ":")
	n, err := strconv.Atoi(num)
	if !found || err != nil || n < 0 || n > len(rest) {
		return "", "", false
	}
	return rest[:n], rest[n:], true
}

// sender is the node ID that this store's notifications carry ("" when not registered).
func (s *Store) sender() string {
	if me := s.me(); me != nil {
		return me.Node
	}
	return ""
}

// queueWakePipeline queues, for a registered store, the wake-up of the other nodes for a
// pipeline in b.
func (s *Store) queueWakePipeline(b *pgx.Batch, name string) {
	if me := s.me(); me != nil {
		b.Queue(notifySQL, wakeChannel, wakePayload(me.Node, name))
	}
}

// queueWakeFreedSlot queues, for a registered store, the wake-up of the other nodes for the
// pipeline of a job that ends, when that pipeline has queued jobs.
func (s *Store) queueWakeFreedSlot(b *pgx.Batch, jobID string) {
	if me := s.me(); me != nil {
		b.Queue(notifyFreedSlotSQL, jobID, wakePayload(me.Node, ""))
	}
}

// RequestCancel implements store.RemoteCancel: under the job's row lock, a running job gets
// its request (the first one's time is kept) and prunner_cancel is sent on commit.
func (s *Store) RequestCancel(ctx context.Context, jobID string, now time.Time) (pipeline.JobStatus, string, error) {
	status, owner, err := s.requestCancel(ctx, jobID, requestCancelSQL, jobID, nanos(now))
	if err != nil {
		return "", "", fmt.Errorf("request cancel of job %s: %w", jobID, err)
	}
	return status, owner, nil
}

// requestCancel records a cancel request of a running job with the statement record (and its
// arguments), and notifies its owner, in one transaction under the job's row lock. It returns
// the job's status and owner; a job that is not running is left alone.
func (s *Store) requestCancel(ctx context.Context, jobID, record string, args ...any) (pipeline.JobStatus, string, error) {
	var status, owner string
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, requestCancelReadSQL, jobID).Scan(&status, &owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return pipeline.ErrJobNotFound
		}
		if err != nil || status != running {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(record, args...)
		b.Queue(notifySQL, cancelChannel, wakePayload(s.sender(), jobID))
		return tx.SendBatch(ctx, b).Close()
	})
	return pipeline.JobStatus(status), owner, err
}

// CancelRequests implements store.RemoteCancel: the running jobs owned by this node under its
// current epoch that have a cancel request.
func (s *Store) CancelRequests(ctx context.Context) ([]string, error) {
	me := s.me()
	if me == nil {
		return nil, nil
	}
	rows, err := s.query(ctx, cancelRequestsSQL, me.Node, me.Epoch)
	if err != nil {
		return nil, fmt.Errorf("read cancel requests: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read cancel requests: %w", err)
	}
	return ids, nil
}

// Listen backoff: the first reconnect after listenBackoffMin, doubling up to listenBackoffMax;
// a connection that lasted listenStable starts again from the minimum.
const (
	listenBackoffMin = 50 * time.Millisecond
	listenBackoffMax = 5 * time.Second
	listenStable     = 10 * time.Second
)

// Listen implements store.Wakeups on a connection of its own (not the pool's: a listening
// session must stay open), which it replaces with backoff when it is lost.
func (s *Store) Listen(ctx context.Context, fn func(store.Wakeup)) error {
	wait := listenBackoffMin
	for {
		began := time.Now()
		err := s.listenOnce(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fn(store.Wakeup{Kind: store.WakeLost, Err: err})
		if time.Since(began) >= listenStable {
			wait = listenBackoffMin
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, listenBackoffMax)
	}
}

// listenOnce connects, listens on both channels, delivers WakeResync and then every
// notification until the connection fails or ctx ends; it returns why it stopped.
func (s *Store) listenOnce(ctx context.Context, fn func(store.Wakeup)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("listen: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+wakeChannel+`; LISTEN `+cancelChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fn(store.Wakeup{Kind: store.WakeResync})
	for {
		n, err := waitForNotification(ctx, conn, s.listenCheck)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		if w, ok := s.decodeWakeup(n.Channel, n.Payload); ok {
			fn(w)
		}
	}
}

// listenCheck is how long a listening connection waits for a notification before it checks
// that the database still answers: a connection that a network fault froze, without closing
// it, would otherwise wait for ever while the notifications are lost.
const listenCheck = 15 * time.Second

// waitForNotification waits for the next notification on conn until ctx ends, and checks every
// check that the connection still works (a ping within pingTimeout); it fails when the
// connection does.
func waitForNotification(ctx context.Context, conn *pgx.Conn, check time.Duration) (*pgconn.Notification, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, check)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return n, classify(err)
		}
		// The wait timed out; pgconn keeps the connection usable after a timeout.
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return nil, classify(fmt.Errorf("check the connection: %w", err))
		}
	}
}

// decodeWakeup turns a notification into a wake-up; false for one of this store's own node
// and for one it does not understand.
func (s *Store) decodeWakeup(channel, payload string) (store.Wakeup, bool) {
	sender, subject, ok := parseWakePayload(payload)
	if !ok || subject == "" || sender != "" && sender == s.sender() {
		return store.Wakeup{}, false
	}
	switch channel {
	case wakeChannel:
		return store.Wakeup{Kind: store.WakePipeline, Pipeline: subject}, true
	case cancelChannel:
		return store.Wakeup{Kind: store.WakeCancel, JobID: subject}, true
	}
	return store.Wakeup{}, false
}
