package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Pipeline names, the same as ../shared/bench/gen_pipelines.py writes.
const (
	pipeOne   = "bench_one"
	pipeWide  = "bench_wide"
	pipeChain = "bench_chain"
	pipeTP    = "bench_tp"
	pipeHuge  = "bench_huge"
	pipeHist  = "bench_hist"
	pipeSched = "bench_sched"
	// pipeSleep sleeps 200 ms, with no concurrency limit to speak of: with --max-jobs, the
	// nodes' capacity bounds it.
	pipeSleep = "bench_sleep"
)

// pipeSleepCapped is the sleeping pipeline with concurrency limit n (sleepSlotsPerNode times
// the node count), for servers without --max-jobs.
func pipeSleepCapped(n int) string { return fmt.Sprintf("bench_sleep_c%d", n) }

// sleepSlotsPerNode is the capacity of a node in the sleep-bound cluster rows, and
// clusterNodes the size of the larger cluster.
const (
	sleepSlotsPerNode = 4
	clusterNodes      = 3
)

// pipelineParams sizes the generated pipelines.
type pipelineParams struct {
	wide          int
	chain         int
	hugeBytes     int64
	tpConcurrency int
}

// writePipelines writes dir/pipelines.yml with the benchmark pipelines: the same definitions as
// gen_pipelines.py, so that figures from both harnesses are comparable.
func writePipelines(dir string, p pipelineParams) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("pipelines:")
	// 1-task latency.
	w("  %s:", pipeOne)
	w("    concurrency: 1")
	w("    tasks:")
	w("      t:")
	w("        script:")
	w(`          - "true"`)
	// Wide DAG: independent tasks.
	w("  %s:", pipeWide)
	w("    tasks:")
	for i := range p.wide {
		w("      w%04d:", i)
		w("        script:")
		w(`          - "true"`)
	}
	// Chain: every task depends on the previous one.
	w("  %s:", pipeChain)
	w("    tasks:")
	for i := range p.chain {
		w("      c%04d:", i)
		w("        script:")
		w(`          - "true"`)
		if i > 0 {
			w("        depends_on: [c%04d]", i-1)
		}
	}
	// Throughput: bounded concurrency, unbounded wait list.
	w("  %s:", pipeTP)
	w("    concurrency: %d", p.tpConcurrency)
	w("    tasks:")
	w("      t:")
	w("        script:")
	w(`          - "true"`)
	// Huge output on stdout.
	w("  %s:", pipeHuge)
	w("    tasks:")
	w("      t:")
	w("        script:")
	w(`          - "yes | head -c %d"`, p.hugeBytes)
	// History filler: small output using a job variable.
	w("  %s:", pipeHist)
	w("    concurrency: %d", p.tpConcurrency)
	w("    tasks:")
	w("      t:")
	w("        script:")
	w(`          - "echo hello {{ .i }}"`)
	// Schedules: a trivial task (the shell builtin true), room for every firing of one minute.
	w("  %s:", pipeSched)
	w("    concurrency: %d", schedulesN)
	w("    tasks:")
	w("      t:")
	w("        script:")
	w(`          - "true"`)
	// Sleep-bound work for the cluster rows: unlimited (bounded by --max-jobs), and capped at
	// the capacity of one node and of the larger cluster.
	for _, c := range []int{10000, sleepSlotsPerNode, sleepSlotsPerNode * clusterNodes} {
		name := pipeSleep
		if c != 10000 {
			name = pipeSleepCapped(c)
		}
		w("  %s:", name)
		w("    concurrency: %d", c)
		w("    tasks:")
		w("      t:")
		w("        script:")
		w(`          - "sleep 0.2"`)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "pipelines.yml"), []byte(b.String()), 0o644)
}
