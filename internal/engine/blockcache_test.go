package engine

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// TestBlockCacheAgreesWithExactDecoding runs the golden greedy cases with
// the block cache and reports the fraction of generated positions equal
// to exact decoding. The cache is approximate, so the test requires the
// mechanism to run (one full step per block, block steps otherwise) and
// the fraction to be reported, and a single-step-per-block schedule, where
// the cache is never reused, to be exact.
func TestBlockCacheAgreesWithExactDecoding(t *testing.T) {
	for _, be := range backends(t) {
		m, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), be)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range loadCases(t) {
			if c.Kind != "text" || c.Noise != "" {
				continue
			}
			for _, mode := range []string{CacheDual, CachePrefix} {
				agreeWithCache(t, m, c, be, mode)
			}
		}
		m.Close()
	}
}

// agreeWithCache generates case c through a block cache of the given mode
// and logs how many generated positions equal the golden ids.
func agreeWithCache(t *testing.T, m *TextModel, c goldenCase, be, mode string) {
	t.Helper()
	p := paramsOf(c)
	cache, err := NewBlockCacheMode(m, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	got, err := sampler.GenerateText(context.Background(), m.Forward, sampler.TextRequest{
		Prompt: c.PromptIDs, AttentionMask: c.AttentionMask, Params: p, Noise: sampler.NewSeeded(0), Head: cache,
	})
	if err != nil {
		t.Fatalf("%s %s %s: %v", be, mode, c.Name, err)
	}

	blocks := p.GenLength / p.BlockLength
	if cache.FullSteps != blocks || cache.BlockSteps != p.Steps-blocks {
		t.Errorf("%s %s %s: %d full and %d block steps, want %d and %d", be, mode, c.Name, cache.FullSteps, cache.BlockSteps, blocks, p.Steps-blocks)
	}

	same, total := 0, 0
	lp := len(c.PromptIDs[0])
	for b := range got {
		for i := lp; i < len(got[b]); i++ {
			total++
			if got[b][i] == c.ExpectedIDs[b][i] {
				same++
			}
		}
	}
	t.Logf("%s %s %s: block cache matches exact decoding at %d of %d positions", be, mode, c.Name, same, total)
}

func TestBlockCacheFirstStepIsExact(t *testing.T) {
	m, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, c := range loadCases(t) {
		if c.Name != "greedy-three-blocks" {
			continue
		}
		// One step per block: every step is a full step, so the result
		// must equal exact decoding with the same schedule.
		p := paramsOf(c)
		p.Steps = p.GenLength / p.BlockLength
		exact, err := sampler.GenerateText(context.Background(), m.Forward, sampler.TextRequest{Prompt: c.PromptIDs, Params: p, Noise: sampler.NewSeeded(0)})
		if err != nil {
			t.Fatal(err)
		}
		cache := NewBlockCache(m)
		defer cache.Close()
		got, err := sampler.GenerateText(context.Background(), m.Forward, sampler.TextRequest{Prompt: c.PromptIDs, Params: p, Noise: sampler.NewSeeded(0), Head: cache})
		if err != nil {
			t.Fatal(err)
		}
		for i := range exact[0] {
			if exact[0][i] != got[0][i] {
				t.Fatalf("position %d: cache %d, exact %d", i, got[0][i], exact[0][i])
			}
		}
	}
}

// TestBlockGraphMatchesFullGraph checks a block step of both modes against
// the block's first step, which recomputes every row: with the cache
// fresh, the block's logits must agree.
func TestBlockGraphMatchesFullGraph(t *testing.T) {
	m, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, mode := range []string{CacheDual, CachePrefix} {
		t.Run(mode, func(t *testing.T) {
			cache, err := NewBlockCacheMode(m, mode)
			if err != nil {
				t.Fatal(err)
			}
			defer cache.Close()
			blockMatchesFull(t, cache)
		})
	}
}

func TestBlockCacheUnknownMode(t *testing.T) {
	if _, err := NewBlockCacheMode(nil, "suffix"); err == nil || !strings.Contains(err.Error(), `"suffix"`) {
		t.Errorf("mode suffix: error %v, want one naming the mode", err)
	}
}

// blockMatchesFull runs a full step and then a block step on the same
// tokens, so that the cache is fresh, and compares the block's logits.
func blockMatchesFull(t *testing.T, cache *BlockCache) {
	t.Helper()
	ids := ir.NewTensor(ir.I64, 2, 20)
	mask := ir.NewTensor(ir.I64, 2, 20)
	for i := range ids.I64() {
		ids.I64()[i] = int64(i*37) % 250
		mask.I64()[i] = 1
	}
	mask.I64()[20] = 0 // left padding on row 1
	mask.I64()[21] = 0
	full, err := cache.Logits(ids, mask, 8, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	block, err := cache.Logits(ids, mask, 8, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	if cache.FullSteps != 1 || cache.BlockSteps != 1 {
		t.Fatalf("%d full and %d block steps, want one of each", cache.FullSteps, cache.BlockSteps)
	}
	worst := 0.0
	for i, v := range full.F32() {
		worst = math.Max(worst, math.Abs(float64(v-block.F32()[i])))
	}
	if worst > 1e-4 {
		t.Errorf("block graph differs from the full graph by %.3g with a fresh cache", worst)
	}
}

func TestBundleFoldsT2ITemperatures(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bundle")
	s := DefaultScheduleSettings()
	s.Timesteps = 6
	if _, err := Build(BuildOptions{Model: filepath.Join(goldenDir, "mmada"), Out: out, Schedules: s}); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(out, BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	vq := loadTinyVQ(t, BackendInterp)
	p, err := t2iParams(m, vq, T2IRequest{Params: sampler.T2IParams{Timesteps: 6, Temperature: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Temperatures) != 6 || p.Temperatures[5] != 0 {
		t.Errorf("folded temperatures %v, want 6 ending in 0", p.Temperatures)
	}
	p, _ = t2iParams(m, vq, T2IRequest{Params: sampler.T2IParams{Timesteps: 6, Temperature: 0.5}})
	if p.Temperatures != nil {
		t.Errorf("temperatures folded for 1.0 were used for a run at 0.5")
	}
}

// TestBlockCacheRefreshesForNewTokens runs two generations of different
// prompts but the same shapes through one cache. The second must not reuse
// the first one's keys and values: it must equal a run on a fresh cache.
func TestBlockCacheRefreshesForNewTokens(t *testing.T) {
	m, err := LoadTextModel(filepath.Join(goldenDir, "mmada"), BackendInterp)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p := sampler.TextParams{Steps: 8, GenLength: 8, BlockLength: 8, Remasking: "low_confidence", MaskID: *m.Config.MaskTokenID}
	gen := func(cache *BlockCache, prompt []int64) []int64 {
		out, err := sampler.GenerateText(context.Background(), m.Forward, sampler.TextRequest{
			Prompt: [][]int64{prompt}, Params: p, Noise: sampler.NewSeeded(0), Head: cache,
		})
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	shared := NewBlockCache(m)
	defer shared.Close()
	gen(shared, []int64{5, 6, 7, 8})
	got := gen(shared, []int64{90, 91, 92, 93})

	fresh := NewBlockCache(m)
	defer fresh.Close()
	want := gen(fresh, []int64{90, 91, 92, 93})
	if !slices.Equal(got, want) {
		t.Errorf("second generation through a used cache gave %v, a fresh cache %v", got, want)
	}
	if shared.FullSteps != 2 {
		t.Errorf("%d full steps over two one-block generations, want 2", shared.FullSteps)
	}
}
