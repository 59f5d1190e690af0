package bench

import (
	"context"
	"runtime"
	"testing"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// The allocation benchmarks run the Go sampler loops around fake models
// that return preallocated outputs, so that the numbers count the Go
// loop's own allocations, not the backend's. The shapes are the mid-size
// text scenario's: prompt 64, gen 256, block 32, vocabulary 32768.
const (
	allocVocab  = 32768
	allocPrompt = 64
	allocGen    = 256
	allocBlock  = 32
	allocMask   = 31000
)

// fakeHead is a folded greedy head that returns the same preallocated
// tokens and confidences every step.
type fakeHead struct {
	tokens []int64
	conf   []float64
}

func newFakeHead(rows int) *fakeHead {
	h := &fakeHead{tokens: make([]int64, rows*allocBlock), conf: make([]float64, rows*allocBlock)}
	for i := range h.tokens {
		h.tokens[i] = int64(i % 1000)
		h.conf[i] = float64(i%allocBlock) / allocBlock
	}
	return h
}

func (h *fakeHead) Greedy(ids, mask *ir.Tensor, lo, hi int, factor float32) ([]int64, []float64, error) {
	return h.tokens, h.conf, nil
}

func (h *fakeHead) Logits(ids, mask *ir.Tensor, lo, hi int, factor float32) (*ir.Tensor, error) {
	panic("the allocation benchmark runs greedy decoding only")
}

// fakeLogits returns the same preallocated logits every call.
func fakeLogits(rows, seq int) sampler.Forward {
	t := ir.NewTensor(ir.F32, int64(rows), int64(seq), allocVocab)
	d := t.F32()
	for i := range d {
		d[i] = float32(i%977) / 977
	}
	return func(ids, mask *ir.Tensor) (*ir.Tensor, error) { return t, nil }
}

// measureSteps runs gen once and reports the Go heap allocations per
// sampler step.
func measureSteps(b *testing.B, gen func(onStep func()) error) {
	b.Helper()
	steps := 0
	if err := gen(func() { steps++ }); err != nil { // warm-up
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	steps = 0
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := gen(func() { steps++ }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(steps), "B/step")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(steps), "allocs/step")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/step")
}

func textGen(fwd sampler.Forward, head sampler.Head, cfg float64) func(onStep func()) error {
	prompt := make([]int64, allocPrompt)
	for i := range prompt {
		prompt[i] = int64(i * 37 % 30000)
	}
	p := sampler.TextParams{Steps: allocGen / 8, GenLength: allocGen, BlockLength: allocBlock,
		Remasking: "low_confidence", MaskID: allocMask, CFGScale: cfg}
	return func(onStep func()) error {
		_, err := sampler.GenerateText(context.Background(), fwd, sampler.TextRequest{
			Prompt: [][]int64{prompt}, Params: p, Noise: sampler.NewSeeded(1), Head: head,
			OnStep: func(sampler.StepEvent) { onStep() },
		})
		return err
	}
}

// BenchmarkSamplerStepAllocs reports the Go loop's heap allocation per
// step (B/step, allocs/step) of the text sampler with the folded greedy
// head, with full logits, with full logits and guidance, and of the t2i
// sampler (1024 image tokens, guidance, full logits).
func BenchmarkSamplerStepAllocs(b *testing.B) {
	seq := allocPrompt + allocGen
	b.Run("text/folded-head", func(b *testing.B) {
		measureSteps(b, textGen(nil, newFakeHead(1), 0))
	})
	b.Run("text/full-logits", func(b *testing.B) {
		measureSteps(b, textGen(fakeLogits(1, seq), nil, 0))
	})
	b.Run("text/full-logits-cfg", func(b *testing.B) {
		measureSteps(b, textGen(fakeLogits(2, seq), nil, 1.5))
	})
	b.Run("t2i/full-logits-cfg", func(b *testing.B) {
		measureSteps(b, t2iGen(3))
	})
}

// t2iGen returns a t2i generation of 1024 image tokens with guidance on
// fake full logits, running the given number of steps.
func t2iGen(steps int) func(onStep func()) error {
	const image, prefix = 1024, 67
	length := prefix + image + 2
	row := make([]int64, length)
	for i := range row {
		row[i] = int64(i % 30000)
	}
	for i := prefix + 1; i < prefix+1+image; i++ {
		row[i] = allocMask
	}
	p := sampler.T2IParams{GuidanceScale: 3.5, Timesteps: steps, Temperature: 1, MaskID: allocMask,
		ImageTokenOffset: 31744, CodebookSize: 1024, NumImageTokens: image, PrefixLength: prefix}
	fwd := fakeLogits(2, length)
	return func(onStep func()) error {
		_, err := sampler.GenerateImageCodes(context.Background(), fwd, sampler.T2IRequest{
			InputIDs: [][]int64{row}, UncondInputIDs: [][]int64{row}, Params: p, Noise: sampler.NewSeeded(1),
			OnStep: func(sampler.T2IStepEvent) { onStep() },
		})
		return err
	}
}

// TestT2IStepAllocatesLittle compares t2i runs of 2 and 6 steps, so that
// buffers allocated once per run cancel out. Each further step must not
// allocate the probability rows again (1024 positions × 1024 codes × 4
// bytes = 4 MB); its inputs and code lists stay well below that.
func TestT2IStepAllocatesLittle(t *testing.T) {
	total := func(steps int) uint64 {
		gen := t2iGen(steps)
		if err := gen(func() {}); err != nil { // warm-up
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := gen(func() {}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	short, long := total(2), total(6)
	perStep := (float64(long) - float64(short)) / 4
	t.Logf("t2i: %.0f bytes per further step", perStep)
	if limit := float64(256 << 10); perStep > limit {
		t.Errorf("each t2i step allocates %.0f bytes in the Go loop, want at most %.0f (no per-position probability rows)", perStep, limit)
	}
}

// TestFoldedHeadStepAllocatesLittle checks that a text step with the
// folded head allocates no buffer of vocabulary size in the Go loop: the
// step's inputs (ids and mask, 2 × 320 × 8 bytes) and bookkeeping stay
// far below one logits row of the 32768-token vocabulary per position.
func TestFoldedHeadStepAllocatesLittle(t *testing.T) {
	gen := textGen(nil, newFakeHead(1), 0)
	steps := 0
	allocs := testing.AllocsPerRun(2, func() {
		if err := gen(func() { steps++ }); err != nil {
			t.Fatal(err)
		}
	})
	var before, after runtime.MemStats
	steps = 0
	runtime.ReadMemStats(&before)
	if err := gen(func() { steps++ }); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	perStep := float64(after.TotalAlloc-before.TotalAlloc) / float64(steps)
	t.Logf("folded head: %.0f bytes and %.1f allocations per step", perStep, allocs/float64(steps))
	if limit := float64(64 << 10); perStep > limit {
		t.Errorf("a folded-head step allocates %.0f bytes in the Go loop, want at most %.0f (no vocabulary-sized buffers)", perStep, limit)
	}
}
