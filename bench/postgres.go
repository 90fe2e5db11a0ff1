package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgDatabases creates a database of its own for each server the bench starts when it runs with
// --postgres (the URL of a PostgreSQL server whose user may create databases), and drops them
// all at the end.
type pgDatabases struct {
	admin   string
	created []string
}

// create makes a new empty database and returns the URL the server gets as --database-url.
func (p *pgDatabases) create(ctx context.Context, n int) (string, error) {
	name := fmt.Sprintf("prunner_bench_%d_%d", os.Getpid(), n)
	if err := p.exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	p.created = append(p.created, name)
	u, err := url.Parse(p.admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropAll drops every database create made (connections still open are ended).
func (p *pgDatabases) dropAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range p.created {
		if err := p.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: drop database:", err)
		}
	}
	p.created = nil
}

func (p *pgDatabases) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.admin)
	if err != nil {
		return fmt.Errorf("--postgres: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
