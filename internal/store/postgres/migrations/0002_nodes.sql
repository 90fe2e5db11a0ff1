-- 0002_nodes adds node leases and job ownership (issue 12): the nodes of a cluster, which node
-- runs each running job, and the fencing functions that every write about a running job calls.
--
-- Lease times are timestamptz from the DATABASE's clock (clock_timestamp()), never a node's: a
-- node whose clock is off, or which was paused, cannot extend its own lease by mistake.

-- One row per node ID that ever registered. epoch counts the registrations of the ID: a node
-- that restarts with the same ID (or registers again after losing its lease) gets a new epoch,
-- and the jobs it claimed under an earlier one are no longer its to write. state is 'alive' or
-- 'lost' (the reaper found its lease expired and ended its running jobs).
CREATE TABLE nodes (
    id               text        PRIMARY KEY,
    address          text        NOT NULL DEFAULT '',
    version          text        NOT NULL DEFAULT '',
    definitions_hash text        NOT NULL DEFAULT '',
    epoch            bigint      NOT NULL DEFAULT 1,
    state            text        NOT NULL DEFAULT 'alive',
    started          timestamptz NOT NULL,
    heartbeat        timestamptz NOT NULL,
    lease_until      timestamptz NOT NULL
);

-- The owner of a running job and the epoch of the lease it was started under; NULL for jobs
-- that never ran, and for jobs started by a store that is not registered as a node (one node per
-- database: nothing to fence).
ALTER TABLE jobs ADD COLUMN node text;
ALTER TABLE jobs ADD COLUMN lease_epoch bigint;

-- The running jobs of a node: what the reaper and per-node recovery end.
CREATE INDEX jobs_running_node ON jobs (node, lease_epoch) WHERE status = 'running';

-- prunner_check_lease raises PRL01 unless node me holds a valid lease of epoch ep: alive, the
-- same epoch, and lease_until after the database's clock. It locks the node's row FOR KEY SHARE
-- until the transaction ends: the reaper locks it FOR UPDATE, so a write that passed the check
-- commits before the reaper can end the node's jobs, and a write that comes after the reaper
-- finds the node lost. (A renewal only updates non-key columns and does not wait for writers.)
CREATE FUNCTION prunner_check_lease(me text, ep bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM nodes
        WHERE id = me AND epoch = ep AND state = 'alive' AND lease_until > clock_timestamp()
        FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'node % lost its lease (epoch %)', me, ep USING ERRCODE = 'PRL01';
    END IF;
END $$;

-- prunner_fence raises PRL01 unless node me (lease epoch ep) may write about job jid: the job is
-- owned by me under epoch ep and that lease is valid (prunner_check_lease). A job without an
-- owner (queued, or started by an unregistered store) and a missing job pass: the write itself
-- reports what it finds. The owner of a running job never changes, so reading it without a lock
-- is enough.
CREATE FUNCTION prunner_fence(jid text, me text, ep bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    owner       text;
    owner_epoch bigint;
BEGIN
    SELECT node, lease_epoch INTO owner, owner_epoch FROM jobs WHERE id = jid;
    IF NOT FOUND OR owner IS NULL THEN
        RETURN;
    END IF;
    IF owner IS DISTINCT FROM me OR owner_epoch IS DISTINCT FROM ep THEN
        RAISE EXCEPTION 'job % belongs to node % (epoch %), not to node % (epoch %)',
            jid, owner, owner_epoch, me, ep USING ERRCODE = 'PRL01';
    END IF;
    PERFORM prunner_check_lease(me, ep);
END $$;
