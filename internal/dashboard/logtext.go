package dashboard

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prunner-dev/prunner/internal/dashboard/view"
	"github.com/prunner-dev/prunner/internal/pipeline"
)

// readTails reads the end of both output streams of a task for the first render of a job
// page: at most TailBytes and MaxLogLines of each, from a whole line on.
func (d *Dashboard) readTails(ctx context.Context, jobID, task string) ([]view.LogText, error) {
	var out []view.LogText
	for _, s := range []pipeline.LogStream{pipeline.Stdout, pipeline.Stderr} {
		t, err := d.readTail(ctx, jobID, task, s)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (d *Dashboard) readTail(ctx context.Context, jobID, task string, stream pipeline.LogStream) (view.LogText, error) {
	lt := view.LogText{Stream: stream}
	rc, err := d.runner.OpenLog(ctx, jobID, task, stream)
	if errors.Is(err, pipeline.ErrJobNotFound) || errors.Is(err, pipeline.ErrTaskNotFound) {
		return lt, err
	}
	if err != nil {
		// A missing or unreadable log file shows as empty output; the page still works.
		d.logger.Warn("dashboard: open log", "job_id", jobID, "task", task, "stream", string(stream), "error", err)
		return lt, nil
	}
	defer rc.Close()
	data, start, err := tail(rc, d.cfg.TailBytes)
	if err != nil {
		d.logger.Warn("dashboard: read log", "job_id", jobID, "task", task, "stream", string(stream), "error", err)
		return lt, nil
	}
	end := start + int64(len(data))
	// An incomplete character at the end is left for the live tail to send whole.
	data, rest := splitComplete(data)
	end -= int64(len(rest))
	if start > 0 {
		lt.Omitted = true
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	text := cleanLog(data)
	if n := strings.Count(text, "\n"); n > d.cfg.MaxLogLines {
		lt.Omitted = true
		text = lastLines(text, d.cfg.MaxLogLines)
	}
	lt.Text, lt.End = text, end
	return lt, nil
}

// tail returns the last max bytes of r and their offset. A seekable reader (a log file) is
// not read from the start.
func tail(r io.Reader, max int64) ([]byte, int64, error) {
	if s, ok := r.(io.Seeker); ok {
		size, err := s.Seek(0, io.SeekEnd)
		if err == nil {
			start := size - max
			if start < 0 {
				start = 0
			}
			if _, err := s.Seek(start, io.SeekStart); err == nil {
				data, err := io.ReadAll(io.LimitReader(r, size-start))
				return data, start, err
			}
		}
		if _, err := s.Seek(0, io.SeekStart); err != nil {
			return nil, 0, err
		}
	}
	// Not seekable: read through, keeping the last max bytes.
	var total int64
	buf := make([]byte, 0, 64<<10)
	chunk := make([]byte, 32<<10)
	for {
		n, err := r.Read(chunk)
		total += int64(n)
		buf = append(buf, chunk[:n]...)
		if int64(len(buf)) > 2*max {
			buf = append(buf[:0], buf[int64(len(buf))-max:]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if int64(len(buf)) > max {
		buf = buf[int64(len(buf))-max:]
	}
	return buf, total - int64(len(buf)), nil
}

// splitComplete splits b before an incomplete UTF-8 sequence at its end.
func splitComplete(b []byte) (complete, rest []byte) {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return b, nil
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i], b[len(b)-i:]
			}
			return b, nil
		}
	}
	return b, nil
}

// cleanLog turns raw output into text for a page: valid UTF-8, ANSI escape sequences removed,
// carriage returns as line breaks (SSE data cannot carry a bare CR).
func cleanLog(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if strings.IndexByte(s, 0x1b) >= 0 {
		s = stripANSI(s)
	}
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	return s
}

// stripANSI removes CSI (ESC [ … final byte) and OSC (ESC ] … BEL or ESC \) sequences and
// other two-byte escapes.
func stripANSI(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != 0x1b {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			break
		}
		switch s[i+1] {
		case '[':
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
		case ']':
			j := i + 2
			for j < len(s) && s[j] != 0x07 && !(s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\') {
				j++
			}
			if j < len(s) && s[j] == 0x1b {
				j++
			}
			i = j
		default:
			i++
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	end := len(s)
	if strings.HasSuffix(s, "\n") {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if s[i] == '\n' {
			n--
			if n == 0 {
				return s[i+1:]
			}
		}
	}
	return s
}

// logFragment is the HTML of a piece of output for the live tail: escaped text in a span that
// tells app.js how many lines it holds.
func logFragment(text string) string {
	return `<span data-lines="` + strconv.Itoa(strings.Count(text, "\n")) + `">` + html.EscapeString(text) + `</span>`
}

// attemptFragment separates the output of a retried task's next attempt from the one before.
func attemptFragment(attempt int) string {
	return `<span class="log-attempt" data-lines="1">— attempt ` + strconv.Itoa(attempt) + " —\n</span>"
}

// skipFragment tells the live tail that n bytes of output were not shown.
func skipFragment(n int64) string {
	return `<span class="log-skip" data-lines="1">[… ` + humanBytes(n) + ` of output not shown live; the download has everything …]` + "\n</span>"
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}
