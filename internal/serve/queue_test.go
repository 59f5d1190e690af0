package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond every 5 ms for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func queued(s *Server) int {
	q, _ := s.sched.depth()
	return q
}

// textCall posts a text request and returns its status and result.
type textCall struct {
	status int
	result textResult
	err    errorBody
	header http.Header
}

func callText(t *testing.T, url string, body map[string]any) textCall {
	t.Helper()
	resp := post(t, context.Background(), url+"/v1/text", body, false)
	var c textCall
	c.status, c.header = resp.StatusCode, resp.Header
	if resp.StatusCode == http.StatusOK {
		decodeBody(t, resp, &c.result)
	} else {
		decodeBody(t, resp, &c.err)
	}
	return c
}

func TestBatchedRequestsMatchAlone(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	entered, release := gateModel(s)
	ts := startServer(t, s)
	prompt := []int64{115, 3, 109, 172, 167, 35}
	sampled := func(seed int, prompt []int64) map[string]any {
		return map[string]any{"prompt_ids": prompt, "steps": 8, "gen_length": 16, "block_length": 8, "temperature": 1.0, "seed": seed}
	}

	// The first request holds the worker; the next four wait together.
	var wg sync.WaitGroup
	calls := make([]textCall, 5)
	wg.Add(1)
	go func() { defer wg.Done(); calls[0] = callText(t, ts.URL, sampled(9, prompt[:2])) }()
	<-entered
	bodies := []map[string]any{sampled(1, prompt), sampled(2, prompt), sampled(3, prompt), sampled(4, prompt[:5])}
	for i, body := range bodies {
		wg.Add(1)
		go func() { defer wg.Done(); calls[i+1] = callText(t, ts.URL, body) }()
		waitFor(t, "the request to queue", func() bool { return queued(s) == i+1 })
	}
	close(release)
	wg.Wait()

	for i, c := range calls {
		if c.status != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i, c.status, c.err.Error)
		}
	}
	// Seeds 1-3 share parameters and prompt length; the shorter prompt
	// and the first request ran alone.
	for i, want := range []int{1, 3, 3, 3, 1} {
		if calls[i].result.Batch != want {
			t.Errorf("request %d ran in a batch of %d, want %d", i, calls[i].result.Batch, want)
		}
	}
	if slices.Equal(calls[1].result.IDs, calls[2].result.IDs) {
		t.Errorf("seeds 1 and 2 gave the same ids %v; the rows did not get their own noise", calls[1].result.IDs)
	}
	for i, body := range bodies[:3] {
		alone := callText(t, ts.URL, body)
		if alone.result.Batch != 1 {
			t.Fatalf("rerun of request %d ran in a batch of %d", i+1, alone.result.Batch)
		}
		if !slices.Equal(alone.result.IDs, calls[i+1].result.IDs) {
			t.Errorf("seed %d: batched %v, alone %v", i+1, calls[i+1].result.IDs, alone.result.IDs)
		}
	}
}

func TestQueueFullAnswers429(t *testing.T) {
	s := newServer(t, tinyModels(t), func(c *Config) { c.MaxQueue = 1 })
	entered, release := gateModel(s)
	ts := startServer(t, s)
	body := map[string]any{"prompt_ids": []int64{1, 2}, "steps": 2, "gen_length": 2, "block_length": 2}

	var wg sync.WaitGroup
	var first, second textCall
	wg.Add(2)
	go func() { defer wg.Done(); first = callText(t, ts.URL, body) }()
	<-entered
	go func() { defer wg.Done(); second = callText(t, ts.URL, body) }()
	waitFor(t, "the second request to queue", func() bool { return queued(s) == 1 })

	third := callText(t, ts.URL, body)
	if third.status != http.StatusTooManyRequests {
		t.Errorf("third request: status %d, want 429", third.status)
	}
	if third.header.Get("Retry-After") == "" || !strings.Contains(third.err.Error, "queue is full") {
		t.Errorf("third request: Retry-After %q, error %q", third.header.Get("Retry-After"), third.err.Error)
	}
	close(release)
	wg.Wait()
	if first.status != http.StatusOK || second.status != http.StatusOK {
		t.Errorf("admitted requests: status %d and %d, want 200", first.status, second.status)
	}
}

func TestClientDisconnectCancelsRunning(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	slowModel(s, 10*time.Millisecond)
	calls := countModel(s)
	ts := startServer(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	body := map[string]any{"prompt_ids": []int64{1, 2, 3}, "steps": 200, "gen_length": 200, "block_length": 200}
	resp := post(t, ctx, ts.URL+"/v1/text", body, true)
	buf := make([]byte, 4096)
	read := ""
	for !strings.Contains(read, "event: step") {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("stream ended before the first step: %v", err)
		}
		read += string(buf[:n])
	}
	cancel()
	resp.Body.Close()

	waitFor(t, "the worker to stop", func() bool { _, running := s.sched.depth(); return running == 0 })
	stoppedAt := calls()
	if stoppedAt >= 100 {
		t.Errorf("the model ran %d of 200 steps after the client left", stoppedAt)
	}
	time.Sleep(50 * time.Millisecond)
	if calls() != stoppedAt {
		t.Errorf("the model kept running after the cancellation: %d calls, then %d", stoppedAt, calls())
	}
	// The worker is free for the next request.
	next := callText(t, ts.URL, map[string]any{"prompt_ids": []int64{1}, "steps": 2, "gen_length": 2, "block_length": 2})
	if next.status != http.StatusOK {
		t.Errorf("next request: status %d", next.status)
	}
}

func TestClientDisconnectLeavesQueue(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	entered, release := gateModel(s)
	ts := startServer(t, s)
	body := map[string]any{"prompt_ids": []int64{1, 2}, "steps": 2, "gen_length": 2, "block_length": 2}

	done := make(chan textCall)
	go func() { done <- callText(t, ts.URL, body) }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/text", strings.NewReader(`{"prompt_ids": [5], "steps": 2, "gen_length": 2, "block_length": 2}`))
		_, err := http.DefaultClient.Do(req)
		errc <- err
	}()
	waitFor(t, "the request to queue", func() bool { return queued(s) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled client got %v", err)
	}
	waitFor(t, "the queue to empty", func() bool { return queued(s) == 0 })
	close(release)
	if c := <-done; c.status != http.StatusOK {
		t.Errorf("running request: status %d", c.status)
	}
	if n := s.sched.batches.Load(); n != 1 {
		t.Errorf("%d batches ran, want 1: the cancelled request ran anyway", n)
	}
}

func TestRequestTimeout(t *testing.T) {
	s := newServer(t, tinyModels(t), func(c *Config) { c.RequestTimeout = 150 * time.Millisecond })
	slowModel(s, 10*time.Millisecond)
	ts := startServer(t, s)
	body := map[string]any{"prompt_ids": []int64{1, 2}, "steps": 100, "gen_length": 100, "block_length": 100}

	c := callText(t, ts.URL, body)
	if c.status != http.StatusGatewayTimeout || !strings.Contains(c.err.Error, "timed out after 150ms") {
		t.Errorf("status %d %q, want 504 timed out", c.status, c.err.Error)
	}

	resp := post(t, context.Background(), ts.URL+"/v1/text", body, true)
	events := readEvents(t, resp.Body)
	resp.Body.Close()
	last := events[len(events)-1]
	var e errorBody
	if err := json.Unmarshal(last.Data, &e); err != nil {
		t.Fatal(err)
	}
	if last.Name != "error" || e.Status != http.StatusGatewayTimeout {
		t.Errorf("stream ends with %s %+v, want an error event with status 504", last.Name, e)
	}
}

// serveLoopback runs s.Serve on a loopback port and returns its URL.
func serveLoopback(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	return "http://" + ln.Addr().String()
}

func TestShutdownFinishesInFlight(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	slowModel(s, 10*time.Millisecond)
	url := serveLoopback(t, s)
	body := map[string]any{"prompt_ids": []int64{1, 2}, "steps": 20, "gen_length": 20, "block_length": 20}

	done := make(chan textCall)
	go func() { done <- callText(t, url, body) }()
	waitFor(t, "the request to run", func() bool { _, running := s.sched.depth(); return running == 1 })

	reports := make(chan ShutdownReport)
	go func() { reports <- s.Shutdown(context.Background()) }()
	waitFor(t, "shutdown to begin", s.closing.Load)

	// New requests and the health check see the shutdown. The listener
	// is closed, so they go to the handler directly.
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/health", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "stopping") {
		t.Errorf("health during shutdown: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/text", strings.NewReader(`{"prompt_ids": [1]}`)))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Errorf("request during shutdown: %d %s", rec.Code, rec.Body)
	}

	c := <-done
	report := <-reports
	if c.status != http.StatusOK || len(c.result.IDs) != 22 {
		t.Fatalf("in-flight request: status %d, %d ids", c.status, len(c.result.IDs))
	}
	if !slices.Equal(report.Finished, []string{c.result.ID}) || len(report.Cancelled) != 0 {
		t.Errorf("report %+v, want %s finished", report, c.result.ID)
	}
}

func TestShutdownCancelsAfterGrace(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	slowModel(s, 10*time.Millisecond)
	url := serveLoopback(t, s)
	long := map[string]any{"prompt_ids": []int64{1, 2}, "steps": 300, "gen_length": 300, "block_length": 300}
	other := map[string]any{"prompt_ids": []int64{1, 2, 3}, "steps": 4, "gen_length": 4, "block_length": 4}

	// A streaming request that runs and a plain one that waits.
	resp := post(t, context.Background(), url+"/v1/text", long, true)
	runningID := resp.Header.Get("X-Request-Id")
	waitFor(t, "the request to run", func() bool { _, running := s.sched.depth(); return running == 1 })
	done := make(chan textCall)
	go func() { done <- callText(t, url, other) }()
	waitFor(t, "the request to queue", func() bool { return queued(s) == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	report := s.Shutdown(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}

	events := readEvents(t, resp.Body)
	resp.Body.Close()
	last := events[len(events)-1]
	var e errorBody
	json.Unmarshal(last.Data, &e)
	if last.Name != "error" || e.Status != http.StatusServiceUnavailable || !strings.Contains(e.Error, "shutting down") {
		t.Errorf("running stream ends with %s %+v, want a 503 error event", last.Name, e)
	}
	queuedCall := <-done
	if queuedCall.status != http.StatusServiceUnavailable {
		t.Errorf("queued request: status %d, want 503", queuedCall.status)
	}
	slices.Sort(report.Cancelled)
	want := []string{runningID, queuedCall.err.ID}
	slices.Sort(want)
	if !slices.Equal(report.Cancelled, want) || len(report.Finished) != 0 {
		t.Errorf("report %+v, want %v cancelled", report, want)
	}
}

func TestBatchedT2IMatchesAlone(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	entered, release := gateModel(s)
	ts := startServer(t, s)
	call := func(body map[string]any) t2iResult {
		resp := post(t, context.Background(), ts.URL+"/v1/t2i", body, false)
		var r t2iResult
		decodeBody(t, resp, &r)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("t2i status %d", resp.StatusCode)
		}
		return r
	}
	bodies := []map[string]any{
		{"prompt_ids": []int64{106, 105, 8}, "timesteps": 4, "seed": 1},
		{"prompt_ids": []int64{69, 27}, "timesteps": 4, "seed": 2},
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		callText(t, ts.URL, map[string]any{"prompt_ids": []int64{1}, "steps": 2, "gen_length": 2, "block_length": 2})
	}()
	<-entered
	batched := make([]t2iResult, len(bodies))
	for i, body := range bodies {
		wg.Add(1)
		go func() { defer wg.Done(); batched[i] = call(body) }()
		waitFor(t, "the t2i request to queue", func() bool { return queued(s) == i+1 })
	}
	close(release)
	wg.Wait()

	for i, body := range bodies {
		if batched[i].Batch != 2 {
			t.Errorf("t2i request %d ran in a batch of %d, want 2", i, batched[i].Batch)
		}
		alone := call(body)
		if alone.Batch != 1 || !slices.Equal(alone.Codes, batched[i].Codes) || alone.PNG != batched[i].PNG {
			t.Errorf("t2i request %d: batched codes %v, alone %v (batch %d)", i, batched[i].Codes, alone.Codes, alone.Batch)
		}
	}
}
