package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prunner-dev/prunner/internal/client"
)

// nodesCommand lists the nodes of the cluster the server is a node of (GET /nodes).
func nodesCommand(ctx context.Context, cfg *config, stdout, stderr io.Writer) int {
	f := newCommandFlags(cfg, "nodes", "[flags]",
		"Lists the nodes of the cluster that the server at --address belongs to: state, running jobs,\nheartbeat, lease, version and definitions. Any node of the cluster answers for all of them.", stderr)
	var asJSON bool
	f.BoolVar(&asJSON, "json", false, "print the API's JSON as it is")
	args, err := f.parse(cfg.args)
	if err != nil {
		return parseError(err)
	}
	if len(args) > 0 {
		return usageError(stderr, f, "unexpected argument %q", args[0])
	}
	c, err := f.client()
	if err != nil {
		return requestError(stderr, f, err)
	}
	list, err := c.Nodes(ctx)
	if err != nil {
		return requestError(stderr, f, err)
	}
	if asJSON {
		stdout.Write(list.Raw)
		fmt.Fprintln(stdout)
		return exitOK
	}
	if len(list.Nodes) == 0 {
		fmt.Fprintln(stdout, "The server is no node of a cluster (it runs without --node-id): it is the only one.")
		return exitOK
	}
	printNodes(stdout, list.Nodes, time.Now())
	return exitOK
}

// printNodes prints nodes as aligned columns, then a warning when alive nodes run different
// pipeline definitions.
func printNodes(w io.Writer, nodes []client.Node, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tJOBS\tHEARTBEAT\tLEASE\tVERSION\tDEFINITIONS\tADDRESS")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.State, jobsCell(n), ago(n.Heartbeat, now),
			leaseCell(n, now), n.Version, shortHash(n.DefinitionsHash), n.Address)
	}
	tw.Flush()
	if ids := differingDefinitions(nodes); ids != "" {
		fmt.Fprintf(w, "\nWarning: the alive nodes run different pipeline definitions (%s): give them the same pipeline files.\n", ids)
	}
}

// jobsCell is a node's running jobs, out of its --max-jobs when it has one.
func jobsCell(n client.Node) string {
	if n.MaxJobs > 0 {
		return fmt.Sprintf("%d/%d", n.RunningJobs, n.MaxJobs)
	}
	return fmt.Sprint(n.RunningJobs)
}

// ago is how long before now t was, in whole seconds.
func ago(t, now time.Time) string {
	return now.Sub(t).Truncate(time.Second).String() + " ago"
}

// leaseCell is how long an alive node's lease lasts, or how long ago it ended.
func leaseCell(n client.Node, now time.Time) string {
	left := n.LeaseUntil.Sub(now).Truncate(time.Second)
	switch {
	case n.State != "alive":
		return "-"
	case left < 0:
		return "expired " + (-left).String() + " ago"
	default:
		return left.String() + " left"
	}
}

// shortHash is the first 12 hex digits of a definitions hash ("-" when the node has none yet).
func shortHash(h string) string {
	if h == "" {
		return "-"
	}
	return h[:min(len(h), 12)]
}

// differingDefinitions names the alive nodes by hash ("a, b: 1234…; c: 5678…") when they do not
// all have the same definitions hash; "" when they do.
func differingDefinitions(nodes []client.Node) string {
	var order []string
	byHash := map[string][]string{}
	for _, n := range nodes {
		if n.State != "alive" || n.DefinitionsHash == "" {
			continue
		}
		if _, seen := byHash[n.DefinitionsHash]; !seen {
			order = append(order, n.DefinitionsHash)
		}
		byHash[n.DefinitionsHash] = append(byHash[n.DefinitionsHash], n.ID)
	}
	if len(order) < 2 {
		return ""
	}
	parts := make([]string, len(order))
	for i, h := range order {
		parts[i] = strings.Join(byHash[h], ", ") + ": " + shortHash(h)
	}
	return strings.Join(parts, "; ")
}
