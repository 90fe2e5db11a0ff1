package runner

import (
	"os"
	"path/filepath"
	"sync"
)

// ballastSize is the disk space kept in reserve in the data directory. When a task's output fills
// the disk, the ballast is deleted, so that the store can still record how the job ended.
const ballastSize = 4 << 20

// ballast is a file of reserved disk space in the data directory.
type ballast struct {
	path string

	mu       sync.Mutex
	released bool
}

func newBallast(dataDir string) *ballast {
	return &ballast{path: filepath.Join(dataDir, "reserved-space")}
}

// fill (re)creates the ballast file with its space allocated.
func (b *ballast) fill() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if info, err := os.Stat(b.path); err == nil && info.Size() >= ballastSize {
		b.released = false
		return nil
	}
	f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := reserveSpace(f, ballastSize); err != nil {
		f.Close()
		os.Remove(b.path)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	b.released = false
	return nil
}

// release deletes the ballast once; it reports whether it did.
func (b *ballast) release() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return false
	}
	b.released = true
	return os.Remove(b.path) == nil
}

// writeZeros reserves space the portable way: real zeros, since a sparse file reserves nothing.
func writeZeros(f *os.File, size int) error {
	zeros := make([]byte, 64<<10)
	for written := 0; written < size; written += len(zeros) {
		if _, err := f.Write(zeros); err != nil {
			return err
		}
	}
	return nil
}
