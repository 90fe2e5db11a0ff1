package legacyimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// takeOverLogs makes the output files of a job of the original readable in our layout: for each
// task and stream, DATA/logs/<jobID>/<task>-<stream>.log of the original becomes
// DATA/logs/<jobID>/<pipeline.LogFileName> — the same directory, so a hard link shares the
// data without copying it; where links are not possible the file is copied, streamed. The
// original files stay. Each new file appears complete or not at all (written under a temporary
// name, then renamed). A missing original file (a task without output, or one that never ran)
// is not an error. Returns how many files were taken over.
func takeOverLogs(ctx context.Context, logsDir string, j *pipeline.Job, log *slog.Logger) (int, error) {
	dir := filepath.Join(logsDir, j.ID)
	n := 0
	for _, t := range j.Tasks {
		// The original joined the task name into the path as is; a name with a separator
		// never named a file of this job's directory.
		if t.Name == "" || strings.ContainsAny(t.Name, `/\`+"\x00") {
			log.Debug("original logs: task name is no file name, output not taken over", "job_id", j.ID, "task", t.Name)
			continue
		}
		for _, stream := range []pipeline.LogStream{pipeline.Stdout, pipeline.Stderr} {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			src := filepath.Join(dir, legacyLogName(t.Name, string(stream)))
			dst := filepath.Join(dir, pipeline.LogFileName(t.Name, t.Attempt, stream))
			took, err := takeOverFile(src, dst)
			if err != nil {
				return n, fmt.Errorf("task %q: %s: %w", t.Name, stream, err)
			}
			if took {
				n++
			}
		}
	}
	return n, nil
}

// linkFile is os.Link; tests replace it to take the copying path.
var linkFile = os.Link

// takeOverFile links (or copies) src to dst. It reports false when src does not exist or dst
// exists already (taken over by an earlier, interrupted import: our files appear complete).
func takeOverFile(src, dst string) (bool, error) {
	info, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !info.Mode().IsRegular() {
		return false, fmt.Errorf("%s is not a regular file", src)
	}
	if _, err := os.Lstat(dst); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	tmp := dst + ".import-tmp"
	// A leftover of an interrupted import; it is ours.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := linkFile(src, tmp); err != nil {
		if err := copyFile(src, tmp); err != nil {
			_ = os.Remove(tmp)
			return false, err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return false, err
	}
	return true, nil
}

// copyFile copies src to a new file dst, streamed (io.Copy between files uses the kernel's
// copy where it can), and syncs it.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Sync()
}
