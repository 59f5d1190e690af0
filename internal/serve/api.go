package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// errRequestTimeout ends a request that ran past Config.RequestTimeout.
var errRequestTimeout = errors.New("the request timed out")

// statusClientClosed is the status logged (never sent) for a request
// whose client disconnected, after the nginx convention.
const statusClientClosed = 499

// event is one server-sent event: the event name and its JSON data.
type event struct {
	name string
	data any
}

// errorBody is the JSON of an error response and of the error event.
type errorBody struct {
	ID     string `json:"id"`
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
	Status int    `json:"status"`
}

// requestLog collects what the request line of the log reports.
type requestLog struct {
	id, kind string
	start    time.Time
	params   []any
	status   int
	outcome  string
	err      error
	job      *job
}

// emit writes the request line: one per API request, whatever the
// outcome.
func (l *requestLog) emit() {
	attrs := []any{"id", l.id, "kind", l.kind, "status", l.status, "outcome", l.outcome,
		"duration", time.Since(l.start).Round(time.Microsecond)}
	attrs = append(attrs, l.params...)
	if j := l.job; j != nil {
		attrs = append(attrs, "steps", j.stepsDone.Load(), "batch", j.batch)
	}
	if l.err != nil {
		attrs = append(attrs, "err", l.err.Error())
	}
	level := slog.LevelInfo
	if l.status >= 500 && l.status != statusClientClosed {
		level = slog.LevelError
	}
	slog.Log(context.Background(), level, "request", attrs...)
}

// classify maps an error to its HTTP status and the outcome word of the
// request log.
func classify(err error) (status int, outcome string) {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.Status, "invalid"
	case errors.Is(err, errQueueFull):
		return http.StatusTooManyRequests, "rejected"
	case errors.Is(err, errShuttingDown):
		return http.StatusServiceUnavailable, "shutdown"
	case errors.Is(err, errRequestTimeout):
		return http.StatusGatewayTimeout, "timeout"
	case errors.Is(err, context.Canceled):
		return statusClientClosed, "cancelled"
	}
	return http.StatusInternalServerError, "failed"
}

// errorFor builds the error body of err.
func errorFor(id string, err error) errorBody {
	status, _ := classify(err)
	b := errorBody{ID: id, Error: err.Error(), Status: status}
	var re *requestError
	if errors.As(err, &re) {
		b.Field = re.Field
	}
	return b
}

// fail writes the error response of a request that did not produce a result.
func (s *Server) fail(w http.ResponseWriter, l *requestLog, err error) {
	l.status, l.outcome = classify(err)
	l.err = err
	if l.status == statusClientClosed {
		return
	}
	switch l.status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, l.status, errorFor(l.id, err))
}

// writeJSON writes v as the whole response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		slog.Error("encoding a response failed", "err", err)
		status, data = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// wantsStream reports whether the client asked for server-sent events.
func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// runJob admits j and writes its result, as one JSON response or
// as an event stream. The job's context ends with the client's
// connection or after the request timeout, whichever comes first.
func (s *Server) runJob(w http.ResponseWriter, r *http.Request, j *job, l *requestLog, eventCap int) {
	ctx, cancel := context.WithTimeoutCause(r.Context(), s.cfg.RequestTimeout, fmt.Errorf("%w after %v", errRequestTimeout, s.cfg.RequestTimeout))
	defer cancel()
	j.ctx = ctx
	j.done = make(chan struct{})
	l.job = j
	stream := wantsStream(r)
	if stream {
		j.events = make(chan event, eventCap)
	}
	if err := s.sched.submit(j); err != nil {
		s.fail(w, l, err)
		return
	}
	if stream {
		s.stream(w, j, l)
		return
	}

	var result any
	var err error
	select {
	case <-j.done:
		result, err = j.result, j.err
	case <-ctx.Done():
		// A job still in the queue leaves it; a running one is dropped
		// by the worker once its context ends.
		err = context.Cause(ctx)
		s.sched.cancelQueued(j, err)
	}
	if err != nil {
		s.fail(w, l, err)
		return
	}
	l.status, l.outcome = http.StatusOK, "ok"
	writeJSON(w, http.StatusOK, result)
}

// stream writes the job's events as text/event-stream: "queued" first,
// then what the worker sends ("start", "step", "preview"), then "result"
// or "error". Each event is one "event:" line and one "data:" line of
// JSON.
func (s *Server) stream(w http.ResponseWriter, j *job, l *requestLog) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	l.status = http.StatusOK

	write := func(ev event) bool {
		data, err := json.Marshal(ev.data)
		if err != nil {
			slog.Error("encoding an event failed", "id", j.id, "event", ev.name, "err", err)
			return true
		}
		// A client that stops reading must not hold the handler forever.
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, data); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	end := func(err error) {
		if err == nil {
			l.outcome = "ok"
			write(event{"result", j.result})
			return
		}
		status, outcome := classify(err)
		l.outcome, l.err = outcome, err
		if status != statusClientClosed {
			l.status = status
			write(event{"error", errorFor(j.id, err)})
		}
	}

	if !write(event{"queued", map[string]any{"id": j.id, "position": max(0, s.sched.position(j))}}) {
		l.outcome = "cancelled"
		return
	}
	for {
		select {
		case ev := <-j.events:
			if !write(ev) {
				l.outcome = "cancelled"
				return
			}
		case <-j.done:
			// The worker sends every event before it finishes the job.
			for {
				select {
				case ev := <-j.events:
					write(ev)
					continue
				default:
				}
				break
			}
			end(j.err)
			return
		case <-j.ctx.Done():
			err := context.Cause(j.ctx)
			s.sched.cancelQueued(j, err)
			end(err)
			return
		}
	}
}
