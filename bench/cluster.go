package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// clusterSize is one of the clusters the cluster group measures: its nodes and their clients.
type clusterSize struct {
	servers []*server
	clients []*client
}

// kill stops the nodes (a nil cluster is none).
func (cs *clusterSize) kill() {
	if cs == nil {
		return
	}
	for i, s := range cs.servers {
		cs.clients[i].closeIdle()
		s.kill()
	}
}

// startCluster starts n nodes (--node-id n1…) on one new database, one after the other, each
// with extra flags.
func (b *bench) startCluster(ctx context.Context, name string, n int, extra []string) (*clusterSize, error) {
	b.nserver++
	dbURL, err := b.pg.create(ctx, b.nserver)
	if err != nil {
		return nil, err
	}
	cs := &clusterSize{}
	for i := range n {
		node := fmt.Sprintf("n%d", i+1)
		args := append(append([]string(nil), b.cfg.serverArgs...), "--database-url", dbURL, "--node-id", node)
		args = append(args, extra...)
		s, err := newServer(fmt.Sprintf("%02d-%s-%s", b.nserver, name, node), b.cfg.bin, b.workDir, b.pipeDir, b.secret, args)
		if err == nil {
			_, err = b.startServer(ctx, s)
		}
		if err != nil {
			if s != nil {
				s.kill()
			}
			cs.kill()
			return nil, err
		}
		cs.servers = append(cs.servers, s)
		cs.clients = append(cs.clients, newClient(s.baseURL, b.token))
	}
	return cs, nil
}

// supportsFlag reports whether the binary's --help lists the flag.
func supportsFlag(bin, name string) bool {
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	return strings.Contains(string(out), "-"+name+" ")
}

// clusterRows are the results of the cluster group, each measured on one node and on
// clusterNodes nodes of one database.
type clusterRows struct {
	latency, throughput, sleep [2]*result
}

// groupCluster measures issue 12's cluster (only with --postgres): the 1-task latency of a node
// on PostgreSQL; tpJobs jobs of bench_tp (concurrency tpConcurrency) on one node and spread
// round-robin over three (the cluster must not collapse); and sleep-bound work whose capacity
// should grow with the nodes. That needs a bound on what a node runs: --max-jobs 4 when the
// binary has it (on nodes started for these rows alone; the pipeline has no limit to speak of);
// without it, the pipeline's
// cluster-wide concurrency is 4 times the node count, which gives the larger cluster the same
// slots but lets any node take them (the jobs each node ran are in the JSON, jobs_per_node).
func (b *bench) groupCluster(ctx context.Context) error {
	maxJobs := supportsFlag(b.cfg.bin, "max-jobs")
	var rows clusterRows
	for i, n := range []int{1, clusterNodes} {
		rows.latency[i] = &result{Group: "cluster", Unit: "ms", Extra: map[string]any{"poll_ms": ms(b.cfg.poll)},
			Scenario: fmt.Sprintf("1-task job on PostgreSQL, %s: schedule → completed", nodesLabel(n))}
		rows.throughput[i] = &result{Group: "cluster", Unit: "jobs/s", Extra: map[string]any{"clients": b.cfg.clients},
			Scenario: fmt.Sprintf("%d jobs, concurrency %d, %s", b.cfg.tpJobs, b.cfg.tpConcurrency, nodesLabel(n))}
		rows.sleep[i] = &result{Group: "cluster", Unit: "jobs/s", Extra: map[string]any{},
			Scenario: fmt.Sprintf("%d jobs sleeping 200 ms, %d slots a node, %s", b.sleepJobs(), sleepSlotsPerNode, nodesLabel(n))}
	}
	rows.latency[0].Target = atMost(10)
	rows.latency[1].Scenario += " (scheduled on one node, polled on another)"
	tpRatio := &result{Group: "cluster", Unit: "×", Scenario: fmt.Sprintf("… throughput, %d nodes / 1 node", clusterNodes)}
	sleepRatio := &result{Group: "cluster", Unit: "×", Scenario: fmt.Sprintf("… sleep-bound, %d nodes / 1 node (ideal %d)", clusterNodes, clusterNodes)}
	if maxJobs {
		sleepRatio.Note = fmt.Sprintf("--max-jobs %d on every node", sleepSlotsPerNode)
	} else {
		sleepRatio.Note = fmt.Sprintf("no --max-jobs: pipeline concurrency %d × nodes instead", sleepSlotsPerNode)
	}
	defer func() {
		for i := range 2 {
			b.add(rows.latency[i])
		}
		for i := range 2 {
			b.add(rows.throughput[i])
		}
		tpRatio.Samples = ratios(rows.throughput)
		b.add(tpRatio)
		for i := range 2 {
			b.add(rows.sleep[i])
		}
		sleepRatio.Samples = ratios(rows.sleep)
		b.add(sleepRatio)
	}()
	for i, n := range []int{1, clusterNodes} {
		if err := b.measureClusterSize(ctx, n, maxJobs, rows.latency[i], rows.throughput[i], rows.sleep[i]); err != nil {
			return err
		}
	}
	return nil
}

// measureClusterSize measures the rows of a cluster of n nodes: latency and throughput on
// nodes without --max-jobs, then the sleep-bound rows, with --max-jobs on a new cluster when the
// binary has it. A failed measurement is its row's error; the error returned ends the group.
func (b *bench) measureClusterSize(ctx context.Context, n int, maxJobs bool, latency, throughput, sleep *result) error {
	name := fmt.Sprintf("cluster%d", n)
	cs, err := b.startCluster(ctx, name, n, nil)
	if err != nil {
		return err
	}
	defer func() { cs.kill() }()
	b.measureThroughput(ctx, cs, latency, throughput)
	pipeline := pipeSleepCapped(sleepSlotsPerNode * n)
	if maxJobs {
		cs.kill()
		if cs, err = b.startCluster(ctx, name+"-max-jobs", n, []string{"--max-jobs", fmt.Sprint(sleepSlotsPerNode)}); err != nil {
			return err
		}
		pipeline = pipeSleep
	}
	b.measureSleep(ctx, cs, pipeline, sleep)
	return ctx.Err()
}

// measureThroughput measures the 1-task latency and the throughput of bench_tp on the cluster.
func (b *bench) measureThroughput(ctx context.Context, cs *clusterSize, latency, throughput *result) {
	if _, err := b.measureLatency(ctx, latency, cs.servers, cs.clients); err != nil {
		latency.Err = err.Error()
	}
	for range b.cfg.tpReps {
		_, rate, failed, err := b.batch(ctx, cs, pipeTP, b.cfg.tpJobs)
		if err == nil && failed > 0 {
			err = fmt.Errorf("%d jobs failed", failed)
		}
		if err != nil {
			throughput.Err = err.Error()
			return
		}
		throughput.Samples = append(throughput.Samples, rate)
	}
}

// measureSleep measures the sleep-bound batches of pipeline on the cluster, and records how
// many jobs of the last batch each node ran.
func (b *bench) measureSleep(ctx context.Context, cs *clusterSize, pipeline string, sleep *result) {
	sleep.Extra["pipeline"] = pipeline
	for range b.cfg.tpReps {
		ids, rate, failed, err := b.batch(ctx, cs, pipeline, b.sleepJobs())
		if err == nil && failed > 0 {
			err = fmt.Errorf("%d jobs failed", failed)
		}
		if err != nil {
			sleep.Err = err.Error()
			return
		}
		sleep.Samples = append(sleep.Samples, rate)
		if perNode, err := jobsPerNode(ctx, cs.clients[0], ids); err == nil {
			sleep.Extra["jobs_per_node"] = perNode
		}
	}
}

// batch schedules n jobs round-robin through the cluster's nodes and waits until all ended; it
// returns their IDs, jobs/s from the first request to the last end, and how many failed.
func (b *bench) batch(ctx context.Context, cs *clusterSize, pipeline string, n int) ([]string, float64, int, error) {
	t0 := time.Now()
	ids, _, err := b.scheduleRoundRobin(ctx, cs.clients, pipeline, n, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	failed, err := cs.clients[0].waitAll(ctx, ids, b.cfg.poll, 5*time.Minute)
	if err != nil {
		return nil, 0, 0, err
	}
	return ids, float64(n) / time.Since(t0).Seconds(), failed, nil
}

// sleepJobs is the size of a sleep-bound batch: 10 rounds of the larger cluster's slots
// (4 with --quick).
func (b *bench) sleepJobs() int {
	rounds := 10
	if b.cfg.quick {
		rounds = 4
	}
	return rounds * sleepSlotsPerNode * clusterNodes
}

// jobsPerNode counts the jobs by the node that ran them.
func jobsPerNode(ctx context.Context, c *client, ids []string) (map[string]int, error) {
	perNode := map[string]int{}
	for _, id := range ids {
		d, err := c.detail(ctx, id)
		if err != nil {
			return nil, err
		}
		perNode[d.Node]++
	}
	return perNode, nil
}

// ratios divides the samples of the larger cluster by those of one node, run by run.
func ratios(rows [2]*result) []float64 {
	var out []float64
	for i := range min(len(rows[0].Samples), len(rows[1].Samples)) {
		if rows[0].Samples[i] > 0 {
			out = append(out, rows[1].Samples[i]/rows[0].Samples[i])
		}
	}
	return out
}

func nodesLabel(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}
