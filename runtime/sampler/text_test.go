package sampler

import (
	"context"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

func TestNumTransferPutsRemainderFirst(t *testing.T) {
	got := NumTransfer(10, 4)
	want := []int{3, 3, 2, 2}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("NumTransfer(10, 4) = %v, want %v", got, want)
		}
	}
}

// fakeModel scores token (position*7) % vocab highest at every position,
// with a confidence that grows with the position, so the order of
// unmasking is known.
func fakeModel(vocab int) Forward {
	return func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		b, l := ids.Shape[0], ids.Shape[1]
		out := ir.NewTensor(ir.F32, b, l, int64(vocab))
		d := out.F32()
		for r := int64(0); r < b*l; r++ {
			pos := int(r % l)
			d[int(r)*vocab+(pos*7)%vocab] = float32(pos) / 4
		}
		return out, nil
	}
}

func TestParallelThresholdUnmasksManyPerStep(t *testing.T) {
	steps := 0
	p := TextParams{Steps: 8, GenLength: 8, BlockLength: 8, Remasking: "low_confidence", MaskID: 99, ParallelThreshold: 0.05}
	out, err := GenerateText(context.Background(), fakeModel(100), TextRequest{
		Prompt: [][]int64{{1, 2}}, Params: p, Noise: NewSeeded(0),
		OnStep: func(StepEvent) { steps++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range out[0][2:] {
		if tok == 99 {
			t.Fatalf("position %d is still masked: %v", i+2, out[0])
		}
	}
	if steps >= 8 {
		t.Errorf("threshold decoding took %d steps, want fewer than the 8 of exact decoding", steps)
	}
}

func TestStopAtEOSFillsTheRest(t *testing.T) {
	// Position 2*7 % 100 = 14: make every position predict token 14 by
	// using a vocabulary of 7, so token 0 is "end of text".
	p := TextParams{Steps: 4, GenLength: 8, BlockLength: 4, Remasking: "low_confidence", MaskID: 6, StopAtEOS: true, EOSIDs: []int64{0}}
	blocksSeen := map[int]bool{}
	out, err := GenerateText(context.Background(), fakeModel(7), TextRequest{
		Prompt: [][]int64{{1}}, Params: p, Noise: NewSeeded(0),
		OnStep: func(ev StepEvent) { blocksSeen[ev.Block] = true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if blocksSeen[1] {
		t.Errorf("the second block ran although the first holds end of text: %v", out[0])
	}
	for _, tok := range out[0][5:] {
		if tok != 0 {
			t.Fatalf("positions after the stop are not end of text: %v", out[0])
		}
	}
}

func TestTextParamsRejectInvalid(t *testing.T) {
	for _, tc := range []struct {
		p    TextParams
		want string
	}{
		{TextParams{Steps: 4, GenLength: 10, BlockLength: 4, Remasking: "low_confidence"}, "not a multiple of block_length"},
		{TextParams{Steps: 3, GenLength: 8, BlockLength: 4, Remasking: "low_confidence"}, "not divisible by the number of blocks"},
		{TextParams{Steps: 4, GenLength: 8, BlockLength: 4, Remasking: "top_k"}, `remasking "top_k"`},
		{TextParams{Steps: 4, GenLength: 8, BlockLength: 4, Remasking: "random", Temperature: -1}, "temperature"},
		{TextParams{Steps: 4, GenLength: 8, BlockLength: 4, Remasking: "random", ParallelThreshold: 1.5}, "parallel_threshold must be in [0, 1)"},
		{TextParams{Steps: 4, GenLength: 8, BlockLength: 4, Remasking: "random", StopAtEOS: true}, "end-of-text token ids"},
	} {
		err := tc.p.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.p, err, tc.want)
		}
	}
}

func TestReplayRejectsMismatchedDraws(t *testing.T) {
	r := &Replay{tensors: map[string]*ir.Tensor{"noise.0000": ir.FromF64([]float64{0.5, 0.5}, 2)}, order: []string{GumbelUniform}, path: "x"}
	if _, err := r.Next(RemaskUniform, []int64{2}); err == nil || !strings.Contains(err.Error(), "gumbel_uniform") {
		t.Errorf("kind mismatch not reported: %v", err)
	}
	if _, err := r.Next(GumbelUniform, []int64{3}); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("shape mismatch not reported: %v", err)
	}
}

func TestTextScheduleMatchesNumTransfer(t *testing.T) {
	p := TextParams{Steps: 12, GenLength: 64, BlockLength: 16, Remasking: "low_confidence"}
	s, err := TextSchedule(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{6, 5, 5}
	if len(s) != 3 || s[0] != want[0] || s[1] != want[1] || s[2] != want[2] {
		t.Fatalf("TextSchedule = %v, want %v", s, want)
	}
	if err := CheckSchedule(p, []int{5, 5, 6}); err == nil {
		t.Error("a schedule in the wrong order was accepted")
	}
}

func TestT2IScheduleMatchesUpstreamCounts(t *testing.T) {
	counts, temps := T2ISchedule(1024, 15, 1)
	want := []int64{1018, 1001, 973, 935, 886, 828, 760, 685, 601, 511, 416, 316, 212, 107}
	for i, w := range want {
		if counts[i] != w {
			t.Fatalf("mask counts %v, want %v then a last step that clamps to 1", counts, want)
		}
	}
	if temps[0] < 0.9333 || temps[0] > 0.9334 || temps[14] != 0 {
		t.Errorf("temperatures %v: want 0.9333 first and 0 last", temps)
	}
}

// logitsHead is a folded head over full logits: it slices the rows of
// chosen positions out of a Forward's output. With positions set it also
// implements PositionHead and records what it was requested for.
type logitsHead struct {
	fwd       Forward
	requested [][]int64
}

func (h *logitsHead) at(ids, mask *ir.Tensor, positions []int64) (*ir.Tensor, error) {
	all, err := h.fwd(ids, mask)
	if err != nil {
		return nil, err
	}
	rows, seq, vocab := all.Shape[0], all.Shape[1], all.Shape[2]
	out := ir.NewTensor(ir.F32, rows, int64(len(positions)), vocab)
	for r := int64(0); r < rows; r++ {
		for j, p := range positions {
			copy(out.F32()[(r*int64(len(positions))+int64(j))*vocab:], all.F32()[(r*seq+p)*vocab:(r*seq+p+1)*vocab])
		}
	}
	return out, nil
}

func (h *logitsHead) greedy(l *ir.Tensor) ([]int64, []float64) {
	vocab := int(l.Shape[2])
	n := l.Len() / vocab
	tokens, conf := make([]int64, n), make([]float64, n)
	for k := range n {
		row := l.F32()[k*vocab : (k+1)*vocab]
		tok := argmax32(row)
		tokens[k], conf[k] = int64(tok), softmaxProb64(row, tok)
	}
	return tokens, conf
}

func span64(lo, hi int) []int64 {
	out := make([]int64, hi-lo)
	for i := range out {
		out[i] = int64(lo + i)
	}
	return out
}

func (h *logitsHead) Greedy(ids, mask *ir.Tensor, lo, hi int, f float32) ([]int64, []float64, error) {
	l, err := h.at(ids, mask, span64(lo, hi))
	if err != nil {
		return nil, nil, err
	}
	tokens, conf := h.greedy(l)
	return tokens, conf, nil
}

func (h *logitsHead) Logits(ids, mask *ir.Tensor, lo, hi int, f float32) (*ir.Tensor, error) {
	return h.at(ids, mask, span64(lo, hi))
}

// positionHead adds PositionHead to logitsHead.
type positionHead struct{ logitsHead }

func (h *positionHead) GreedyAt(ids, mask *ir.Tensor, lo, hi int, positions []int64, f float32) ([]int64, []float64, error) {
	h.requested = append(h.requested, positions)
	l, err := h.at(ids, mask, positions)
	if err != nil {
		return nil, nil, err
	}
	tokens, conf := h.greedy(l)
	return tokens, conf, nil
}

func (h *positionHead) LogitsAt(ids, mask *ir.Tensor, lo, hi int, positions []int64, f float32) (*ir.Tensor, error) {
	h.requested = append(h.requested, positions)
	return h.at(ids, mask, positions)
}

// TestPositionHeadAsksForMaskedPositions checks that a PositionHead is
// requested for the block's masked positions only, and that greedy and
// sampled generation give the same tokens as with a head over the whole
// block.
func TestPositionHeadAsksForMaskedPositions(t *testing.T) {
	for _, temp := range []float64{0, 1} {
		p := TextParams{Steps: 8, GenLength: 8, BlockLength: 4, Remasking: "low_confidence", MaskID: 99, Temperature: temp}
		gen := func(h Head) [][]int64 {
			out, err := GenerateText(context.Background(), fakeModel(100), TextRequest{
				Prompt: [][]int64{{1, 2}, {3, 4}}, Params: p, Noise: NewSeeded(5), Head: h,
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		want := gen(&logitsHead{fwd: fakeModel(100)})
		ph := &positionHead{logitsHead{fwd: fakeModel(100)}}
		got := gen(ph)
		for b := range want {
			for i := range want[b] {
				if got[b][i] != want[b][i] {
					t.Fatalf("temperature %g: row %d is %v with positions, %v over the whole block", temp, b, got[b], want[b])
				}
			}
		}
		// Two blocks of four positions, one unmasked per step: greedy
		// decoding requests 4, 3, 2 and 1 masked positions in each block.
		if len(ph.requested) != 8 {
			t.Fatalf("temperature %g: requested %d times (%v), want once per step (8)", temp, len(ph.requested), ph.requested)
		}
		for s, positions := range ph.requested {
			// Sampling can draw the mask id itself, which leaves a
			// position masked, so only greedy decoding fixes the count.
			if temp == 0 && len(positions) != 4-s%4 {
				t.Errorf("temperature %g step %d: requested for %v, want the %d masked positions", temp, s, positions, 4-s%4)
			}
			for _, pos := range positions {
				if lo := 2 + 4*(s/4); pos < int64(lo) || pos >= int64(lo+4) {
					t.Errorf("temperature %g step %d: position %d is outside the block [%d, %d)", temp, s, pos, lo, lo+4)
				}
			}
		}
		if temp == 0 {
			// The fake model is most confident at the highest position,
			// so the block fills from its end.
			if first := ph.requested[1]; len(first) != 3 || first[2] != 4 {
				t.Errorf("second step requested for %v, want [2 3 4]", first)
			}
		}
	}
}
