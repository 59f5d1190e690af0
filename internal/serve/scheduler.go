package serve

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of admission and of shutdown; the handlers map them to 429 and
// 503.
var (
	errQueueFull    = errors.New("the request queue is full; retry later")
	errShuttingDown = errors.New("the server is shutting down")
)

// job is one admitted request on its way through the scheduler.
type job struct {
	// id is the request id, also sent to the client in X-Request-Id.
	id string
	// kind is "text", "mmu" or "t2i".
	kind string
	// ctx ends when the client disconnects or the request times out.
	ctx context.Context
	// key groups jobs that can share one sampler call: equal keys mean
	// equal kind class, parameters and prompt length.
	key string
	// enqueued is when the job entered the queue.
	enqueued time.Time

	text *textWork
	t2i  *t2iWork

	// events carries step events to a streaming handler; it is nil when
	// the client asked for the final result only. Its capacity covers
	// every event the job can produce, so the worker never blocks on a
	// slow client.
	events chan event
	// done is closed after result or err is set.
	done   chan struct{}
	result any
	err    error
	// batch is the number of requests in the sampler call that ran this
	// job, set by the worker.
	batch int
	// started is when the worker began the job's batch.
	started time.Time
	// stepsDone counts finished sampler steps, for the request log.
	stepsDone atomic.Int64
	// finished is set by finish; only the goroutine that owns the job
	// (the worker once the job left the queue) reads it.
	finished bool
}

// send queues an event for a streaming client. It never blocks: the
// channel is sized for every event of the job, and an event beyond that
// is dropped and logged rather than stalling the batch.
func (j *job) send(ev event) {
	if j.events == nil {
		return
	}
	select {
	case j.events <- ev:
	default:
		slog.Warn("event dropped: stream buffer full", "id", j.id, "event", ev.name)
	}
}

// finish records the outcome and wakes the handler. It runs once per
// job: on the worker, or in cancelQueued for a job leaving the queue.
func (j *job) finish(result any, err error) {
	j.result, j.err = result, err
	j.finished = true
	close(j.done)
}

// runFunc executes one batch of compatible jobs and finishes every one.
type runFunc func(ctx context.Context, batch []*job)

// scheduler is a bounded FIFO queue in front of one worker. The worker
// takes the oldest job and every queued job with the same key, up to
// maxBatch, and runs them as one sampler call. One worker is enough
// because every request runs the same model: a second one would only
// compete for the same cores (or accelerator) and would need a backend
// session that is safe for concurrent use.
type scheduler struct {
	maxPending int
	maxBatch   int
	run        runFunc

	mu      sync.Mutex
	pending []*job
	running []*job
	closed  bool
	// report, when not nil, collects the ids of jobs that end after
	// shutdown began.
	report *ShutdownReport

	wake chan struct{}
	// hardCtx is cancelled when shutdown stops waiting for in-flight
	// work; every batch runs under it.
	hardCtx    context.Context
	hardCancel context.CancelFunc
	stopped    chan struct{}
	batches    atomic.Int64
}

func newScheduler(maxPending, maxBatch int, run runFunc) *scheduler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scheduler{
		maxPending: maxPending, maxBatch: max(1, maxBatch), run: run,
		wake: make(chan struct{}, 1), hardCtx: ctx, hardCancel: cancel,
		stopped: make(chan struct{}),
	}
	go s.loop()
	return s
}

// submit admits a job or returns errQueueFull or errShuttingDown.
func (s *scheduler) submit(j *job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errShuttingDown
	}
	if len(s.pending) >= s.maxPending {
		return errQueueFull
	}
	j.enqueued = time.Now()
	s.pending = append(s.pending, j)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// cancelQueued finishes a job that is still waiting in the queue with
// err and reports whether it was there; a job already handed to the
// worker is left to the worker.
func (s *scheduler) cancelQueued(j *job, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.pending, j)
	if i < 0 {
		return false
	}
	s.pending = slices.Delete(s.pending, i, i+1)
	j.finish(nil, err)
	s.noteEnd(j)
	return true
}

// depth returns the number of queued and of running jobs.
func (s *scheduler) depth() (queued, running int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending), len(s.running)
}

// position returns how many queued jobs are ahead of j, or -1.
func (s *scheduler) position(j *job) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Index(s.pending, j)
}

// loop is the worker: it runs batches until shutdown has closed the
// queue and nothing is left in it.
func (s *scheduler) loop() {
	defer close(s.stopped)
	for {
		batch, ok := s.next()
		if !ok {
			return
		}
		s.batches.Add(1)
		s.run(s.hardCtx, batch)
		s.mu.Lock()
		for _, j := range batch {
			s.noteEnd(j)
		}
		s.running = nil
		s.mu.Unlock()
	}
}

// next waits for work and takes the oldest live job plus the queued jobs
// that share its key. Jobs whose client is already gone are finished
// here without running.
func (s *scheduler) next() ([]*job, bool) {
	for {
		s.mu.Lock()
		var batch []*job
		kept := s.pending[:0]
		for _, j := range s.pending {
			switch {
			case j.ctx.Err() != nil:
				j.finish(nil, context.Cause(j.ctx))
				s.noteEnd(j)
			case len(batch) == 0 || (j.key == batch[0].key && len(batch) < s.maxBatch):
				batch = append(batch, j)
			default:
				kept = append(kept, j)
			}
		}
		clear(s.pending[len(kept):])
		s.pending = kept
		if len(batch) > 0 {
			s.running = batch
			s.mu.Unlock()
			return batch, true
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, false
		}
		<-s.wake
	}
}

// noteEnd adds a finished job to the shutdown report. The caller holds
// s.mu.
func (s *scheduler) noteEnd(j *job) {
	if s.report == nil {
		return
	}
	if j.err == nil {
		s.report.Finished = append(s.report.Finished, j.id)
	} else {
		s.report.Cancelled = append(s.report.Cancelled, j.id)
	}
}

// ShutdownReport lists the requests that were queued or running when
// shutdown began, by how they ended.
type ShutdownReport struct {
	// Finished lists the ids of requests that completed.
	Finished []string
	// Cancelled lists the ids of requests that were cancelled, failed or
	// whose client left.
	Cancelled []string
}

// close stops admission. Queued and running jobs continue.
func (s *scheduler) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.report = &ShutdownReport{}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drain waits until the worker has run every queued job, or until ctx
// ends; then it cancels what is left and waits for the worker to stop.
// It returns the report of the jobs that ended after close.
func (s *scheduler) drain(ctx context.Context) ShutdownReport {
	s.close()
	select {
	case <-s.stopped:
	case <-ctx.Done():
		s.mu.Lock()
		for _, j := range s.pending {
			j.finish(nil, errShuttingDown)
			s.noteEnd(j)
		}
		s.pending = nil
		s.mu.Unlock()
		s.hardCancel()
		<-s.stopped
	}
	s.hardCancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.report
}
