package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
)

// Node leases, job ownership and fencing (store.Cluster), on the nodes table and the two
// functions of migration 0002:
//
//   - A registered store starts jobs (Admit, Claim) with its node ID and epoch as their owner,
//     after prunner_check_lease in the same transaction.
//   - Every write about a job (UpdateTask, FinishJob, FinishAndClaim) of a registered store runs
//     prunner_fence first in its transaction: the job must be this node's under this epoch and
//     the lease valid by the database's clock. It raises SQLSTATE PRL01 otherwise, which aborts
//     the transaction (nothing written) and comes back as store.ErrLeaseLost.
//   - Both lock the node's row FOR KEY SHARE; the reaper locks it FOR UPDATE. Lock order: a
//     schedule's state row, the node's row, pipeline rows, job rows, task rows.

var _ store.Cluster = (*Store)(nil)

// leaseLostCode is the SQLSTATE that the fencing functions raise.
const leaseLostCode = "PRL01"

// leaseLost turns the fencing functions' error into store.ErrLeaseLost (keeping the database's
// message); other errors are returned as they are.
func leaseLost(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == leaseLostCode {
		return fmt.Errorf("%w: %s", store.ErrLeaseLost, pgErr.Message)
	}
	return err
}

// me returns the registered node (nil when the store is not registered).
func (s *Store) me() *store.Lease {
	return s.self.Load()
}

const (
	checkLeaseSQL = `SELECT prunner_check_lease($1, $2)`
	fenceSQL      = `SELECT prunner_fence($1, $2, $3)`
)

// queueCheckLease queues, for a registered store, the check of its lease (see the package
// comment above) in b; nothing for a store that is not registered.
func (s *Store) queueCheckLease(b *pgx.Batch) {
	if me := s.me(); me != nil {
		b.Queue(checkLeaseSQL, me.Node, me.Epoch)
	}
}

// queueFence queues, for a registered store, the fencing of a write about job jobID in b.
func (s *Store) queueFence(b *pgx.Batch, jobID string) {
	if me := s.me(); me != nil {
		b.Queue(fenceSQL, jobID, me.Node, me.Epoch)
	}
}

// owner returns the owner columns of a job this store starts: NULLs when it is not registered.
func (s *Store) owner() (node *string, epoch *int64) {
	if me := s.me(); me != nil {
		return &me.Node, &me.Epoch
	}
	return nil, nil
}

// Shared implements store.Cluster: several nodes may share a PostgreSQL database.
func (s *Store) Shared() bool { return true }

// microseconds is the form in which a lease length is passed to SQL (interval precision).
func microseconds(d time.Duration) int64 { return d.Microseconds() }

const registerNodeSQL = `INSERT INTO nodes AS n (id, address, version, definitions_hash, max_jobs, epoch,
		state, started, heartbeat, lease_until)
	VALUES ($1, $2, $3, $4, $6, 1, 'alive', clock_timestamp(), clock_timestamp(),
		clock_timestamp() + $5::bigint * interval '1 microsecond')
	ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address, version = EXCLUDED.version,
		definitions_hash = EXCLUDED.definitions_hash, max_jobs = EXCLUDED.max_jobs, epoch = n.epoch + 1, state = 'alive',
		started = EXCLUDED.started, heartbeat = EXCLUDED.heartbeat, lease_until = EXCLUDED.lease_until
	RETURNING epoch, lease_until`

// RegisterNode implements store.Cluster.
func (s *Store) RegisterNode(ctx context.Context, n store.NodeInfo, lease time.Duration) (store.Lease, error) {
	if n.ID == "" || lease <= 0 || n.MaxJobs < 0 {
		return store.Lease{}, errors.New("register node: an ID, a positive lease and a max jobs of 0 or more are required")
	}
	l := store.Lease{Node: n.ID}
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, registerNodeSQL, n.ID, n.Address, n.Version, n.DefinitionsHash,
			microseconds(lease), n.MaxJobs).Scan(&l.Epoch, &l.Until)
	})
	if err != nil {
		return store.Lease{}, fmt.Errorf("register node %s: %w", n.ID, err)
	}
	s.self.Store(&l)
	return l, nil
}

const renewLeaseSQL = `UPDATE nodes SET heartbeat = clock_timestamp(),
		lease_until = clock_timestamp() + $3::bigint * interval '1 microsecond'
	WHERE id = $1 AND epoch = $2 AND state = 'alive' AND lease_until > clock_timestamp()
	RETURNING lease_until`

// RenewLease implements store.Cluster. Renewing twice is harmless, so a renewal whose
// connection was lost runs again.
func (s *Store) RenewLease(ctx context.Context, lease time.Duration) (store.Lease, error) {
	me := s.me()
	if me == nil {
		return store.Lease{}, errors.New("renew lease: the store is not registered as a node")
	}
	l := *me
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, renewLeaseSQL, l.Node, l.Epoch, microseconds(lease)).Scan(&l.Until)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Lease{}, fmt.Errorf("renew lease of node %s (epoch %d): %w", l.Node, l.Epoch, store.ErrLeaseLost)
	}
	if err != nil {
		return store.Lease{}, fmt.Errorf("renew lease of node %s: %w", l.Node, err)
	}
	s.self.CompareAndSwap(me, &l)
	return l, nil
}

// reapCandidatesSQL finds the nodes the reaper has work for: those whose lease expired and that
// are not marked lost yet or still own running jobs, and those that own running jobs of an
// earlier epoch (a node that registered again).
const reapCandidatesSQL = `SELECT n.id FROM nodes n WHERE n.lease_until <= clock_timestamp()
		AND (n.state = 'alive' OR EXISTS (SELECT 1 FROM jobs j WHERE j.node = n.id AND j.status = 'running'))
	UNION
	SELECT n.id FROM nodes n WHERE EXISTS (SELECT 1 FROM jobs j
		WHERE j.node = n.id AND j.status = 'running' AND j.lease_epoch IS DISTINCT FROM n.epoch)
	ORDER BY 1`

// lockNodeSQL locks a node's row against its writers (which hold it FOR KEY SHARE) and tells
// whether its lease has expired, by the database's clock after the lock was granted.
const lockNodeSQL = `SELECT epoch, lease_until <= clock_timestamp() FROM nodes WHERE id = $1 FOR UPDATE`

// ReapLostNodes implements store.Cluster: each node in a transaction of its own, so that one
// node's trouble does not hold back the others.
func (s *Store) ReapLostNodes(ctx context.Context, now time.Time) ([]store.ReapedNode, error) {
	var ids []string
	rows, err := s.query(ctx, reapCandidatesSQL)
	if err == nil {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, fmt.Errorf("reap lost nodes: %w", err)
	}
	var reaped []store.ReapedNode
	for _, id := range ids {
		jobs, err := s.reapNode(ctx, id, now)
		if err != nil {
			return reaped, fmt.Errorf("reap node %s: %w", id, err)
		}
		if len(jobs) > 0 {
			reaped = append(reaped, store.ReapedNode{Node: id, Jobs: jobs})
		}
	}
	return reaped, nil
}

// reapNode reaps one node under the lock of its row: when its lease has expired, an alive node
// is marked lost (a stopped one stays stopped) and all its running jobs end; otherwise only its running jobs of earlier epochs end.
// Another reaper that reaped it meanwhile leaves nothing to end.
func (s *Store) reapNode(ctx context.Context, id string, now time.Time) ([]string, error) {
	var ended []string
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var (
			epoch   int64
			expired bool
		)
		if err := tx.QueryRow(ctx, lockNodeSQL, id).Scan(&epoch, &expired); err != nil {
			return fmt.Errorf("lock node: %w", err)
		}
		except := &epoch
		if expired {
			if _, err := tx.Exec(ctx, `UPDATE nodes SET state = 'lost' WHERE id = $1 AND state = 'alive'`, id); err != nil {
				return fmt.Errorf("mark lost: %w", err)
			}
			except = nil
		}
		var err error
		ended, err = endOwnedJobs(ctx, tx, id, except, store.LostNodeReason(id), now)
		return err
	})
	return ended, err
}

// RecoverNode implements store.Cluster.
func (s *Store) RecoverNode(ctx context.Context, reason string, now time.Time) ([]string, error) {
	me := s.me()
	if me == nil {
		return s.RecoverRunning(ctx, reason, now)
	}
	var ended []string
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var (
			epoch   int64
			expired bool
		)
		if err := tx.QueryRow(ctx, lockNodeSQL, me.Node).Scan(&epoch, &expired); err != nil {
			return fmt.Errorf("lock node: %w", err)
		}
		var err error
		ended, err = endOwnedJobs(ctx, tx, me.Node, &me.Epoch, reason, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recover the jobs of node %s: %w", me.Node, err)
	}
	return ended, nil
}

// The statements of endOwnedJobs: $1 is the node, $2 the epoch whose jobs stay (NULL: none).
const (
	ownedJobsFilter       = `node = $1 AND status = 'running' AND ($2::bigint IS NULL OR lease_epoch IS DISTINCT FROM $2::bigint)`
	lockOwnedPipelinesSQL = `SELECT name FROM pipelines WHERE name IN (SELECT pipeline FROM jobs WHERE ` +
		ownedJobsFilter + `) ORDER BY name FOR UPDATE`
	endOwnedJobsSQL = `UPDATE jobs SET status = '` + string(pipeline.JobFailed) + `', ended_at = $3,
		last_error = $4, errored = true WHERE ` + ownedJobsFilter + ` RETURNING seq, id, pipeline`
	freeSlotsSQL = `UPDATE pipelines p SET running = p.running - c.n
		FROM (SELECT name, count(*) AS n FROM unnest($1::text[]) AS name GROUP BY name) c
		WHERE p.name = c.name`
)

// endOwnedJobs ends the running jobs of node (except those of epoch except, when not nil) as
// failed with reason, their tasks as RecoverRunning ends them, and frees their slots. The
// caller holds the node's row locked, so that the set of those jobs cannot change meanwhile.
// Returns their IDs in creation order.
func endOwnedJobs(ctx context.Context, tx pgx.Tx, node string, except *int64, reason string, now time.Time) ([]string, error) {
	// The pipelines' locks, in name order (the order of RecoverRunning), before their jobs.
	if _, err := tx.Exec(ctx, lockOwnedPipelinesSQL, node, except); err != nil {
		return nil, fmt.Errorf("lock pipelines: %w", err)
	}
	rows, err := tx.Query(ctx, endOwnedJobsSQL, node, except, nanos(now), reason)
	if err != nil {
		return nil, fmt.Errorf("end jobs: %w", err)
	}
	type ended struct {
		seq          int64
		id, pipeline string
	}
	var (
		e  ended
		es []ended
	)
	if _, err := pgx.ForEachRow(rows, []any{&e.seq, &e.id, &e.pipeline}, func() error {
		es = append(es, e)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("end jobs: %w", err)
	}
	if len(es) == 0 {
		return nil, nil
	}
	slices.SortFunc(es, func(a, b ended) int { return cmp.Compare(a.seq, b.seq) })
	ids, seqs, pipelines := make([]string, len(es)), make([]int64, len(es)), make([]string, len(es))
	for i, e := range es {
		ids[i], seqs[i], pipelines[i] = e.id, e.seq, e.pipeline
	}
	if err := endTasksOfLostJobs(ctx, tx, seqs, reason, now); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, freeSlotsSQL, pipelines); err != nil {
		return nil, fmt.Errorf("free slots: %w", err)
	}
	return ids, nil
}

const nodesSQL = `SELECT n.id, n.address, n.version, n.definitions_hash, n.max_jobs, n.epoch, n.state, n.started,
		n.heartbeat, n.lease_until,
		(SELECT count(*) FROM jobs j WHERE j.node = n.id AND j.status = 'running')
	FROM nodes n ORDER BY n.id`

// Nodes implements store.Cluster.
func (s *Store) Nodes(ctx context.Context) ([]store.Node, error) {
	rows, err := s.query(ctx, nodesSQL)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var (
		n     store.Node
		state string
		nodes []store.Node
	)
	_, err = pgx.ForEachRow(rows, []any{&n.ID, &n.Address, &n.Version, &n.DefinitionsHash, &n.MaxJobs, &n.Epoch, &state,
		&n.Started, &n.Heartbeat, &n.LeaseUntil, &n.Running}, func() error {
		n.State = store.NodeState(state)
		nodes = append(nodes, n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}

const setDefinitionsHashSQL = `UPDATE nodes SET definitions_hash = $3 WHERE id = $1 AND epoch = $2`

// SetDefinitionsHash implements store.Cluster. The registration also records the hash, so a
// node that registers again after a lost lease keeps saying what it runs.
func (s *Store) SetDefinitionsHash(ctx context.Context, hash string) error {
	me := s.me()
	if me == nil {
		return nil
	}
	if _, err := s.pool.Exec(ctx, setDefinitionsHashSQL, me.Node, me.Epoch, hash); err != nil {
		return fmt.Errorf("record the definitions hash of node %s: %w", me.Node, err)
	}
	return nil
}

// stopNodeSQL marks the node of this epoch stopped and ends its lease by the database's clock,
// so that its late writes are refused (prunner_check_lease wants it alive) and the reaper has
// nothing to wait for.
const stopNodeSQL = `UPDATE nodes SET state = 'stopped', heartbeat = clock_timestamp(),
		lease_until = LEAST(lease_until, clock_timestamp())
	WHERE id = $1 AND epoch = $2`

// StopNode implements store.Cluster. A node that registered again meanwhile under the same ID
// (another epoch: another process) is left alone.
func (s *Store) StopNode(ctx context.Context) error {
	me := s.me()
	if me == nil {
		return nil
	}
	if err := s.writeTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, stopNodeSQL, me.Node, me.Epoch)
		return err
	}); err != nil {
		return fmt.Errorf("mark node %s stopped: %w", me.Node, err)
	}
	return nil
}
