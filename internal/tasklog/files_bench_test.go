package tasklog

import (
	"os"
	"strconv"
	"testing"
)

// BenchmarkFilesAppend appends a task's output to its log file through the live writer of Files (what every
// write of a task's stdout costs), in chunks of a shell's typical write sizes, with and without a
// live reader (a client following the log). Every 64 MiB the file is deleted and a new writer
// starts (outside the timer), so the benchmark measures the writer and the page cache, not the
// disk's write-back, and never fills the disk.
func BenchmarkFilesAppend(b *testing.B) {
	const rotateBytes = 64 << 20
	for _, size := range []int{64, 4 << 10, 32 << 10} {
		for _, follow := range []bool{false, true} {
			name := "chunk=" + strconv.Itoa(size)
			if follow {
				name += "/follower"
			}
			b.Run(name, func(b *testing.B) {
				dir := b.TempDir()
				s := NewFiles(dir)
				var stdout, stderr *liveWriter
				var done chan struct{}
				open := func() {
					o, e, err := s.Create(b.Context(), Attempt{JobID: "job", Task: "t"})
					if err != nil {
						b.Fatal(err)
					}
					stdout, stderr = o.(*liveWriter), e.(*liveWriter)
					done = make(chan struct{})
					if !follow {
						close(done)
						return
					}
					sub, _ := stdout.subscribe()
					go func(done chan struct{}) {
						defer close(done)
						for c := range sub.ch {
							sub.taken(c)
						}
					}(done)
				}
				closeAll := func() {
					if err := stdout.Close(); err != nil {
						b.Fatal(err)
					}
					if err := stderr.Close(); err != nil {
						b.Fatal(err)
					}
					<-done
					_ = os.Remove(stdout.app.(*fileAppender).path)
				}
				p := make([]byte, size)
				for i := range p {
					p[i] = 'y'
				}
				p[len(p)-1] = '\n'
				open()
				written := 0
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := stdout.Write(p); err != nil {
						b.Fatal(err)
					}
					if written += size; written >= rotateBytes {
						b.StopTimer()
						closeAll()
						open()
						written = 0
						b.StartTimer()
					}
				}
				b.StopTimer()
				closeAll()
			})
		}
	}
}
