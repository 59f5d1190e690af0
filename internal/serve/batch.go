package serve

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// runBatch is the scheduler's runFunc. Every job of the batch is
// finished when it returns, also when the sampler panics.
func (s *Server) runBatch(hard context.Context, batch []*job) {
	ctx, stop := batchContext(hard, batch)
	defer stop()
	now := time.Now()
	ids := make([]string, len(batch))
	for i, j := range batch {
		j.batch, j.started = len(batch), now
		ids[i] = j.id
	}
	slog.Debug("batch started", "kind", batch[0].kind, "size", len(batch), "ids", ids)
	defer func() {
		if v := recover(); v != nil {
			err := fmt.Errorf("internal error: %v", v)
			slog.Error("sampler panicked", "ids", ids, "err", err, "stack", string(debug.Stack()))
			finishAll(batch, hard, err)
		}
	}()
	if batch[0].kind == "t2i" {
		s.runT2I(ctx, hard, batch)
	} else {
		s.runText(ctx, hard, batch)
	}
	for _, j := range batch {
		if !j.finished {
			// Every run function finishes every job; this guards the
			// handlers against waiting forever if one does not.
			slog.Error("job left unfinished by its batch", "id", j.id)
			j.finish(nil, fmt.Errorf("internal error: job %s was not finished", j.id))
		}
	}
	slog.Debug("batch done", "kind", batch[0].kind, "size", len(batch), "elapsed", time.Since(now))
}

// batchContext returns a context for one sampler call over batch. It ends
// when the server stops waiting (hard) or when every job's own context
// has ended: the rows of a client that left keep being computed while
// other rows of its batch are still wanted, because the sampler cannot
// drop rows in the middle of a call.
func batchContext(hard context.Context, batch []*job) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(hard)
	var live atomic.Int64
	live.Store(int64(len(batch)))
	stops := make([]func() bool, len(batch))
	for i, j := range batch {
		stops[i] = context.AfterFunc(j.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
