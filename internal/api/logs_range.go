package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// HeaderLogSize is the response header of GET /job/logs/raw that gives the log's size in bytes
// at the time of the request; the body ends there.
const HeaderLogSize = "X-Log-Size"

// offsetParam returns the optional byte-offset query parameter name: given is false when it is
// absent; a 400 error when it is not a number >= 0.
func offsetParam(c *fiber.Ctx, name string) (off int64, given bool, err error) {
	raw := c.Query(name)
	if raw == "" {
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(raw, 10, 64)
	if perr != nil || n < 0 {
		return 0, false, badRequest("Invalid " + name + ": must be a byte offset >= 0")
	}
	return n, true, nil
}

// taskParam returns the query parameter task, or a 400 error.
func taskParam(c *fiber.Ctx) (string, error) {
	task := c.Query("task")
	if task == "" || len(task) > maxTaskNameLength || strings.ContainsRune(task, 0) {
		return "", badRequest("Invalid task name")
	}
	return task, nil
}

// jobTask loads the job and finds its task for the log routes: pipeline.ErrJobNotFound or
// pipeline.ErrTaskNotFound when either is missing.
func jobTask(ctx context.Context, r Runner, id, task string) (*pipeline.Job, *pipeline.Task, error) {
	job, err := r.Job(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	t := job.Task(task)
	if t == nil {
		return nil, nil, pipeline.ErrTaskNotFound
	}
	return job, t, nil
}

// logFile is what the runner's log readers offer besides reading (an *os.File does): reading at
// an offset, and the size at a moment. A reader without it is read from its start to its end.
type logFile interface {
	io.ReaderAt
	Stat() (fs.FileInfo, error)
}

// logSection is the part of one log that an answer carries: from offset start to the log's size
// when it was cut.
type logSection struct {
	r     io.Reader
	start int64
	// size is the log's size when the section was cut; -1 when the reader cannot tell.
	size int64
}

// cutLog returns the section of the log rc from offset on (an offset beyond the end gives an
// empty section at the end). A log file ends at its size now, so the offset after the section
// is exact even while the task writes more. With holdBack, an incomplete UTF-8 sequence at the
// very end is left for the next read: a poller never gets half of a character (JSON strings
// cannot carry it; it would become U+FFFD).
func cutLog(rc io.Reader, offset int64, holdBack bool) (logSection, error) {
	f, ok := rc.(logFile)
	if !ok {
		// Skip by reading: bounded memory, and only for readers that are not files.
		n, err := io.CopyN(io.Discard, rc, offset)
		if err != nil && err != io.EOF {
			return logSection{}, fmt.Errorf("skip to offset %d: %w", offset, err)
		}
		return logSection{r: rc, start: n, size: -1}, nil
	}
	st, err := f.Stat()
	if err != nil {
		return logSection{}, fmt.Errorf("log size: %w", err)
	}
	size := st.Size()
	start := min(offset, size)
	end := size
	if holdBack {
		end -= incompleteUTF8Suffix(f, start, end)
	}
	return logSection{r: io.NewSectionReader(f, start, end-start), start: start, size: size}, nil
}

// incompleteUTF8Suffix returns the length of an incomplete (but so far valid) UTF-8 sequence at
// the end of [start, end) of f; 0 when there is none.
func incompleteUTF8Suffix(f io.ReaderAt, start, end int64) int64 {
	from := max(start, end-(utf8.UTFMax-1))
	if from >= end {
		return 0
	}
	buf := make([]byte, end-from)
	if n, _ := f.ReadAt(buf, from); n < len(buf) {
		return 0
	}
	return int64(incompleteUTF8Tail(buf))
}

// incompleteUTF8Tail returns the length of an incomplete (but so far valid) UTF-8 sequence at
// the end of b; 0 when b ends with a whole character or with bytes that can never become one.
func incompleteUTF8Tail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(b[i]) {
			if b[i] >= utf8.RuneSelf && !utf8.FullRune(b[i:]) {
				return len(b) - i
			}
			return 0
		}
	}
	return 0
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// writeLogSections writes the answer of GET /job/logs,
// {"stdout":…,"stderr":…,"stdoutOffset":N,"stderrOffset":M}, with both sections as JSON strings
// (streamed in constant memory) and the offsets after the bytes sent, where a poller continues.
func writeLogSections(w io.Writer, stdout, stderr logSection) error {
	buf := make([]byte, logChunkSize)
	out := &countingReader{r: stdout.r}
	errOut := &countingReader{r: stderr.r}
	if _, err := io.WriteString(w, `{"stdout":`); err != nil {
		return err
	}
	if err := writeJSONString(w, out, buf); err != nil {
		return err
	}
	if _, err := io.WriteString(w, `,"stderr":`); err != nil {
		return err
	}
	if err := writeJSONString(w, errOut, buf); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, `,"stdoutOffset":%d,"stderrOffset":%d}`, stdout.start+out.n, stderr.start+errOut.n)
	return err
}

// jobLogRaw serves GET /job/logs/raw?id=&task=&stream=stdout|stderr[&offset=N][&attempt=N]: one
// output stream of a task as plain text, from offset (default 0) to the log's size at the time
// of the request, which the header X-Log-Size gives (offset beyond it: an empty body). The body
// is sent from the file with bounded memory (by sendfile where the platform has it).
func (h *handlers) jobLogRaw(c *fiber.Ctx) error {
	id, err := jobIDParam(c)
	if err != nil {
		return err
	}
	task, err := taskParam(c)
	if err != nil {
		return err
	}
	stream := pipeline.LogStream(c.Query("stream"))
	if stream != pipeline.Stdout && stream != pipeline.Stderr {
		return badRequest("Invalid stream: must be stdout or stderr")
	}
	offset, _, err := offsetParam(c, "offset")
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	_, t, err := jobTask(ctx, h.runner, id, task)
	if err != nil {
		return err
	}
	attempt, err := attemptParam(c, t)
	if err != nil {
		return err
	}
	var rc io.ReadCloser
	if attempt == 0 {
		rc, err = h.runner.OpenLog(ctx, id, task, stream)
	} else {
		rc, err = h.runner.OpenAttemptLog(ctx, id, task, attempt, stream)
	}
	if err != nil {
		return err
	}
	sec, err := cutLog(rc, offset, false)
	if err != nil {
		_ = rc.Close()
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if sec.size >= 0 {
		c.Set(HeaderLogSize, strconv.FormatInt(sec.size, 10))
	}
	if c.Method() == fiber.MethodHead {
		_ = rc.Close()
		return nil
	}
	if sec.size >= 0 {
		n := sec.size - sec.start
		body := &rawLogBody{r: io.LimitReader(sec.r, n), c: rc}
		if f, ok := rc.(*os.File); ok {
			// A file positioned at the start, so that the copy to the connection can use
			// sendfile.
			if _, err := f.Seek(sec.start, io.SeekStart); err != nil {
				_ = rc.Close()
				return fmt.Errorf("seek log: %w", err)
			}
			body.r = &io.LimitedReader{R: f, N: n}
		}
		c.Context().SetBodyStream(body, int(n))
		return nil
	}
	// A reader that cannot tell its size is sent to its end, chunked.
	logger := h.logger.With("job_id", id, "task", task, "stream", stream)
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer rc.Close()
		if _, err := io.Copy(w, sec.r); err != nil {
			logger.Warn("stream raw log", "error", err)
		}
	})
	return nil
}

// rawLogBody is the body of a raw log answer; fasthttp closes it once it was sent (or not).
type rawLogBody struct {
	r io.Reader
	c io.Closer
}

func (b *rawLogBody) Read(p []byte) (int, error) { return b.r.Read(p) }

// WriteTo lets the copy to the connection see the *io.LimitedReader of an *os.File (sendfile).
func (b *rawLogBody) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, b.r) }

func (b *rawLogBody) Close() error { return b.c.Close() }
