package engine

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/codegen/onnx"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// largeModel makes every graph count as too large for inline weights, as
// MMaDA-8B is, until the test ends.
func largeModel(t *testing.T) {
	old := maxInlineBytes
	maxInlineBytes = 0
	t.Cleanup(func() { maxInlineBytes = old })
}

// externalBundle builds the golden model as an onnx bundle whose weights
// are linked, not copied, and returns its folder.
func externalBundle(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bundle")
	if _, err := Build(BuildOptions{Model: filepath.Join(goldenDir, "mmada"), Out: out, Weights: onnx.WeightsExternal}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBundleGraphsReadBundleWeights runs a bundle of a model too large for
// inline weights, as `mmadac run` does with MMaDA-8B. The folded head
// variants, the block-cache graph and the t2i probs head must open on the
// bundle's weight files and reproduce upstream. A run with the folded head
// must never open the full-logits session.
func TestBundleGraphsReadBundleWeights(t *testing.T) {
	if !hasORT(t) {
		return
	}
	largeModel(t)
	dir := externalBundle(t)

	m, err := LoadModel(dir, BackendORT)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkTextCases(t, m, "ort bundle")
	// The image decoder is a separate, small model; the interpreter runs
	// it here, whatever the size limit.
	checkT2ICases(t, m, loadTinyVQ(t, BackendInterp), "ort bundle+folded-head")
	if m.session != nil {
		t.Error("runs with the folded head opened the full-logits session, a second copy of the weights")
	}

	// The block cache's graph reads the bundle too. Its tokens are
	// approximate, so compare it with the same cache over the checkpoint.
	reference, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	defer reference.Close()
	for _, c := range loadCases(t) {
		if c.Kind != "text" || c.Noise != "" {
			continue
		}
		got := generateWithCache(t, m, c)
		want := generateWithCache(t, reference, c)
		if !slices.EqualFunc(got, want, slices.Equal[[]int64]) {
			t.Errorf("%s: the bundle's block cache gave\n %v\nthe checkpoint's\n %v", c.Name, got, want)
		}
	}

	// The full-logits path opens the bundle's own ONNX file on demand.
	m.SetHeadFolding(false)
	checkTextCases(t, m, "ort bundle, full logits")
	if m.session == nil {
		t.Error("full-logits runs did not open the bundle's session")
	}
}

// TestLargeCheckpointReadsInPlace runs a checkpoint folder too large for
// inline weights: every graph must read the safetensors files in place and
// reproduce upstream. With the files behind symbolic links that leave the
// folder, as in a Hugging Face cache, ONNX Runtime cannot read them in
// place, and the error must name the cause and the fix.
func TestLargeCheckpointReadsInPlace(t *testing.T) {
	if !hasORT(t) {
		return
	}
	largeModel(t)
	m, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendORT)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkTextCases(t, m, "ort checkpoint in place")
	m.SetHeadFolding(false)
	checkTextCases(t, m, "ort checkpoint in place, full logits")

	dir := t.TempDir()
	blob := filepath.Join(dir, "blobs", "weights")
	ckpt := filepath.Join(dir, "snapshot")
	for _, d := range []string{filepath.Dir(blob), ckpt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for src, dst := range map[string]string{"model.safetensors": blob, "config.json": filepath.Join(ckpt, "config.json")} {
		data, err := os.ReadFile(filepath.Join(goldenDir, "mmada", src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(blob, filepath.Join(ckpt, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	_, err = LoadTextModel(ckpt, BackendORT)
	if err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Errorf("linked weights outside the folder: got %v, want an error about symbolic links", err)
	}
	if err == nil || !strings.Contains(err.Error(), "--weights external") {
		t.Errorf("linked weights outside the folder: got %v, want the advice to build a bundle", err)
	}

	// Small enough for inline weights, the same folder runs.
	maxInlineBytes = 1 << 30
	linked, err := LoadTextModel(ckpt, BackendORT)
	if err != nil {
		t.Fatal(err)
	}
	defer linked.Close()
	checkTextCases(t, linked, "ort checkpoint behind symbolic links, inline")
}

func generateWithCache(t *testing.T, m *TextModel, c goldenCase) [][]int64 {
	t.Helper()
	cache := NewBlockCache(m)
	defer cache.Release()
	got, err := sampler.GenerateText(context.Background(), m.Forward, sampler.TextRequest{
		Prompt: c.PromptIDs, AttentionMask: c.AttentionMask, Params: paramsOf(c), Noise: sampler.NewSeeded(0), Head: cache,
	})
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return got
}

// hasORT reports whether ONNX Runtime loads; CI requires it.
func hasORT(t *testing.T) bool {
	t.Helper()
	return slices.Contains(backends(t), BackendORT)
}

// TestLowMemoryWarns opens a session with less memory reported than the
// weights need as float32, and expects the warning that precedes a kill
// by the system.
func TestLowMemoryWarns(t *testing.T) {
	if !hasORT(t) {
		return
	}
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(old)
	oldAvail := availableMemory
	defer func() { availableMemory = oldAvail }()

	m, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendORT)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ids := ir.FromI64([]int64{1, 2, 3, 4}, 1, 4)
	mask := ir.FromI64([]int64{1, 1, 1, 1}, 1, 4)

	availableMemory = func() (int64, bool) { return 1 << 40, true }
	if _, err := m.Forward(ids, mask); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "may not fit in memory") {
		t.Errorf("warned with a terabyte available: %s", logs.String())
	}

	availableMemory = func() (int64, bool) { return 1000, true }
	if _, _, err := m.GreedyAt(ids, mask, 2, 4, []int64{2, 3}, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "may not fit in memory") {
		t.Errorf("no warning with 1000 bytes available; the log was:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "available_gb=0.0") {
		t.Errorf("the warning does not give the available memory:\n%s", logs.String())
	}
}
