package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// The tests run the small upstream checkpoints on the interp backend,
// which needs no native library.
var tiny struct {
	once   sync.Once
	models Models
	err    error
}

func tinyModels(t *testing.T) Models {
	t.Helper()
	tiny.once.Do(func() {
		tiny.models, tiny.err = LoadModels("../../testdata/upstream-tiny/mmada", "../../testdata/upstream-tiny/magvit", "", engine.BackendInterp)
	})
	if tiny.err != nil {
		t.Fatal(tiny.err)
	}
	return tiny.models
}

// testConfig is DefaultConfig with the t2i caption length of the golden
// cases (16 tokens plus the task token) and a preview every step.
func testConfig() Config {
	c := DefaultConfig()
	c.T2ITextLength = 16
	c.PreviewEvery = 1
	c.RequestTimeout = time.Minute
	return c
}

// startServer serves s on a loopback httptest server. Cleanup shuts s
// down (cancelling what still runs) before closing the listener.
func startServer(t *testing.T, s *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s.Shutdown(ctx)
		ts.Close()
	})
	return ts
}

// newServer returns a server for the tiny models with cfg changed by edit.
func newServer(t *testing.T, models Models, edit func(*Config)) *Server {
	t.Helper()
	cfg := testConfig()
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(models, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slowModel makes every model call of s take at least delay and turns
// the folded head off, so that all text steps go through forward.
func slowModel(s *Server, delay time.Duration) {
	fwd := s.forward
	s.head = nil
	s.forward = func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		time.Sleep(delay)
		return fwd(ids, mask)
	}
}

// gateModel holds every model call of s (through forward or the folded
// head) until release is closed, and closes entered on the first call.
func gateModel(s *Server) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	wait := func() {
		once.Do(func() { close(entered) })
		<-release
	}
	fwd := s.forward
	s.forward = func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		wait()
		return fwd(ids, mask)
	}
	if s.head != nil {
		s.head = gatedHead{s.head, wait}
	}
	return entered, release
}

// gatedHead calls wait before every step of the folded head.
type gatedHead struct {
	inner sampler.Head
	wait  func()
}

func (h gatedHead) Greedy(ids, mask *ir.Tensor, lo, hi int, cfg float32) ([]int64, []float64, error) {
	h.wait()
	return h.inner.Greedy(ids, mask, lo, hi, cfg)
}

func (h gatedHead) Logits(ids, mask *ir.Tensor, lo, hi int, cfg float32) (*ir.Tensor, error) {
	h.wait()
	return h.inner.Logits(ids, mask, lo, hi, cfg)
}

// countModel counts the model calls of s.
func countModel(s *Server) func() int {
	var mu sync.Mutex
	n := 0
	fwd := s.forward
	s.forward = func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		mu.Lock()
		n++
		mu.Unlock()
		return fwd(ids, mask)
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// post sends body (marshalled unless it is a string or []byte) as JSON.
func post(t *testing.T, ctx context.Context, url string, body any, stream bool) *http.Response {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// decodeBody reads a JSON response into v and closes it.
func decodeBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("response is not JSON: %v: %q", err, data)
	}
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	Name string
	Data json.RawMessage
}

// readEvents parses a whole event stream and checks its framing: every
// event is one "event:" line and one "data:" line of valid JSON, then an
// empty line.
func readEvents(t *testing.T, r io.Reader) []sseEvent {
	t.Helper()
	var events []sseEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		if line != "" {
			lines = append(lines, line)
			continue
		}
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
			t.Fatalf("malformed event block %q", lines)
		}
		data := json.RawMessage(strings.TrimPrefix(lines[1], "data: "))
		if !json.Valid(data) {
			t.Fatalf("event %s carries invalid JSON %q", lines[0], data)
		}
		events = append(events, sseEvent{Name: strings.TrimPrefix(lines[0], "event: "), Data: data})
		lines = nil
	}
	if len(lines) != 0 {
		t.Fatalf("stream ends inside an event: %q", lines)
	}
	return events
}

// goldenCase is a text or mmu case of testdata/cases.json.
type goldenCase struct {
	Kind        string         `json:"kind"`
	Name        string         `json:"name"`
	PromptIDs   [][]int64      `json:"prompt_ids"`
	Params      map[string]any `json:"params"`
	Noise       string         `json:"noise"`
	ExpectedIDs [][]int64      `json:"expected_ids"`
	InputIDs    [][]int64      `json:"input_ids"`
	TextIDs     [][]int64      `json:"text_ids"`
	Mask        [][]int64      `json:"attention_mask"`
}

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	data, err := os.ReadFile("../../testdata/upstream-tiny/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cases
}

func goldenCaseNamed(t *testing.T, kind, name string) goldenCase {
	t.Helper()
	for _, c := range goldenCases(t) {
		if c.Kind == kind && c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s case %q in testdata/cases.json", kind, name)
	return goldenCase{}
}

// textRequest returns the JSON body of a golden text case.
func textRequest(c goldenCase) map[string]any {
	body := map[string]any{"prompt_ids": c.PromptIDs[0]}
	for k, v := range c.Params {
		body[k] = v
	}
	return body
}
