package api

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// chunkRunner follows a task with prepared chunks, as the runner hands out a task's output.
type chunkRunner struct {
	*fakeRunner
	chunks []pipeline.LogChunk
}

func (c *chunkRunner) FollowLog(ctx context.Context, _, _ string, from map[pipeline.LogStream]int64) (<-chan pipeline.LogChunk, error) {
	ch := make(chan pipeline.LogChunk, 16)
	go func() {
		defer close(ch)
		for _, k := range c.chunks {
			if k.Offset < from[k.Stream] {
				continue
			}
			select {
			case ch <- k:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// BenchmarkLiveStream writes 8 MiB of a finished task's output as a live stream, in pieces of a
// busy task's small writes and of reads from its file.
func BenchmarkLiveStream(b *testing.B) {
	const total = 8 << 20
	for _, size := range []int{64, 32 << 10} {
		b.Run("chunk="+strconv.Itoa(size), func(b *testing.B) {
			fr := newFakeRunner()
			seed(fr)
			piece := bytes.Repeat([]byte("0123456789 é \"x\"\n"), size/16+1)[:size]
			var chunks []pipeline.LogChunk
			for off := 0; off < total; off += size {
				chunks = append(chunks, pipeline.LogChunk{Stream: pipeline.Stdout, Offset: int64(off), Data: piece})
			}
			r := &chunkRunner{fakeRunner: fr, chunks: chunks}
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				s := &liveStream{runner: r, logger: discardLogger(), id: jobFinishedID, task: "build", heartbeat: time.Hour}
				s.run(bufio.NewWriter(io.Discard))
			}
		})
	}
}
