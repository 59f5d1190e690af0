package serve

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mmadac/mmadac/runtime/sampler"
)

func TestHealth(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	resp, err := http.Get(ts.URL + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	var h health
	decodeBody(t, resp, &h)
	if resp.StatusCode != http.StatusOK || h.Status != "ok" || h.Queued != 0 || h.Running != 0 {
		t.Errorf("health %d %+v", resp.StatusCode, h)
	}
}

func TestModelsDescribesWhatIsLoaded(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var info modelsInfo
	decodeBody(t, resp, &info)
	if info.Text.Path != "../../testdata/upstream-tiny/mmada" || info.Text.Backend != "interp" || info.Text.VocabSize != 320 || info.Text.MaskID != 250 {
		t.Errorf("text model %+v", info.Text)
	}
	if info.VQ == nil || info.VQ.CodebookSize != 64 || info.VQ.ImageSize != 16 || info.VQ.Grid != [2]int{4, 4} {
		t.Errorf("vq model %+v", info.VQ)
	}
	if info.Tokenizer != nil {
		t.Errorf("tokenizer %+v, want null", info.Tokenizer)
	}
	if !info.Endpoints["text"] || !info.Endpoints["mmu"] || !info.Endpoints["t2i"] {
		t.Errorf("endpoints %v", info.Endpoints)
	}
	d := sampler.DefaultTextParams(0)
	got := info.Defaults.Text
	if got.Steps != d.Steps || got.GenLength != d.GenLength || got.BlockLength != d.BlockLength || got.Remasking != d.Remasking {
		t.Errorf("text defaults %+v, want the sampler's %+v", got, d)
	}
	if info.Defaults.T2I.GuidanceScale != 3.5 || info.Defaults.T2I.Timesteps != 15 || info.Defaults.T2I.Temperature != 1 {
		t.Errorf("t2i defaults %+v", info.Defaults.T2I)
	}
	if info.Limits.MaxSteps != 1024 || info.Queue.MaxQueue != 64 {
		t.Errorf("limits %+v queue %+v", info.Limits, info.Queue)
	}
}

func TestPageIsSelfContained(t *testing.T) {
	s := newServer(t, tinyModels(t), nil)
	ts := startServer(t, s)
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	html := string(data)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(html, "<title>mmadac serve</title>") {
		t.Fatalf("GET / returned %s: %.80q", resp.Header.Get("Content-Type"), html)
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).FindString(html); m != "" {
		t.Errorf("the page loads an external asset: %s", m)
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", resp.Header.Get("Content-Security-Policy"))
	}
	for _, id := range []string{`id="prompt"`, `id="prompt_ids"`, `id="steps"`, `id="guidance_scale"`, `id="tokens"`, `id="picture"`, `id="step"`, `id="rate"`} {
		if !strings.Contains(html, id) {
			t.Errorf("the page has no element %s", id)
		}
	}
}

func TestBatchNoiseMatchesSeeded(t *testing.T) {
	seeds := []uint64{3, 0, 42}
	for _, shape := range [][]int64{{3, 5, 7}, {3, 4}, {3 * 6}} {
		n := newBatchNoise(seeds)
		for draw := range 2 {
			got, err := n.Next("kind", shape)
			if err != nil {
				t.Fatal(err)
			}
			for b, seed := range seeds {
				alone := sampler.NewSeeded(seed)
				var want sampler.Draw
				for range draw + 1 {
					one := append([]int64{shape[0] / 3}, shape[1:]...)
					if want, err = alone.Next("kind", one); err != nil {
						t.Fatal(err)
					}
				}
				switch len(shape) {
				case 1:
					w := len(want.Row64(0))
					if !slices.Equal(got.Row64(0)[b*w:(b+1)*w], want.Row64(0)) {
						t.Errorf("shape %v draw %d: row %d differs from seed %d alone", shape, draw, b, seed)
					}
				default:
					rows := 1
					for _, d := range shape[1 : len(shape)-1] {
						rows *= int(d)
					}
					for r := range rows {
						if !slices.Equal(got.Row32(b*rows+r), want.Row32(r)) || !slices.Equal(got.Row64(b*rows+r), want.Row64(r)) {
							t.Errorf("shape %v draw %d: row %d of member %d differs from seed %d alone", shape, draw, r, b, seed)
						}
					}
				}
			}
		}
	}
	if _, err := newBatchNoise(seeds).Next("kind", []int64{4, 2}); err == nil {
		t.Error("a draw of 4 rows split over 3 members gave no error")
	}
}

// fakeJob returns a queued job with a batching key.
func fakeJob(id, key string) *job {
	return &job{id: id, key: key, ctx: context.Background(), done: make(chan struct{})}
}

func TestSchedulerBatchesByKeyInOrder(t *testing.T) {
	batches := make(chan []string, 10)
	hold := make(chan struct{})
	s := newScheduler(10, 2, func(ctx context.Context, batch []*job) {
		<-hold
		var ids []string
		for _, j := range batch {
			ids = append(ids, j.id)
			j.finish(nil, nil)
		}
		batches <- ids
	})
	jobs := []*job{fakeJob("a", "x"), fakeJob("b", "y"), fakeJob("c", "x"), fakeJob("d", "x"), fakeJob("e", "y")}
	for _, j := range jobs {
		if err := s.submit(j); err != nil {
			t.Fatal(err)
		}
	}
	close(hold)
	// "a" may start alone before the others arrive; after it, each batch
	// takes the oldest job and at most one more of its key.
	var got [][]string
	for n := 0; n < len(jobs); {
		select {
		case b := <-batches:
			got = append(got, b)
			n += len(b)
		case <-time.After(5 * time.Second):
			t.Fatalf("batches so far %v", got)
		}
	}
	want := [][]string{{"a", "c"}, {"b", "e"}, {"d"}}
	if slices.Equal(got[0], []string{"a"}) {
		want = [][]string{{"a"}, {"b", "e"}, {"c", "d"}}
	}
	for i := range want {
		if i >= len(got) || !slices.Equal(got[i], want[i]) {
			t.Fatalf("batches %v, want %v", got, want)
		}
	}
	report := s.drain(context.Background())
	if len(report.Finished)+len(report.Cancelled) != 0 {
		t.Errorf("report %+v after an idle drain", report)
	}
	if err := s.submit(fakeJob("f", "x")); err != errShuttingDown {
		t.Errorf("submit after drain: %v", err)
	}
}
