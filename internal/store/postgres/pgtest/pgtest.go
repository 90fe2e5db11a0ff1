// Package pgtest gives tests a throwaway PostgreSQL database: NewDatabase creates one with a
// random name on the test server and drops it when the test ends, so tests can run in parallel
// and leave nothing behind.
//
// The server is PRUNNER_TEST_DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/test
// (the database named in the URL is only used to create and drop the test databases).
//
// When the server is not reachable, the tests that need it skip, with one clear message — unless
// CI=true or PRUNNER_TEST_POSTGRES=on, where they fail: CI has a PostgreSQL, and a test that
// skips there would hide a broken backend. PRUNNER_TEST_POSTGRES=off skips them without trying.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the test server when PRUNNER_TEST_DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test"

// AdminURL returns the URL of the test server's administrative database.
func AdminURL() string {
	if u := os.Getenv("PRUNNER_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// required reports whether the tests must fail, not skip, when no server is reachable.
func required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("PRUNNER_TEST_POSTGRES") == "on"
}

var (
	probeOnce sync.Once
	probeErr  error
)

// probe connects to the server once per test binary; its error is why the tests cannot run.
func probe() error {
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			probeErr = err
			return
		}
		probeErr = conn.Ping(ctx)
		conn.Close(ctx)
	})
	return probeErr
}

// Require skips or fails t (see the package doc) when the test server cannot be used.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv("PRUNNER_TEST_POSTGRES") == "off" {
		t.Skip("PostgreSQL tests are off (PRUNNER_TEST_POSTGRES=off)")
	}
	if err := probe(); err != nil {
		msg := fmt.Sprintf("no PostgreSQL for the tests at %s (set PRUNNER_TEST_DATABASE_URL, or PRUNNER_TEST_POSTGRES=off to skip): %v",
			redact(AdminURL()), err)
		if required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// NewDatabase creates an empty database prunner_test_<random> on the test server and returns
// its URL; the database is dropped (WITH (FORCE): connections still open are ended) when t
// ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	Require(t)
	name := "prunner_test_" + randomHex(8)
	admin(t, "CREATE DATABASE "+name)
	t.Cleanup(func() { admin(t, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("PRUNNER_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// admin runs one statement on the administrative database.
func admin(t testing.TB, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(AdminURL()), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// redact hides the password of a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// TerminateConnections ends every connection to the database db (as a PostgreSQL restart
// would) and returns how many it ended.
func TerminateConnections(t testing.TB, db string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(AdminURL()), err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`, db).Scan(&n)
	if err != nil {
		t.Fatalf("terminate the connections to %s: %v", db, err)
	}
	return n
}
