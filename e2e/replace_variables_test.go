package e2e

import (
	"fmt"
	"reflect"
	"syscall"
	"testing"
	"time"
)

// TestReplaceVariablesAppend: a debounced pipeline whose waiting job is replaced by each new
// request processes the union of every request it absorbed (replace_variables: append), across
// a chain of three replacements and a restart; with partitioned_replace, within each partition.
func TestReplaceVariablesAppend(t *testing.T) {
	t.Parallel()
	s := newServer(t, `
pipelines:
  reindex:
    queue_strategy: replace
    queue_limit: 1
    start_delay: 1500ms
    replace_variables: {documents: append}
    tasks:
      index: {script: ["echo {{ range .documents }}{{ . }} {{ end }}mode={{ .mode }}"]}
  tenant_reindex:
    queue_strategy: partitioned_replace
    queue_partition_limit: 1
    start_delay: 1500ms
    replace_variables: {documents: append}
    tasks:
      index: {script: ["echo {{ range .documents }}{{ . }} {{ end }}"]}
`).start()
	var last string
	requests := []map[string]any{
		{"documents": []any{"a", "b"}, "mode": "full"},
		{"documents": []any{"b", "c"}, "mode": "quick"},
		{"documents": "d", "mode": "last"},
	}
	var ids []string
	for _, vars := range requests {
		last = s.schedule("reindex", vars)
		ids = append(ids, last)
	}
	tenants := map[string][]string{}
	for i, tenant := range []string{"t1", "t2", "t1", "t2", "t1"} {
		id, status, body := s.trySchedule("tenant_reindex", map[string]any{"documents": []any{fmt.Sprint(tenant, "-", i)}}, tenant)
		if status != 202 {
			t.Fatalf("schedule %s: %d %s", tenant, status, body)
		}
		tenants[tenant] = append(tenants[tenant], id)
	}

	want := []any{"a", "b", "c", "d"}
	check := func(when string) {
		t.Helper()
		j := s.job(last)
		if !reflect.DeepEqual(j.Variables["documents"], want) || j.Variables["mode"] != "last" {
			t.Errorf("%s: the last job's variables = %v, want documents %v and the newest mode", when, j.Variables, want)
		}
		for _, id := range ids[:2] {
			if j := s.job(id); j.Status != "replaced" {
				t.Errorf("%s: job %s is %s, want replaced", when, id, j.Status)
			}
		}
	}
	check("while it waits")

	// A restart keeps the merged variables: they are what the job stores.
	s.signal(syscall.SIGINT)
	if code := s.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	s.restart()
	check("after a restart")

	s.waitFinished(last)
	if out, _ := s.logs(last, "index"); out != "a b c d mode=last\n" {
		t.Errorf("the job ran with %q, want every absorbed document", out)
	}
	for tenant, want := range map[string]string{"t1": "t1-0 t1-2 t1-4\n", "t2": "t2-1 t2-3\n"} {
		id := tenants[tenant][len(tenants[tenant])-1]
		s.waitFinished(id)
		if out, _ := s.logs(id, "index"); out != want {
			t.Errorf("partition %s ran with %q, want %q (its own documents only)", tenant, out, want)
		}
	}
}
