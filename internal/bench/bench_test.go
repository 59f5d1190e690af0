package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/internal/engine"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/sampler"
)

// tinyDir is a copy of the upstream-tiny MMaDA checkpoint: d_model 64, 2
// layers, vocabulary 320, image codes 256..319, mask 250, eos 241.
const tinyDir = "../../testdata/upstream-tiny/mmada"

func loadTiny(t testing.TB, backend string) *engine.TextModel {
	t.Helper()
	m, err := engine.LoadTextModel(tinyDir, backend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func tinyTarget(t testing.TB, m *engine.TextModel, head string) Target {
	t.Helper()
	g, err := StepGraph(m.Config, m.Weights(), passes.Options{}, head, false)
	if err != nil {
		t.Fatal(err)
	}
	return Target{Name: "tiny", Backend: m.Backend, Pipeline: "default", Model: m, Config: m.Config, FLOPs: GraphFLOPs(g), Threads: 1}
}

func TestPercentileNearestRank(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	if got := percentile(values, 0.5); got != 5 {
		t.Errorf("median of 1..10 = %g, want 5 (lower middle)", got)
	}
	if got := percentile(values, 0.9); got != 9 {
		t.Errorf("p90 of 1..10 = %g, want 9", got)
	}
	if got := percentile([]float64{7}, 0.9); got != 7 {
		t.Errorf("p90 of one value = %g, want 7", got)
	}
	if got := percentile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("median of nothing = %g, want NaN", got)
	}
	if values[0] != 5 {
		t.Error("percentile sorted its argument in place")
	}
}

func TestScenarioValidateRejects(t *testing.T) {
	cfg, err := frontend.LoadLLaDAConfig(tinyDir + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := DefaultScenario(KindText)
	t2i, _ := DefaultScenario(KindT2I)
	fwd, _ := DefaultScenario(KindForward)
	mmu, _ := DefaultScenario(KindMMU)
	cases := []struct {
		name string
		edit func() Scenario
		want string
	}{
		{"zero batch", func() Scenario { s := text; s.Batch = 0; return s }, "batch must be positive"},
		{"zero prompt", func() Scenario { s := text; s.PromptLength = 0; return s }, "prompt length must be positive"},
		{"steps not divisible", func() Scenario { s := text; s.Text.Steps = 7; return s }, "not divisible"},
		{"too long", func() Scenario { s := text; s.PromptLength = 5000; return s }, "max_sequence_length"},
		{"mmu without image", func() Scenario { s := mmu; s.ImageTokens = 0; return s }, "image tokens"},
		{"t2i zero steps", func() Scenario { s := t2i; s.T2ISteps = 0; return s }, "t2i steps must be positive"},
		{"t2i one token", func() Scenario { s := t2i; s.ImageTokens = 1; return s }, "at least 2 image tokens"},
		{"forward zero runs", func() Scenario { s := fwd; s.ForwardRuns = 0; return s }, "forward runs must be positive"},
		{"unknown kind", func() Scenario { s := text; s.Kind = "video"; return s }, `unknown scenario "video"`},
	}
	for _, c := range cases {
		err := c.edit().Validate(cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := DefaultScenario("video"); err == nil {
		t.Error("DefaultScenario accepted an unknown kind")
	}
}

func TestRunTextOnTinyModel(t *testing.T) {
	m := loadTiny(t, engine.BackendInterp)
	s, _ := DefaultScenario(KindText)
	s.PromptLength, s.Text.GenLength, s.Text.BlockLength, s.Text.Steps = 12, 16, 8, 8
	r, err := Run(context.Background(), tinyTarget(t, m, passes.HeadGreedy), s, 100)
	if err != nil {
		t.Fatal(err)
	}
	if r.Steps != 8 || len(r.Unmasked) != 8 {
		t.Fatalf("%d steps and %d unmasked counts, want 8 each", r.Steps, len(r.Unmasked))
	}
	total := 0
	for _, n := range r.Unmasked {
		total += n
	}
	if total != 16 {
		t.Errorf("steps unmasked %d tokens in all, want gen length 16", total)
	}
	// The head returns a token and a confidence (16 bytes) for each masked
	// position of the block: 8, 6, 4 and 2 over a block's four steps.
	if !r.HeadFolding || r.BytesToGoPerStep != 5*16 {
		t.Errorf("head folding %v, %d bytes to Go per step; want the greedy head's 5 tokens and confidences on average (80 bytes)", r.HeadFolding, r.BytesToGoPerStep)
	}
	if r.FLOPsPerStep <= 0 || r.GFLOPS <= 0 || r.PeakFraction != r.GFLOPS/100 {
		t.Errorf("FLOPs %d, GFLOP/s %g, peak fraction %g: want positive values against the peak of 100", r.FLOPsPerStep, r.GFLOPS, r.PeakFraction)
	}
	if r.MedianMS <= 0 || r.P90MS < r.MedianMS || r.TokensPerSecond <= 0 {
		t.Errorf("median %g ms, p90 %g ms, %g tokens/s", r.MedianMS, r.P90MS, r.TokensPerSecond)
	}
	if len(r.Output) != 1 || len(r.Output[0]) != 28 {
		t.Errorf("output %v, want one row of prompt 12 + gen 16", r.Output)
	}
}

func TestRunT2IAndForwardOnTinyModel(t *testing.T) {
	m := loadTiny(t, engine.BackendInterp)
	tg := tinyTarget(t, m, "")
	s, _ := DefaultScenario(KindT2I)
	s.PromptLength, s.ImageTokens, s.T2ISteps = 4, 16, 4
	r, err := Run(context.Background(), tg, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Steps != 4 || r.Tokens != 16 {
		t.Errorf("t2i: %d steps and %d tokens, want 4 and 16", r.Steps, r.Tokens)
	}
	sum := 0
	for _, n := range r.Unmasked {
		sum += n
	}
	if sum != 16 {
		t.Errorf("t2i steps unmasked %d positions in all, want all 16", sum)
	}
	// The folded head returns the softmax over the 64 codes of the image
	// positions still masked at each step, of the one conditional row:
	// all 16 at the first step, then those the last step left masked.
	// Full logits would be 2 rows (guidance) of 4+3+16+2 positions over
	// the vocabulary of 320.
	masked, total := 16, int64(0)
	for _, n := range r.Unmasked {
		total += int64(masked * 64 * 4)
		masked -= n
	}
	if want := total / int64(r.Steps); r.BytesToGoPerStep != want {
		t.Errorf("t2i moved %d bytes to Go per step, want the folded head's %d for the masked positions (full logits: %d)", r.BytesToGoPerStep, want, 2*25*320*4)
	}

	f, _ := DefaultScenario(KindForward)
	f.PromptLength, f.ForwardRuns = 20, 3
	r, err = Run(context.Background(), tg, f, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Steps != 3 || r.Tokens != 60 || r.PeakFraction != 0 {
		t.Errorf("forward: %d steps, %d tokens, peak fraction %g; want 3, 60 and 0 without a peak", r.Steps, r.Tokens, r.PeakFraction)
	}
}

func TestRunRejectsIncompleteTarget(t *testing.T) {
	s, _ := DefaultScenario(KindText)
	if _, err := Run(context.Background(), Target{Name: "empty"}, s, 0); err == nil {
		t.Error("Run accepted a target without a model")
	}
}

func TestModesAgainstExact(t *testing.T) {
	m := loadTiny(t, engine.BackendInterp)
	tg := tinyTarget(t, m, passes.HeadGreedy)
	s, _ := DefaultScenario(KindText)
	s.PromptLength, s.Text.GenLength, s.Text.BlockLength, s.Text.Steps = 12, 16, 8, 16
	exact, err := Run(context.Background(), tg, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Text.ParallelThreshold = 0.05
	fast, err := Run(context.Background(), tg, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fast.Mode != "threshold 0.05" {
		t.Errorf("mode %q, want threshold 0.05", fast.Mode)
	}
	a, err := Compare(fast, exact)
	if err != nil {
		t.Fatal(err)
	}
	if a.Positions != 16 || a.Fraction < 0 || a.Fraction > 1 || a.ExactSteps != 16 || a.Steps > 16 {
		t.Errorf("agreement %+v: want 16 positions, a fraction in [0, 1] and at most 16 steps", a)
	}
	same, err := Compare(exact, exact)
	if err != nil || same.Fraction != 1 {
		t.Errorf("exact against itself: %+v, %v; want fraction 1", same, err)
	}
	short := &Result{Output: [][]int64{{1, 2}}, PromptLength: 1}
	if _, err := Compare(short, exact); err == nil {
		t.Error("Compare accepted sequences of different lengths")
	}
	if _, err := Compare(&Result{}, exact); err == nil {
		t.Error("Compare accepted different row counts")
	}
}

func TestCompareGoldenCases(t *testing.T) {
	m := loadTiny(t, engine.BackendInterp)
	mode := sampler.TextParams{ParallelThreshold: 0.5, StopAtEOS: true}
	got, err := CompareCases(context.Background(), m, m, m.Config, "../../testdata/upstream-tiny/cases.json", mode)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("%d cases compared, want the 7 text and mmu cases", len(got))
	}
	for _, c := range got {
		if !c.ExactMatchesGolden {
			t.Errorf("case %s: exact decoding does not reproduce the golden ids", c.Name)
		}
		// Threshold decoding ignores Steps and unmasks at least one token a
		// step, so it may take more steps than an exact schedule that
		// unmasks several, but never more than one per generated token.
		if c.Positions == 0 || c.Steps == 0 || c.Steps > c.Positions {
			t.Errorf("case %s: %d positions, %d steps against %d exact", c.Name, c.Positions, c.Steps, c.ExactSteps)
		}
	}
	if _, err := CompareCases(context.Background(), m, m, m.Config, "testdata/missing.json", mode); err == nil {
		t.Error("CompareCases accepted a missing file")
	}
}

func TestCaseParamsRejects(t *testing.T) {
	base := goldenCase{PromptIDs: [][]int64{{1, 2}}, MaskID: 250, Params: map[string]any{
		"steps": 4.0, "gen_length": 8.0, "block_length": 8.0, "temperature": 0.0, "cfg_scale": 0.0}}
	if _, err := caseParams(base); err != nil {
		t.Fatalf("valid case rejected: %v", err)
	}
	noPrompt := base
	noPrompt.PromptIDs = nil
	if _, err := caseParams(noPrompt); err == nil || !strings.Contains(err.Error(), "prompt_ids") {
		t.Errorf("case without prompt: %v", err)
	}
	missing := base
	missing.Params = map[string]any{"steps": 4.0}
	if _, err := caseParams(missing); err == nil || !strings.Contains(err.Error(), "params.") {
		t.Errorf("case without gen_length: %v", err)
	}
	bad := base
	bad.Params = map[string]any{"steps": 3.0, "gen_length": 8.0, "block_length": 4.0, "temperature": 0.0, "cfg_scale": 0.0}
	if _, err := caseParams(bad); err == nil {
		t.Error("case with steps not divisible by the blocks accepted")
	}
}

func TestWritePlotIsSVG(t *testing.T) {
	r := &Result{Name: "a<b", Mode: "exact", StepMS: []float64{10, 12, 9.5}, Unmasked: []int{1, 2, 1}}
	r.Scenario.Kind = KindText
	var buf bytes.Buffer
	if err := WritePlot(&buf, []*Result{r, {Name: "empty"}}); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&buf)
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("plot is not well-formed XML: %v", err)
		}
	}
	if err := WritePlot(io.Discard, []*Result{{Name: "empty"}}); err == nil {
		t.Error("WritePlot drew results without steps")
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 7: 10, 12: 20, 180: 200, 500: 500} {
		if got := niceCeil(in); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceCeil(%g) = %g, want %g", in, got, want)
		}
	}
}

func TestCalibratePeakInterp(t *testing.T) {
	open := func(g *ir.Graph) (Session, error) {
		s, _, err := engine.OpenSession(g, engine.BackendInterp)
		return s, err
	}
	p, err := CalibratePeak("interp", open, []MatMulShape{{16, 32, 8}, {64, 64, 64}}, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Shapes) != 2 || p.GFLOPS <= 0 || p.GFLOPS != max(p.Shapes[0].GFLOPS, p.Shapes[1].GFLOPS) {
		t.Errorf("peak %+v: want the best of two positive rates", p)
	}
	for _, s := range p.Shapes {
		if s.Runs < 3 {
			t.Errorf("shape %+v timed %d runs, want at least 3", s.Shape, s.Runs)
		}
	}
	if _, err := CalibratePeak("interp", open, []MatMulShape{{0, 4, 4}}, time.Millisecond); err == nil {
		t.Error("CalibratePeak accepted a zero dimension")
	}
}

func TestWriteTableShowsAgreement(t *testing.T) {
	r := &Result{Name: "x", Mode: "threshold 0.9", Steps: 2, StepMS: []float64{1, 2},
		Agreement: &Agreement{SpeedUp: 2, Steps: 2, ExactSteps: 4, Fraction: 0.5, Equal: 1, Positions: 2}}
	r.Scenario.Kind = KindText
	var buf bytes.Buffer
	if err := WriteTable(&buf, []*Result{r}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "speed-up 2.00x") || !strings.Contains(buf.String(), "50.0% of generated positions equal") {
		t.Errorf("table lacks the agreement line:\n%s", buf.String())
	}
}
