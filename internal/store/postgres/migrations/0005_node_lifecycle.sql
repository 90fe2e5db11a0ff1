-- 0005_node_lifecycle adds what the node table tells about a node's limits and its end (issue
-- 12): max_jobs is the most jobs the node runs at once (its --max-jobs; 0: no limit), which a
-- queued job's wait reason reads when every node is full. A node's state may now also be
-- 'stopped': it stopped cleanly (its lease ended with it) and is neither alive nor lost.
ALTER TABLE nodes ADD COLUMN max_jobs integer NOT NULL DEFAULT 0;

-- A cancel request of an interrupt_running pipeline names the newer job that interrupts the
-- running one (NULL: a plain cancel request), so that the node that runs it ends it as
-- interrupted by that job, wherever the newer job was admitted.
ALTER TABLE jobs ADD COLUMN cancel_replaced_by text;
