package runner

import (
	"os"
	"syscall"
)

// reserveSpace allocates size bytes for f without writing them (fallocate), falling back to
// writing zeros where the file system does not support it.
func reserveSpace(f *os.File, size int) error {
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, int64(size)); err == nil {
		return nil
	}
	return writeZeros(f, size)
}
