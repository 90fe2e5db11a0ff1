package pipeline

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// DefaultPattern is the pattern Load uses when it is given none: every pipelines.yml or
// pipelines.yaml, at any depth below the directory, the directory itself included.
const DefaultPattern = "**/pipelines.{yml,yaml}"

// MaxFileSize is the size above which a definition file is refused unread. Real definition files
// are a few kilobytes; the cap keeps a stray huge file from exhausting memory in the YAML parser.
const MaxFileSize = 10 << 20

// Problem is one thing wrong (an error) or suspicious (a warning) in the definition files.
type Problem struct {
	// File is the file as found: the directory given to Load joined with the path below it.
	File string
	// Line is the 1-based line in File, or 0 when it is not known.
	Line int
	// Message says what is wrong, naming the pipeline and task where there is one.
	Message string
}

// String formats the problem as "file:line: message", leaving out what is not known.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// LoadError is returned by Load when the definitions cannot be used. It lists every error found,
// so that a user can fix them all at once.
type LoadError struct {
	Problems []Problem
}

// Error lists all problems, one per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load discovers the files below dir whose slash-separated path relative to dir matches pattern
// (DefaultPattern when empty; doublestar syntax, where "**/" matches zero or more directories and
// "{a,b}" either alternative), parses and validates them in sorted path order and returns their
// pipelines.
//
// Every problem is collected: when there is any error, the set is nil and err is a *LoadError
// listing all of them. Warnings (unknown keys, a pattern that matches no file, …) never fail the
// load; they are returned in either case so the caller can log them. No matching file is not an
// error: the set is then empty.
func Load(dir, pattern string) (*Set, []Problem, error) {
	dir, pattern = withDefaults(dir, pattern)
	files, warnings, errs := discover(dir, pattern)
	if len(errs) > 0 {
		return nil, warnings, &LoadError{Problems: errs}
	}
	set := &Set{Pipelines: make(map[string]*Definition)}
	if len(files) == 0 {
		warnings = append(warnings, Problem{File: dir, Message: fmt.Sprintf("no file matches the pattern %q: no pipelines are defined", pattern)})
		return set, warnings, nil
	}

	type origin struct {
		file string
		line int
	}
	declared := make(map[string]origin)
	for _, file := range files {
		data, err := readFile(file)
		if err != nil {
			errs = append(errs, Problem{File: file, Message: err.Error()})
			continue
		}
		p := parse(file, data)
		for _, pp := range p.pipelines {
			name := pp.def.Name
			if first, ok := declared[name]; ok {
				p.errorAt(pp.line, "pipeline %q is already defined in %s; it is also defined in %s", name, location(first.file, first.line), file)
				continue
			}
			declared[name] = origin{file: file, line: pp.line}
			set.Pipelines[name] = pp.def
		}
		warnings = append(warnings, sortProblems(p.warnings)...)
		errs = append(errs, sortProblems(p.errors)...)
	}
	if len(errs) > 0 {
		return nil, warnings, &LoadError{Problems: errs}
	}
	return set, warnings, nil
}

func location(file string, line int) string {
	if line > 0 {
		return file + ":" + strconv.Itoa(line)
	}
	return file
}

// Files returns the definition files Load reads, in the order it reads them: the files below dir
// whose path relative to dir matches pattern (both defaulted as in Load), joined with dir. It is
// the one discovery of definition files, so that whatever watches them for changes (--watch)
// looks at exactly the files a load reads. A directory or pattern that Load refuses is an error
// (a *LoadError); what Load only warns about (a subdirectory that cannot be read, a dangling
// link) is skipped.
func Files(dir, pattern string) ([]string, error) {
	files, _, errs := discover(withDefaults(dir, pattern))
	if len(errs) > 0 {
		return nil, &LoadError{Problems: errs}
	}
	return files, nil
}

// withDefaults returns dir and pattern, or "." and DefaultPattern where they are empty.
func withDefaults(dir, pattern string) (string, string) {
	if dir == "" {
		dir = "."
	}
	if pattern == "" {
		pattern = DefaultPattern
	}
	return dir, pattern
}

// discover returns the files below dir whose slash-separated path relative to dir matches
// pattern, sorted by that path, each joined with dir. An invalid pattern is an error.
//
// Hidden directories (".git", the ".prunner" data directory, ".idea", …) are not searched, because
// they are large and never meant to hold definitions, unless the pattern itself names a hidden path
// element (like ".ci/pipelines.yml"). Symbolic links to directories are followed (as the original
// prunner did), each real directory at most once so that a link cycle ends. A subdirectory that
// cannot be read gives a warning; dir itself must be a readable directory.
func discover(dir, pattern string) (files []string, warnings, errs []Problem) {
	if !doublestar.ValidatePattern(pattern) {
		return nil, nil, []Problem{{Message: fmt.Sprintf("invalid pattern %q", pattern)}}
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, nil, []Problem{{File: dir, Message: fmt.Sprintf("cannot read the pipeline directory: %v", unwrapPathError(err))}}
	}
	if !info.IsDir() {
		return nil, nil, []Problem{{File: dir, Message: "the pipeline path is not a directory"}}
	}
	d := &discovery{
		pattern:    pattern,
		withHidden: namesHiddenElement(pattern),
		visited:    make(map[string]bool),
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		d.visited[real] = true
	}
	if err := d.walk(dir, ""); err != nil {
		return nil, nil, []Problem{{File: dir, Message: fmt.Sprintf("cannot read the pipeline directory: %v", unwrapPathError(err))}}
	}
	sort.Strings(d.files)
	files = make([]string, len(d.files))
	for i, rel := range d.files {
		files[i] = filepath.Join(dir, filepath.FromSlash(rel))
	}
	return files, d.warnings, nil
}

type discovery struct {
	pattern    string
	withHidden bool
	visited    map[string]bool
	files      []string
	warnings   []Problem
}

// walk searches the directory full, whose slash-separated path relative to the root is rel. It
// returns only an error reading full itself; problems below it become warnings.
func (d *discovery) walk(full, rel string) error {
	entries, err := os.ReadDir(full)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		childFull := filepath.Join(full, name)
		childRel := path.Join(rel, name)
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			info, err := os.Stat(childFull)
			if err != nil {
				// A dangling link is only worth a word when it looks like a definition file.
				if ok, _ := doublestar.Match(d.pattern, childRel); ok {
					d.warnings = append(d.warnings, Problem{File: childFull, Message: fmt.Sprintf("skipped: %v", unwrapPathError(err))})
				}
				continue
			}
			isDir = info.IsDir()
		}
		if isDir {
			if strings.HasPrefix(name, ".") && !d.withHidden {
				continue
			}
			real, err := filepath.EvalSymlinks(childFull)
			if err != nil {
				d.warnings = append(d.warnings, Problem{File: childFull, Message: fmt.Sprintf("directory skipped: %v", unwrapPathError(err))})
				continue
			}
			if d.visited[real] {
				continue
			}
			d.visited[real] = true
			if err := d.walk(childFull, childRel); err != nil {
				d.warnings = append(d.warnings, Problem{File: childFull, Message: fmt.Sprintf("directory skipped: %v", unwrapPathError(err))})
			}
			continue
		}
		if ok, _ := doublestar.Match(d.pattern, childRel); ok {
			d.files = append(d.files, childRel)
		}
	}
	return nil
}

// namesHiddenElement reports whether some path element of pattern starts with a dot, possibly
// inside a {a,b} alternative.
func namesHiddenElement(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] != '.' {
			continue
		}
		if i == 0 || strings.ContainsRune("/{,", rune(pattern[i-1])) {
			return true
		}
	}
	return false
}

// unwrapPathError drops the path from an *fs.PathError, because the Problem already names it.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readFile reads a definition file, refusing files that are not regular or larger than
// MaxFileSize (a FIFO would block the load forever, a huge file would exhaust memory).
func readFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %w", unwrapPathError(err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %w", unwrapPathError(err))
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if info.Size() > MaxFileSize {
		return nil, errTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the file: %w", unwrapPathError(err))
	}
	if len(data) > MaxFileSize {
		return nil, errTooLarge
	}
	return data, nil
}

var errTooLarge = fmt.Errorf("the file is larger than %d MiB", MaxFileSize>>20)

// sortProblems orders the problems of one file by line (problems without a line first) and drops
// repeats, which arise when an aliased YAML node is read more than once.
func sortProblems(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	seen := make(map[Problem]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}
