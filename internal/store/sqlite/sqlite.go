// Package sqlite is the embedded default backend of prunner: a store.Store on one SQLite file,
// through modernc.org/sqlite (pure Go, so the binary builds with CGO_ENABLED=0).
//
// The database runs in WAL mode. All writes go through one connection, which the store holds
// for its lifetime, and every write transaction begins IMMEDIATE: admissions and claims are
// serialised by that single writer, which is the store's admission lock. Reads use a separate
// pool of several connections; in WAL mode a reader sees the last committed state and never
// waits for the writer. A background goroutine checkpoints the WAL into the database file
// shortly after writes, so that no commit pays for it.
//
// Durability: by default the database uses synchronous=NORMAL. A commit is durable across a
// crash of the process (kill -9 included) once Admit returns, because the WAL is written before
// the commit returns. A power loss or an operating-system crash may lose the commits since the
// last checkpoint (about the last 100 ms of writes), never the database's consistency.
// Options.SynchronousFull trades one fsync per write transaction for durability across those
// too.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
	"github.com/prunner-dev/prunner/internal/store"

	// The driver registers itself as "sqlite".
	_ "modernc.org/sqlite"
)

// migrationFiles holds the schema migrations, applied in file-name order at Open. Each file is
// one schema version (0001_… is version 1); PRAGMA user_version records the applied version.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune Open. The zero value is the default configuration.
type Options struct {
	// SynchronousFull sets PRAGMA synchronous=FULL: each write transaction waits for an fsync of
	// the WAL, so a power loss cannot lose acknowledged jobs. The default (NORMAL) already
	// survives a crash of the process.
	SynchronousFull bool
	// ReadConns is the size of the read pool (default 4).
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by another process before it
	// fails with SQLITE_BUSY (default 10s). Within one Store the writer pool already serialises
	// writes, so this only matters when another process touches the file.
	BusyTimeout time.Duration
}

// Store is the SQLite implementation of store.Store. It is safe for concurrent use.
type Store struct {
	// write is a pool of exactly one connection, which wconn holds for the store's lifetime.
	write *sql.DB
	wconn *sql.Conn
	// wlock serialises the use of wconn: it is the store's admission lock. A channel
	// rather than a mutex, so that waiting for it honours the caller's context.
	wlock  chan struct{}
	closed bool // guarded by wlock
	// prepareErr is the error of preparing the statements (see prepareInBackground); guarded
	// by wlock. prepared is closed once they are prepared.
	prepareErr error
	prepared   chan struct{}
	read       *sql.DB
	// ws holds the statements of the write paths, prepared once on wconn.
	ws writeStmts
	// rs holds the statements of the hot read paths, prepared on the read pool.
	rs readStmts
	// fs holds the statements of a schedule's firing (see schedules.go), prepared on wconn.
	fs firingStmts
	// defs caches decoded definition snapshots (see definitionCache).
	defs definitionCache

	// ckpt checkpoints the WAL in the background (see checkpointer).
	ckpt *checkpointer
	// txq holds the writes waiting for the writer (see groupcommit.go).
	txq txQueue
	// migratedFrom is the schema version the file had when it was opened.
	migratedFrom int
	// stmts holds every prepared statement (of ws and rs), closed by Close.
	stmts []*sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// errClosed is returned by the methods of a closed store.
var errClosed = errors.New("sqlite store is closed")

// Open opens (creating when missing) the database file at path, applies the pending migrations
// and returns the store, with the default Options.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is Open with explicit Options.
func OpenWith(ctx context.Context, path string, opts Options) (*Store, error) {
	s, err := open(ctx, path, opts)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string, opts Options) (_ *Store, err error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	opts = withDefaults(opts)
	p := newPragmas(opts)
	write, err := openWriter(abs, p)
	if err != nil {
		return nil, err
	}
	s := &Store{write: write, wlock: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.initWriter(ctx, p); err != nil {
		return nil, err
	}
	if s.ckpt, err = startCheckpointer(dsn(abs, p.checkpointer())); err != nil {
		return nil, err
	}
	if s.read, err = openReaders(abs, p, opts.ReadConns); err != nil {
		return nil, err
	}
	s.prepareInBackground(ctx)
	if err := s.backfillOnce(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// withDefaults fills in the defaults of the Options left zero.
func withDefaults(opts Options) Options {
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	return opts
}

// pragmas are the connection settings that Options decide, as SQLite spells them. They go into
// the DSNs so that database/sql applies them to every connection it opens, including ones it
// re-opens later.
type pragmas struct {
	synchronous string // NORMAL or FULL
	busy        string // the busy timeout in milliseconds
}

// newPragmas spells the settings of opts, whose defaults are filled in.
func newPragmas(opts Options) pragmas {
	p := pragmas{synchronous: "NORMAL", busy: strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)}
	if opts.SynchronousFull {
		p.synchronous = "FULL"
	}
	return p
}

// writer is the query of the writer's DSN. journal_mode=WAL is persistent in the file: the
// writer sets it once, in enableWAL (first, before any reader connects), readers only inherit
// it.
func (p pragmas) writer() url.Values {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+p.busy+")")
	q.Add("_pragma", "synchronous("+p.synchronous+")")
	q.Add("_pragma", "foreign_keys(1)")
	// Each write of a group-committed batch is a savepoint, and SQLite keeps the old content
	// of the pages a savepoint changes in a sub-journal: in a temporary file by default, one
	// write(2) per page, a sixth of the writer's time in a burst of firings. In memory it is a
	// copy; a batch touches at most a few hundred pages.
	q.Add("_pragma", "temp_store(2)")
	// The background checkpointer copies the WAL into the database file, so that a commit
	// does not pay for it (half the cost of an admission). The writer checkpoints only when
	// the WAL grows past walFallbackPages, which happens only if the background falls behind.
	q.Add("_pragma", "wal_autocheckpoint("+strconv.Itoa(walFallbackPages)+")")
	// A WAL that grew under load is truncated to this size once it has been checkpointed.
	q.Add("_pragma", "journal_size_limit("+strconv.Itoa(walSizeLimit)+")")
	// Every write transaction takes the write lock at BEGIN, before its first read, so the
	// state that Admit and Claim read cannot change before they commit. writeTx issues BEGIN
	// IMMEDIATE itself; _txlock covers any database/sql transaction on the pool too.
	q.Set("_txlock", "immediate")
	return q
}

// checkpointer is the query of the checkpointer's DSN. The checkpointer copies pages from the
// WAL into the file: it needs no cache of its own.
func (p pragmas) checkpointer() url.Values {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+p.busy+")")
	q.Add("_pragma", "synchronous("+p.synchronous+")")
	q.Add("_pragma", "cache_size(-256)")
	return q
}

// reader is the query of the read pool's DSN.
func (p pragmas) reader() url.Values {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+p.busy+")")
	q.Add("_pragma", "foreign_keys(1)")
	// query_only protects against a write slipping into the read pool, where it would bypass
	// the single-writer serialisation.
	q.Add("_pragma", "query_only(1)")
	// Each reader keeps 512 KiB of pages (SQLite's default is 2 MiB), enough for the interior
	// pages of the tables and indexes that lookups go through; a long list streams through far
	// more than any cache holds and reads from the OS's page cache either way. With four
	// readers and the checkpointer this saves some 7 MiB of resident memory.
	q.Add("_pragma", "cache_size(-512)")
	return q
}

// openWriter opens the writer's pool of exactly one connection, which is never closed for
// being idle or old, because the store holds it for its lifetime.
func openWriter(abs string, p pragmas) (*sql.DB, error) {
	write, err := sql.Open("sqlite", dsn(abs, p.writer()))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	return write, nil
}

// initWriter takes the writer's connection, puts the file into WAL mode and migrates its
// schema. A new file is migrated without fsyncs (see enableWAL); once its schema is written,
// every write is as durable as configured again.
func (s *Store) initWriter(ctx context.Context, p pragmas) (err error) {
	if s.wconn, err = s.write.Conn(ctx); err != nil {
		return err
	}
	if err := s.prepareTxControl(ctx); err != nil {
		return err
	}
	created, err := s.enableWAL(ctx)
	if err != nil {
		return err
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if created {
		if _, err := s.wconn.ExecContext(ctx, "PRAGMA synchronous = "+p.synchronous); err != nil {
			return err
		}
	}
	return nil
}

// openReaders opens the read pool of conns connections, kept open for the store's lifetime.
func openReaders(abs string, p pragmas, conns int) (*sql.DB, error) {
	read, err := sql.Open("sqlite", dsn(abs, p.reader()))
	if err != nil {
		return nil, err
	}
	read.SetMaxOpenConns(conns)
	read.SetMaxIdleConns(conns)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)
	return read, nil
}

// backfillOnce gives the jobs that finished before the schema had records theirs, once: only
// when the file was migrated from a version without them.
func (s *Store) backfillOnce(ctx context.Context) error {
	if s.migratedFrom >= recordsVersion {
		return nil
	}
	if err := s.writeTx(ctx, s.backfillRecords); err != nil {
		return fmt.Errorf("store the records of finished jobs: %w", err)
	}
	return nil
}

// enableWAL puts the database into WAL mode, which is persistent in the file, so that only a new
// file needs the switch. A new, empty file is switched and then migrated without fsyncs
// (synchronous=OFF; the switch keeps its one-page journal in memory), which saves the half dozen
// fsyncs and the journal file that creating a WAL database otherwise costs: a crash before the
// first checkpoint leaves an empty database at worst, which the next start migrates again. It
// reports whether it did that; the caller then restores the configured synchronous mode.
func (s *Store) enableWAL(ctx context.Context) (created bool, err error) {
	var mode string
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return false, fmt.Errorf("read journal_mode: %w", err)
	}
	if strings.EqualFold(mode, "wal") {
		return false, nil
	}
	var pages int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return false, fmt.Errorf("read page_count: %w", err)
	}
	steps := []string{"PRAGMA journal_mode = WAL"}
	if pages == 0 {
		created = true
		steps = []string{"PRAGMA synchronous = OFF", "PRAGMA journal_mode = MEMORY", "PRAGMA journal_mode = WAL"}
	}
	for _, q := range steps {
		if err := s.wconn.QueryRowContext(ctx, q).Scan(&mode); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("%s: %w", q, err)
		}
	}
	if !strings.EqualFold(mode, "wal") {
		return false, fmt.Errorf("could not enable WAL mode: journal_mode is %q", mode)
	}
	return created, nil
}

// dsn builds a file: URI, so that special characters in the path are escaped and the query
// parameters reach the driver.
func dsn(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// Close waits for the write in progress, then closes the connections. It is idempotent:
// later calls return the result of the first.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.wlock <- struct{}{}
		s.closed = true
		<-s.wlock

		var errs []error
		if s.ckpt != nil {
			errs = append(errs, s.ckpt.stop())
		}
		for _, st := range s.stmts {
			if st != nil {
				errs = append(errs, st.Close())
			}
		}
		// Readers first: the last connection to close checkpoints the WAL into the main file.
		if s.read != nil {
			errs = append(errs, s.read.Close())
		}
		if s.wconn != nil {
			// With no reader left the checkpoint copies everything and empties the WAL, so
			// that the next start reads one compact file instead of a WAL grown under load.
			// (SQLite skips this itself when it cannot get the file to itself.)
			if _, err := s.wconn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				errs = append(errs, fmt.Errorf("checkpoint: %w", err))
			}
		}
		if s.wconn != nil {
			errs = append(errs, s.wconn.Close())
		}
		errs = append(errs, s.write.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close sqlite store: %w", err)
		}
	})
	return s.closeErr
}

// withWriter runs fn with the writer connection to itself. The statements of fn run with a
// context that is never canceled: a write takes microseconds, while for a cancelable context
// database/sql and the driver start a goroutine per statement to watch it, which costs more
// than the statement. The caller's context still bounds the wait for the writer.
func (s *Store) withWriter(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.wlock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wlock }()
	if s.closed {
		return errClosed
	}
	if s.prepareErr != nil {
		return s.prepareErr
	}
	if err := fn(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	s.ckpt.kick()
	return nil
}

// writeTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits when fn returns nil.
func (s *Store) writeTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.withWriter(ctx, func(ctx context.Context) error { return s.inTx(ctx, fn) })
}

// inTx runs fn between BEGIN IMMEDIATE and COMMIT, rolling back when fn or the commit fails.
// The caller holds the writer.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, err := s.ws.begin.ExecContext(ctx); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(ctx); err != nil {
		_, _ = s.ws.rollback.ExecContext(ctx)
		return err
	}
	if _, err := s.ws.commit.ExecContext(ctx); err != nil {
		_, _ = s.ws.rollback.ExecContext(ctx)
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// migrations returns the embedded migrations in version order (see store.LoadMigrations).
func migrations() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFiles, "migrations")
}

// migrate applies the migrations newer than the database's user_version. The usual case, a
// current schema, costs one read and no transaction. Pending migrations are applied in one write
// transaction together with the new user_version, so a crash never leaves a half-applied
// migration behind. A database written by a newer binary is refused rather than misread.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	latest := len(ms)
	current, err := s.schemaVersion(ctx, latest)
	s.migratedFrom = current
	if err != nil || current == latest {
		return err
	}
	return s.writeTx(ctx, func(ctx context.Context) error {
		// Read again under the write lock: another process may have migrated meanwhile.
		current, err := s.schemaVersion(ctx, latest)
		if err != nil {
			return err
		}
		for _, m := range ms[current:] {
			if _, err := s.wconn.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migrate: %s: %w", m.Name, err)
			}
		}
		if current == latest {
			return nil
		}
		// PRAGMA takes no bound parameters; the version is an int from our own file names.
		if _, err := s.wconn.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(latest)); err != nil {
			return fmt.Errorf("migrate: set user_version: %w", err)
		}
		return nil
	})
}

// schemaVersion returns the database's user_version, the number of migrations applied to it,
// refusing one newer than latest.
func (s *Store) schemaVersion(ctx context.Context, latest int) (int, error) {
	var current int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return 0, fmt.Errorf("migrate: read user_version: %w", err)
	}
	if current > latest {
		return 0, fmt.Errorf("migrate: database schema version %d is newer than this binary supports (%d)", current, latest)
	}
	return current, nil
}

// definitionCache maps the JSON text of a definition snapshot to its decoded value. Jobs of one
// pipeline version share the same snapshot text, and decoding it is by far the most expensive
// part of reading a job, so a list of thousands of jobs decodes a handful of definitions. The
// returned *pipeline.Definition values are shared between jobs: a Definition is immutable once
// loaded (see pipeline.Definition).
type definitionCache struct {
	mu sync.Mutex
	m  map[string]*pipeline.Definition
}

// maxCachedDefinitions bounds the cache; it is cleared when full, which is rare (one entry per
// pipeline version still present in the database).
const maxCachedDefinitions = 256

func (c *definitionCache) get(text string) (*pipeline.Definition, error) {
	c.mu.Lock()
	d, ok := c.m[text]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	d = new(pipeline.Definition)
	if err := unmarshalJSON(text, d); err != nil {
		return nil, fmt.Errorf("decode definition: %w", err)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedDefinitions {
		c.m = make(map[string]*pipeline.Definition)
	}
	c.m[text] = d
	c.mu.Unlock()
	return d, nil
}

const (
	// checkpointDelay lets commits accumulate, so that one checkpoint (and its fsync) covers
	// many of them.
	checkpointDelay = 100 * time.Millisecond
	// walFallbackPages is the WAL size (pages) at which the writer checkpoints by itself.
	walFallbackPages = 10000
	// walSizeLimit is the size (bytes) a checkpointed WAL file is truncated to.
	walSizeLimit = 64 << 20
)

// checkpointer runs PRAGMA wal_checkpoint(PASSIVE) on a connection of its own, shortly after
// writes. A passive checkpoint neither waits for nor blocks readers and the writer. It also
// bounds what a power loss can take with synchronous=NORMAL: the WAL is synced when it is
// checkpointed.
type checkpointer struct {
	db      *sql.DB
	kicks   chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func startCheckpointer(dsn string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, kicks: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go c.run()
	return c, nil
}

// kick tells the checkpointer that something was committed. It never blocks.
func (c *checkpointer) kick() {
	if c == nil {
		return
	}
	select {
	case c.kicks <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.done:
			return
		case <-c.kicks:
		}
		select {
		case <-c.done:
			return
		case <-time.After(checkpointDelay):
		}
		// A failed checkpoint is retried after the next commit; meanwhile the WAL keeps
		// every change, and the writer checkpoints itself if it grows too far.
		_, _ = c.db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	}
}

// stop ends the goroutine and closes the connection. The last connection that closes the
// database checkpoints the WAL anyway.
func (c *checkpointer) stop() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		<-c.stopped
		err = c.db.Close()
	})
	return err
}
