package tasklog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/prunner-dev/prunner/internal/pipeline"
)

// followChunkSize bounds the pieces in which a follower reads the stored output.
const followChunkSize = 32 << 10

// Follow sends both streams of an attempt: when it is live here, each from the Backend up to the
// size at the moment of subscribing, then the live writes until the writer is closed; otherwise
// what the Backend has, to its end.
func (l *Live) Follow(ctx context.Context, a Attempt, from [2]int64, send func(pipeline.LogChunk) error) ([2]int64, error) {
	a, err := normal(a)
	if err != nil {
		return from, err
	}
	f := &follow{l: l, a: a, pos: from, send: send}
	for i := range f.pos {
		f.pos[i] = max(f.pos[i], 0)
	}
	if o := l.lookup(a); o != nil {
		err = f.live(ctx, o)
	} else {
		err = f.readToEnd(ctx)
	}
	return f.pos, err
}

// follow is one Follow call of Live.
type follow struct {
	l    *Live
	a    Attempt
	send func(pipeline.LogChunk) error
	// pos is the offset up to which each stream was sent; each is owned by its stream's
	// goroutine while the streams are followed live.
	pos [2]int64
}

// live follows both writers of a live attempt; the first error of either stream ends both.
func (f *follow) live(ctx context.Context, o *liveOutput) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var errs [2]error
	for i, w := range o.w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = f.followWriter(ctx, i, w); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// The stream that failed first is the cause; the other one stopped because of it.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs[0], errs[1])
}

// followWriter sends stream i of a live attempt until its writer is closed.
func (f *follow) followWriter(ctx context.Context, i int, w *liveWriter) error {
	sub, size := w.subscribe()
	if sub == nil {
		// The writer is closed: the stored stream is complete.
		return f.readStored(ctx, i, -1)
	}
	defer w.unsubscribe(sub)
	// The writes up to size are stored; every later one comes through sub.
	if err := f.readStored(ctx, i, size); err != nil {
		return err
	}
	for {
		select {
		case c, open := <-sub.ch:
			if !open {
				if sub.dropped.Load() {
					return ErrFellBehind
				}
				return nil
			}
			sub.taken(c)
			if c.Offset > f.pos[i] {
				// Never happens (the writes follow the size at subscribing); were there a gap,
				// the stored stream fills it.
				if err := f.readStored(ctx, i, c.Offset); err != nil {
					return err
				}
			}
			if err := f.sendChunk(i, c); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendChunk sends the part of c after what stream i sent so far.
func (f *follow) sendChunk(i int, c pipeline.LogChunk) error {
	c.Attempt = f.a.Number
	end := c.Offset + int64(len(c.Data))
	if end <= f.pos[i] {
		return nil
	}
	if c.Offset < f.pos[i] {
		c.Data = c.Data[f.pos[i]-c.Offset:]
		c.Offset = f.pos[i]
	}
	if err := f.send(c); err != nil {
		return err
	}
	f.pos[i] = end
	return nil
}

// readStored sends stream i from the Backend, from what was sent so far up to limit (to the end
// of what is stored when limit < 0), in bounded pieces.
func (f *follow) readStored(ctx context.Context, i int, limit int64) error {
	if limit >= 0 && f.pos[i] >= limit {
		return nil
	}
	r, err := f.l.b.Open(ctx, f.a, Streams[i])
	if err != nil {
		return fmt.Errorf("follow log: %w", err)
	}
	defer r.Close()
	for limit < 0 || f.pos[i] < limit {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int64(followChunkSize)
		if limit >= 0 {
			n = min(n, limit-f.pos[i])
		}
		// A fresh buffer per piece: the receiver keeps it.
		buf := make([]byte, n)
		m, err := r.ReadAt(buf, f.pos[i])
		if m > 0 {
			if err := f.sendChunk(i, pipeline.LogChunk{Stream: Streams[i], Offset: f.pos[i], Data: buf[:m]}); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("follow log: %w", err)
		}
	}
	return nil
}

// readToEnd sends the rest of both streams of an attempt that is not written here.
func (f *follow) readToEnd(ctx context.Context) error {
	for i := range Streams {
		if err := f.readStored(ctx, i, -1); err != nil {
			return err
		}
	}
	return nil
}
