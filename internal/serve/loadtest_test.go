package serve

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestLoad sends a fixed number of concurrent text requests for a fixed
// time on loopback and reports throughput and latency. It runs only with
// MMADAC_LOADTEST=1 (and -v to see the numbers):
//
//	MMADAC_LOADTEST=1 go test -v -run TestLoad ./internal/serve/
//
// MMADAC_LOADTEST_CLIENTS (default 8), MMADAC_LOADTEST_SECONDS (default
// 5) and MMADAC_LOADTEST_MAX_BATCH (default 8) change the load, and
// MMADAC_LOADTEST_BACKEND (default interp) the backend. Every prompt is unique to its request and
// comes back at the start of the ids, which shows that each response
// belongs to its request. The test fails when a request gets no
// response, a response twice, or the response of another request.
func TestLoad(t *testing.T) {
	if os.Getenv("MMADAC_LOADTEST") != "1" {
		t.Skip("set MMADAC_LOADTEST=1 to run the load test")
	}
	clients := envInt(t, "MMADAC_LOADTEST_CLIENTS", 8)
	duration := time.Duration(envInt(t, "MMADAC_LOADTEST_SECONDS", 5)) * time.Second
	maxBatch := envInt(t, "MMADAC_LOADTEST_MAX_BATCH", 8)
	models := tinyModels(t)
	if backend := os.Getenv("MMADAC_LOADTEST_BACKEND"); backend != "" && backend != "interp" {
		var err error
		if models, err = LoadModels("../../testdata/upstream-tiny/mmada", "../../testdata/upstream-tiny/magvit", "", backend); err != nil {
			t.Fatal(err)
		}
		defer models.Close()
	}

	s := newServer(t, models, func(c *Config) { c.MaxBatch = maxBatch })
	ts := startServer(t, s)
	type outcome struct {
		n       int
		status  int
		id      string
		batch   int
		latency time.Duration
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		sent     int
	)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(deadline); k++ {
				n := c*1_000_000 + k
				prompt := []int64{int64(c % 200), int64(k % 200), int64(k / 200 % 200)}
				mu.Lock()
				sent++
				mu.Unlock()
				body := map[string]any{"prompt_ids": prompt, "steps": 16, "gen_length": 16, "block_length": 16, "temperature": 1.0, "seed": n}
				t0 := time.Now()
				resp := post(t, context.Background(), ts.URL+"/v1/text", body, false)
				o := outcome{n: n, status: resp.StatusCode, latency: time.Since(t0), id: resp.Header.Get("X-Request-Id")}
				if resp.StatusCode == http.StatusOK {
					var r textResult
					decodeBody(t, resp, &r)
					if !slices.Equal(r.IDs[:3], prompt) || r.ID != o.id {
						t.Errorf("request %d got the answer of another request: ids start %v, id %s/%s", n, r.IDs[:3], r.ID, o.id)
					}
					o.batch = r.Batch
				} else {
					resp.Body.Close()
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	if len(outcomes) != sent {
		t.Errorf("%d requests sent, %d answered", sent, len(outcomes))
	}
	seen := map[string]bool{}
	var latencies []time.Duration
	ok, rejected, batchSum := 0, 0, 0
	for _, o := range outcomes {
		if seen[o.id] {
			t.Errorf("request id %s answered twice", o.id)
		}
		seen[o.id] = true
		switch o.status {
		case http.StatusOK:
			ok++
			batchSum += o.batch
			latencies = append(latencies, o.latency)
		case http.StatusTooManyRequests:
			rejected++
		default:
			t.Errorf("request %d: status %d", o.n, o.status)
		}
	}
	if ok == 0 {
		t.Fatal("no request succeeded")
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	t.Logf("load: %d clients for %v on %s, max batch %d: %d requests, %d ok, %d rejected (429), %.1f requests/s, p50 %v, p99 %v, mean batch %.2f, %d batches",
		clients, duration, s.models.Text.Backend, maxBatch, sent, ok, rejected, float64(ok)/elapsed.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), float64(batchSum)/float64(ok), s.sched.batches.Load())
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q is not a positive integer", name, v)
	}
	return n
}
