package runner

import (
	"path/filepath"
	"sort"
	"strings"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// JobIDEnv is the environment variable that carries the job ID into every task process. Besides
// being useful to scripts, it marks the processes of a job so that the ones orphaned by a crash
// can be found and killed on the next start.
const JobIDEnv = "PRUNNER_JOB_ID"

// NodeEnv marks the task processes of a node of a cluster with the node's ID and its data
// directory ("<id>@<dir>", see nodeMarker), so that a node that restarts after it was lost (its
// jobs ended by another node) still finds and kills the processes its previous run left. The
// directory keeps apart the nodes of different clusters on one machine that share an ID.
const NodeEnv = "PRUNNER_TASK_NODE"

// nodeMarker is the value of NodeEnv for this runner's tasks ("" when it is no node of a
// cluster).
func (r *Runner) nodeMarker() string {
	if r.cfg.Node.ID == "" {
		return ""
	}
	dir, err := filepath.Abs(r.cfg.DataDir)
	if err != nil {
		dir = r.cfg.DataDir
	}
	return r.cfg.Node.ID + "@" + dir
}

// taskEnv builds a task's environment, lowest to highest precedence: the server's base
// environment (after the dotenv files), the pipeline's env, TASK_NAME, the task's env, and the
// job ID marker (and, on a node of a cluster, the node marker).
func (r *Runner) taskEnv(p *pipeline.Definition, t pipeline.TaskDefinition, name, jobID string) []string {
	env := make(map[string]string, len(r.cfg.Env)+len(p.Env)+len(t.Env)+2)
	for _, kv := range r.cfg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			env[k] = v
		}
	}
	for k, v := range p.Env {
		env[k] = v
	}
	env["TASK_NAME"] = name
	for k, v := range t.Env {
		env[k] = v
	}
	env[JobIDEnv] = jobID
	if m := r.nodeMarker(); m != "" {
		env[NodeEnv] = m
	}
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}
