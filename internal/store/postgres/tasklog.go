package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"
	"github.com/prunner-dev/prunner/internal/tasklog"
)

// Task output in the database (issue 12): TaskLogs is the tasklog.Backend that keeps every
// stream of every attempt as rows of task_output (see migration 0004), so that
// tasklog.NewLive(store.TaskLogs(opts)) is a tasklog.Store whose output every node reads and
// which survives the node that wrote it.
//
// Writing. An appender buffers the writes of its stream and commits them as one row (a chunk)
// when the buffer holds BatchBytes, when FlushInterval has passed since its first unflushed
// write, and on Close, which returns once the last chunk is committed. One chunk is committed at
// a time, by a goroutine started for that chunk, while the writer fills the next buffer: a writer
// that produces faster than the database takes waits in Write once the next buffer is full, so
// an appender holds at most two batches (2 × BatchBytes) whatever the task writes. A failed
// commit is retried a few times (a chunk is keyed by its offset, so inserting it twice stores it
// once); when it still fails, every later Write and Close return the error, and the task fails
// with it instead of losing output silently.
//
// Fencing. A store registered as a node commits a chunk only while the job is its own under
// its lease, checked in the chunk's statement as every write about the job is (prunner_fence,
// see cluster.go): a node that lost its lease (paused past it, reaped) cannot append output to
// a job another node has ended. The refusal is store.ErrLeaseLost; the writer fails with it,
// as after any failed commit.
//
// What a crash loses. A node that dies (kill -9, power loss) loses the output its tasks wrote
// since their last committed chunk: at most two batches per stream (the one being committed
// and the one being filled: 2 × 64 KiB by default) and at most FlushInterval (200 ms by
// default) plus one commit's time of output for a task that writes slowly. Everything before
// it is in the database.
//
// Reading. A reader fetches the chunks that hold the next 256 KiB (outputReadAhead) of a stream
// with one query and keeps them for the reads that follow, so reading a stream of any size
// holds at most that and one chunk in memory. On the node that writes a stream, Open also serves the appender's unflushed part (copied at
// Open, at most two batches), as tasklog.Backend requires; on another node, a stream being
// written reads what was committed, which lags by at most the unflushed part.
//
// Notifications. With Notify set, each committed chunk sends pg_notify on OutputChannel in its
// statement, with the payload wakePayload(node, jobID) (see ParseOutputPayload), so that a
// listener on another node (ListenOutput) can call tasklog.Live.Wake for the job and its
// followers read the new output at once instead of at their next poll.
//
// Cleaning up. Nothing needs recovering: the chunks of a writer that died with its node are the
// stream as far as it was stored, and DeleteJob (retention) deletes them with the job's others.
type TaskLogs struct {
	s    *Store
	opts TaskLogOptions

	mu sync.Mutex
	// live holds the appenders of this backend that are open, for Open.
	live map[outputKey]*outputAppender
}

var _ tasklog.Backend = (*TaskLogs)(nil)

// TaskLogOptions tune TaskLogs. The zero value is the default configuration.
type TaskLogOptions struct {
	// BatchBytes is the size at which an appender commits its buffer (default 64 KiB).
	BatchBytes int
	// FlushInterval is how long a write waits at most before it is committed (default 200 ms).
	FlushInterval time.Duration
	// Notify sends a notification on OutputChannel with each committed chunk.
	Notify bool
}

// Defaults of TaskLogOptions.
const (
	DefaultOutputBatchBytes    = 64 << 10
	DefaultOutputFlushInterval = 200 * time.Millisecond
)

// OutputChannel is the channel of the notifications of committed output (TaskLogOptions.Notify).
const OutputChannel = "prunner_output"

// outputCommitTimeout bounds the commit of one chunk, retries included: a database that does not
// take a chunk within it fails the writer. It is longer than a node's default lease, so that a
// database cut off for less than a lease costs a running task no output.
const outputCommitTimeout = 30 * time.Second

// outputCommitAttempts is how often the commit of one chunk is tried.
const outputCommitAttempts = 4

// TaskLogs returns the tasklog.Backend of task output in this store's database. Each call
// returns a new backend; a node uses one (its Open serves the unflushed output of its own
// appenders only).
func (s *Store) TaskLogs(opts TaskLogOptions) *TaskLogs {
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = DefaultOutputBatchBytes
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultOutputFlushInterval
	}
	return &TaskLogs{s: s, opts: opts, live: map[outputKey]*outputAppender{}}
}

// ParseOutputPayload returns the sending node and the job ID of a notification on
// OutputChannel; false when the payload is not one.
func ParseOutputPayload(payload string) (node, jobID string, ok bool) {
	node, jobID, ok = parseWakePayload(payload)
	return node, jobID, ok && jobID != ""
}

// outputKey names one stream of one attempt (Number >= 1).
type outputKey struct {
	a      tasklog.Attempt
	stream pipeline.LogStream
}

const (
	insertOutputSQL = `INSERT INTO task_output (job_id, task, attempt, stream, off, data)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`
	insertOutputNotifySQL = `WITH chunk AS (INSERT INTO task_output (job_id, task, attempt, stream, off, data)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING)
		SELECT pg_notify('` + OutputChannel + `', $7)`
	// The fenced forms, for a store registered as a node: prunner_fence($1, node $7, epoch $8)
	// runs first in the statement, and raises PRL01 (nothing inserted, nothing notified) when
	// the job is not this node's under its lease, as it does for the job's other writes; $9 is
	// the notification's payload.
	insertOutputFencedSQL = `WITH fence AS (SELECT prunner_fence($1, $7, $8))
		INSERT INTO task_output (job_id, task, attempt, stream, off, data)
		SELECT $1, $2, $3, $4, $5, $6 FROM fence ON CONFLICT DO NOTHING`
	insertOutputFencedNotifySQL = `WITH fence AS (SELECT prunner_fence($1, $7, $8)),
		chunk AS (INSERT INTO task_output (job_id, task, attempt, stream, off, data)
			SELECT $1, $2, $3, $4, $5, $6 FROM fence ON CONFLICT DO NOTHING)
		SELECT pg_notify('` + OutputChannel + `', $9) FROM fence`
	outputSizeSQL = `SELECT off + length(data) FROM task_output
		WHERE job_id = $1 AND task = $2 AND attempt = $3 AND stream = $4 ORDER BY off DESC LIMIT 1`
	// outputChunksSQL reads the chunks of a stream that hold the bytes [$5, $6), in order: from
	// the last one that starts at $5 or before it.
	outputChunksSQL = `SELECT off, data FROM task_output
		WHERE job_id = $1 AND task = $2 AND attempt = $3 AND stream = $4 AND off < $6
		AND off >= (SELECT max(off) FROM task_output
			WHERE job_id = $1 AND task = $2 AND attempt = $3 AND stream = $4 AND off <= $5)
		ORDER BY off`
	deleteOutputSQL = `DELETE FROM task_output WHERE job_id = $1`
)

// Append returns the appender of a stream; it does no I/O until the first batch is committed.
func (b *TaskLogs) Append(ctx context.Context, a tasklog.Attempt, stream pipeline.LogStream) (tasklog.Appender, error) {
	w := &outputAppender{b: b, key: outputKey{a, stream}, ctx: context.WithoutCancel(ctx)}
	w.cond.L = &w.mu
	b.mu.Lock()
	b.live[w.key] = w
	b.mu.Unlock()
	return w, nil
}

// Open opens a stream: the committed chunks, and on this node the unflushed part of its
// appender.
func (b *TaskLogs) Open(ctx context.Context, a tasklog.Attempt, stream pipeline.LogStream) (tasklog.Reader, error) {
	r := &outputReader{b: b, ctx: ctx, key: outputKey{a, stream}}
	b.mu.Lock()
	w := b.live[r.key]
	b.mu.Unlock()
	if w != nil {
		r.stored, r.tail = w.snapshot()
	} else {
		var err error
		if r.stored, err = b.storedSize(ctx, r.key); err != nil {
			return nil, fmt.Errorf("open log of %s: %w", a, err)
		}
	}
	if r.stored+int64(len(r.tail)) == 0 {
		return tasklog.EmptyReader{}, nil
	}
	return r, nil
}

// DeleteJob deletes every chunk of the job's output; deleting twice is harmless.
func (b *TaskLogs) DeleteJob(ctx context.Context, jobID string) error {
	if _, err := b.s.exec(ctx, deleteOutputSQL, jobID); err != nil {
		return fmt.Errorf("job %s: delete logs: %w", jobID, err)
	}
	return nil
}

// storedSize returns the size of the committed part of a stream: the end of its last chunk.
func (b *TaskLogs) storedSize(ctx context.Context, k outputKey) (int64, error) {
	var size int64
	err := b.s.pool.QueryRow(ctx, outputSizeSQL, k.a.JobID, []byte(k.a.Task), k.a.Number, string(k.stream)).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return size, classify(err)
}

// insert commits one chunk, trying again after a failure: the chunk's key is its offset, so a
// chunk that was stored by an attempt whose answer was lost is not stored twice.
func (b *TaskLogs) insert(ctx context.Context, k outputKey, off int64, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, outputCommitTimeout)
	defer cancel()
	sql, args := b.insertStatement(k, off, data)
	var err error
	failures := 0
	for attempt := 1; ; attempt++ {
		_, err = b.s.exec(ctx, sql, args...)
		if !errors.Is(err, store.ErrUnavailable) {
			// While the database is unreachable the chunk waits (the writer with it, once the
			// next batch is full: memory stays bounded) until outputCommitTimeout passed;
			// other failures are tried outputCommitAttempts times.
			failures++
		}
		if err == nil || failures == outputCommitAttempts {
			break
		}
		select {
		case <-time.After(min(time.Duration(attempt)*100*time.Millisecond, time.Second)):
		case <-ctx.Done():
			return fmt.Errorf("store log of %s: %w", k.a, err)
		}
	}
	if err != nil {
		// A refusal of the fence (tried again like any failure) is store.ErrLeaseLost.
		return fmt.Errorf("store log of %s: %w", k.a, leaseLost(err))
	}
	return nil
}

// insertStatement returns the statement that stores one chunk and its arguments: fenced by the
// node's lease when the store is registered as a node, with a notification when Notify is set.
func (b *TaskLogs) insertStatement(k outputKey, off int64, data []byte) (string, []any) {
	args := []any{k.a.JobID, []byte(k.a.Task), k.a.Number, string(k.stream), off, data}
	payload := wakePayload(b.s.sender(), k.a.JobID)
	me := b.s.me()
	switch {
	case me == nil && b.opts.Notify:
		return insertOutputNotifySQL, append(args, payload)
	case me == nil:
		return insertOutputSQL, args
	case b.opts.Notify:
		return insertOutputFencedNotifySQL, append(args, me.Node, me.Epoch, payload)
	default:
		return insertOutputFencedSQL, append(args, me.Node, me.Epoch)
	}
}

// unregister removes a closed appender from the live ones.
func (b *TaskLogs) unregister(w *outputAppender) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live[w.key] == w {
		delete(b.live, w.key)
	}
}

// outputAppender buffers one stream and commits it in chunks (see TaskLogs). The stream is
// [0, stored) in the database, then inflight (being committed), then pending (being filled).
type outputAppender struct {
	b   *TaskLogs
	key outputKey
	// ctx is the context of the commits: Append's, without its cancellation (the output of a
	// cancelled task is stored all the same).
	ctx context.Context

	mu   sync.Mutex
	cond sync.Cond // broadcast when a commit ends
	// stored is the size of the committed part.
	stored   int64
	inflight []byte
	pending  []byte
	// spare is the buffer of the last committed chunk, reused for the next pending one.
	spare []byte
	timer *time.Timer
	// due is set when FlushInterval passed since the first write in pending.
	due     bool
	closing bool
	closed  bool
	err     error
}

// Write appends p to the pending batch, waiting while it is full and the previous batch is
// still being committed.
func (w *outputAppender) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	batch := w.b.opts.BatchBytes
	n := 0
	for len(p) > 0 {
		if w.err != nil {
			return n, w.err
		}
		if w.closing {
			return n, fmt.Errorf("write log: %w", fs.ErrClosed)
		}
		room := batch - len(w.pending)
		if room == 0 {
			if w.inflight == nil {
				w.startLocked()
			} else {
				w.cond.Wait()
			}
			continue
		}
		if len(w.pending) == 0 {
			w.armLocked()
		}
		k := min(room, len(p))
		w.pending = append(w.pending, p[:k]...)
		p, n = p[k:], n+k
	}
	if len(w.pending) >= batch && w.inflight == nil {
		w.startLocked()
	}
	return n, nil
}

// Close commits what is left and returns the first error of a commit; it returns once the last
// chunk is committed.
func (w *outputAppender) Close() error {
	w.mu.Lock()
	if w.closed {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.closing = true
	if w.timer != nil {
		w.timer.Stop()
	}
	for w.err == nil && (w.inflight != nil || len(w.pending) > 0) {
		if w.inflight == nil {
			w.startLocked()
		}
		w.cond.Wait()
	}
	for w.inflight != nil { // after an error: the commit under way ends before Close returns
		w.cond.Wait()
	}
	w.closed = true
	err := w.err
	w.mu.Unlock()
	w.b.unregister(w)
	return err
}

// armLocked starts the interval of a pending batch that just got its first write.
func (w *outputAppender) armLocked() {
	w.due = false
	if w.timer == nil {
		w.timer = time.AfterFunc(w.b.opts.FlushInterval, w.tick)
		return
	}
	w.timer.Reset(w.b.opts.FlushInterval)
}

// tick marks the pending batch due and commits it unless a commit is under way (which then
// starts it when it ends).
func (w *outputAppender) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 || w.closing {
		return
	}
	w.due = true
	if w.inflight == nil && w.err == nil {
		w.startLocked()
	}
}

// startLocked makes the pending batch the one being committed and commits it in a goroutine.
// The caller holds w.mu; no commit is under way.
func (w *outputAppender) startLocked() {
	w.inflight, w.pending, w.spare = w.pending, w.spare[:0], nil
	w.due = false
	if w.timer != nil {
		w.timer.Stop()
	}
	go w.commit(w.stored, w.inflight)
}

// commit stores one chunk and, when the next batch is ready (full, due, or closing), starts it.
func (w *outputAppender) commit(off int64, data []byte) {
	err := w.b.insert(w.ctx, w.key, off, data)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && w.err == nil {
		w.err = err
	}
	if err == nil {
		w.stored += int64(len(data))
		w.spare = data[:0]
	}
	w.inflight = nil
	ready := len(w.pending) >= w.b.opts.BatchBytes || w.due || w.closing
	if w.err == nil && len(w.pending) > 0 && ready {
		w.startLocked()
	}
	w.cond.Broadcast()
}

// snapshot returns the committed size and a copy of what is not committed yet.
func (w *outputAppender) snapshot() (stored int64, tail []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	tail = make([]byte, 0, len(w.inflight)+len(w.pending))
	tail = append(append(tail, w.inflight...), w.pending...)
	return w.stored, tail
}

// outputReadAhead is how much of a stream a reader fetches with one query when the bytes it is
// asked for are not in the chunks it keeps (at least the chunk that holds them): sequential
// reads in small pieces (io.Copy's) cost one round trip per outputReadAhead, and a reader keeps
// at most that plus one chunk.
const outputReadAhead = 256 << 10

// outputReader reads a stream as it was at Open: [0, stored) from the chunks in the database,
// then tail (the unflushed part on the writing node). It keeps the chunks of its last query.
type outputReader struct {
	b      *TaskLogs
	ctx    context.Context
	key    outputKey
	stored int64
	tail   []byte

	mu sync.Mutex
	// pos is the offset of Read.
	pos int64
	// window holds the contiguous chunks of the last query, in order.
	window []storedChunk
}

// storedChunk is one row of a stream.
type storedChunk struct {
	off  int64
	data []byte
}

func (r *outputReader) size() int64 { return r.stored + int64(len(r.tail)) }

// ReadAt reads from off up to the size at Open.
func (r *outputReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read log: negative offset %d", off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) && off+int64(n) < r.size() {
		cur := off + int64(n)
		if cur >= r.stored {
			n += copy(p[n:], r.tail[cur-r.stored:])
			continue
		}
		data := r.kept(cur)
		if data == nil {
			if err := r.fetch(cur); err != nil {
				return n, err
			}
			data = r.kept(cur)
		}
		n += copy(p[n:], data[:min(int64(len(data)), r.stored-cur)])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// kept returns the kept bytes from off to the end of their chunk; nil when no kept chunk holds
// off.
func (r *outputReader) kept(off int64) []byte {
	w := r.window
	i := sort.Search(len(w), func(i int) bool { return w[i].off+int64(len(w[i].data)) > off })
	if i == len(w) || w[i].off > off {
		return nil
	}
	return w[i].data[off-w[i].off:]
}

// fetch replaces the kept chunks with the ones that hold [off, off+outputReadAhead), read with
// one query. A chunk missing at off (the stream was deleted while it was read) is an error;
// the window ends at a gap after it.
func (r *outputReader) fetch(off int64) error {
	k := r.key
	r.window = r.window[:0]
	rows, err := r.b.s.pool.Query(r.ctx, outputChunksSQL, k.a.JobID, []byte(k.a.Task), k.a.Number, string(k.stream),
		off, min(off+outputReadAhead, r.stored))
	if err != nil {
		return fmt.Errorf("read log of %s: %w", k.a, classify(err))
	}
	defer rows.Close()
	next := off // the offset up to which the window holds the stream
	for rows.Next() {
		var c storedChunk
		if err := rows.Scan(&c.off, &c.data); err != nil {
			return fmt.Errorf("read log of %s: %w", k.a, err)
		}
		if c.off > next || c.off+int64(len(c.data)) <= next {
			break // a gap: not the contiguous stream it must be
		}
		r.window = append(r.window, c)
		next = c.off + int64(len(c.data))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read log of %s: %w", k.a, err)
	}
	if len(r.window) == 0 {
		return fmt.Errorf("read log of %s at offset %d: %w", k.a, off, io.ErrUnexpectedEOF)
	}
	return nil
}

func (r *outputReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	pos := r.pos
	r.mu.Unlock()
	n, err := r.ReadAt(p, pos)
	r.mu.Lock()
	r.pos = pos + int64(n)
	r.mu.Unlock()
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

func (r *outputReader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size()
	default:
		return 0, fmt.Errorf("seek log: invalid whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek log: negative position %d", offset)
	}
	r.pos = offset
	return offset, nil
}

// Close releases the chunks it keeps; the reader holds no connection.
func (r *outputReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.window = nil
	return nil
}

func (r *outputReader) Stat() (fs.FileInfo, error) {
	return outputInfo{name: string(r.key.stream), size: r.size()}, nil
}

// outputInfo is the FileInfo of a stream: its name and size.
type outputInfo struct {
	name string
	size int64
}

func (i outputInfo) Name() string       { return i.name }
func (i outputInfo) Size() int64        { return i.size }
func (i outputInfo) Mode() fs.FileMode  { return 0o644 }
func (i outputInfo) ModTime() time.Time { return time.Time{} }
func (i outputInfo) IsDir() bool        { return false }
func (i outputInfo) Sys() any           { return nil }

// ListenOutput calls fn with the job ID of every notification of committed output
// (TaskLogOptions.Notify) sent by another node, until ctx ends; it returns ctx's error. It
// listens on a connection of its own, replaced with backoff when it is lost (as Listen's): a
// node passes its tasklog.Live's Wake, so that its followers of output written elsewhere read
// it at once. Notifications lost while the connection is down cost the followers their poll
// interval, nothing more.
func (s *Store) ListenOutput(ctx context.Context, fn func(jobID string)) error {
	wait := listenBackoffMin
	for {
		began := time.Now()
		_ = s.listenOutputOnce(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
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

// listenOutputOnce listens on OutputChannel on a new connection until it fails or ctx ends.
func (s *Store) listenOutputOnce(ctx context.Context, fn func(jobID string)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("listen for output: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+OutputChannel); err != nil {
		return fmt.Errorf("listen for output: %w", err)
	}
	for {
		n, err := waitForNotification(ctx, conn, s.listenCheck)
		if err != nil {
			return fmt.Errorf("listen for output: %w", err)
		}
		node, jobID, ok := ParseOutputPayload(n.Payload)
		if ok && (node == "" || node != s.sender()) {
			fn(jobID)
		}
	}
}
