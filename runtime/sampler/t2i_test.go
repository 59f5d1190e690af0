package sampler

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

// Layout of the fake model: 4 prefix tokens, soi, 8 image positions, eoi.
const (
	fakeVocab   = 40
	fakeOffset  = 20
	fakeCodes   = 16
	fakeMask    = 15
	fakePrefix  = 4
	fakeImage   = 8
	fakeLength  = fakePrefix + 1 + fakeImage + 1
	fakeImageAt = fakePrefix + 1
)

func fakeParams() T2IParams {
	return T2IParams{
		GuidanceScale: 1, Timesteps: 4, Temperature: 1, MaskID: fakeMask,
		ImageTokenOffset: fakeOffset, CodebookSize: fakeCodes, NumImageTokens: fakeImage, PrefixLength: fakePrefix,
	}
}

// fakeRequest builds a batch of one or more all-masked sequences with an
// unconditional prompt whose prefix is all 9s.
func fakeRequest(batch int) T2IRequest {
	req := T2IRequest{Params: fakeParams(), Noise: NewSeeded(7)}
	for b := 0; b < batch; b++ {
		ids := []int64{1, 2, 3, int64(4 + b), 10}
		uncond := []int64{9, 9, 9, 9, 10}
		for range fakeImage {
			ids = append(ids, fakeMask)
			uncond = append(uncond, fakeMask)
		}
		ids = append(ids, 11)
		uncond = append(uncond, 11)
		mask := slices.Repeat([]int64{1}, fakeLength)
		umask := slices.Clone(mask)
		umask[0] = 0
		req.InputIDs = append(req.InputIDs, ids)
		req.AttentionMask = append(req.AttentionMask, mask)
		req.UncondInputIDs = append(req.UncondInputIDs, uncond)
		req.UncondAttentionMask = append(req.UncondAttentionMask, umask)
	}
	return req
}

// peakedForward returns logits that put almost all mass on code condCode
// for conditional rows and on uncondCode for unconditional rows (the
// second half of a batch of 2B).
func peakedForward(batch int, condCode, uncondCode int) Forward {
	return func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		rows, length := ids.Shape[0], ids.Shape[1]
		out := ir.NewTensor(ir.F32, rows, length, fakeVocab)
		d := out.F32()
		for r := range int(rows) {
			code := condCode
			if r >= batch {
				code = uncondCode
			}
			for i := range int(length) {
				d[(r*int(length)+i)*fakeVocab+fakeOffset+code] = 30
			}
		}
		return out, nil
	}
}

func TestCosineMaskCounts(t *testing.T) {
	// The counts upstream's float32 schedule gives for 1024 tokens; the
	// last step's cos(pi/2) is slightly negative in float32 and clamps to 1.
	for _, c := range []struct {
		steps int
		want  []int
	}{
		{15, []int{1018, 1001, 973, 935, 886, 828, 760, 685, 601, 511, 416, 316, 212, 107, 1}},
		{12, []int{1015, 989, 946, 886, 812, 724, 623, 511, 391, 265, 133, 1}},
	} {
		unknown := 1024
		var got []int
		for s := range c.steps {
			k := maskLen(s, c.steps, 1024, unknown)
			got = append(got, k)
			unknown = k
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%d steps: mask counts %v, want %v", c.steps, got, c.want)
		}
	}
}

func TestMaskLenBounds(t *testing.T) {
	if got := maskLen(0, 4, 8, 3); got != 2 {
		t.Errorf("maskLen with 3 unknown = %d, want 2 (unknown - 1)", got)
	}
	if got := maskLen(3, 4, 8, 8); got != 1 {
		t.Errorf("maskLen at the last step = %d, want 1", got)
	}
	if got := maskLen(0, 4, 8, 0); got != 1 {
		t.Errorf("maskLen with nothing unknown = %d, want 1", got)
	}
}

func TestInverseCDF(t *testing.T) {
	probs := []float32{0, 0.25, 0.25, 0.5, 0}
	for _, c := range []struct {
		u    float64
		want int
	}{{0, 1}, {0.2499, 1}, {0.25, 2}, {0.5, 3}, {0.9999, 3}, {1, 3}} {
		if got := inverseCDF(probs, c.u); got != c.want {
			t.Errorf("inverseCDF(u=%g) = %d, want %d", c.u, got, c.want)
		}
	}
}

func TestSoftmax32SumsToOne(t *testing.T) {
	p := make([]float32, 5)
	softmax32(p, []float32{1, 2, 3, -1000, 88})
	sum := 0.0
	for _, v := range p {
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-6 || p[3] != 0 {
		t.Errorf("softmax %v sums to %g", p, sum)
	}
}

func TestProbsScratchReusesRows(t *testing.T) {
	var s probsScratch
	first := s.rows(2, 3, 4, nil)
	first[1][2][3] = 7
	second := s.rows(2, 3, 4, nil)
	if &second[1][2][0] != &first[1][2][0] || second[1][2][3] != 7 {
		t.Errorf("second step's rows do not reuse the first step's buffer")
	}
	data := make([]float32, 2*3*4)
	data[(1*3+2)*4+1] = 5
	over := s.rows(2, 3, 4, data)
	if over[1][2][1] != 5 || &over[0][0][0] != &data[0] {
		t.Errorf("rows over a head's output do not point into it")
	}
	if grown := s.rows(1, 5, 4, nil); len(grown) != 1 || len(grown[0]) != 5 || len(grown[0][4]) != 4 {
		t.Errorf("rows after a shape change have shape [%d][%d]", len(grown), len(grown[0]))
	}
}

func TestGenerateImageCodesGuidance(t *testing.T) {
	// Conditional rows score code 3 at 30 and code 5 at 29; unconditional
	// rows score code 3 at 30 and code 5 at 0. With g = 1 the guided
	// logits are 2*cond - uncond: 30 for code 3 and 58 for code 5, so
	// every position samples 5, which the conditional logits alone rank
	// second.
	fwd := func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		rows, length := int(ids.Shape[0]), int(ids.Shape[1])
		out := ir.NewTensor(ir.F32, int64(rows), int64(length), fakeVocab)
		d := out.F32()
		for r := range rows {
			for i := range length {
				at := (r*length+i)*fakeVocab + fakeOffset
				d[at+3] = 30
				if r < rows/2 {
					d[at+5] = 29
				}
			}
		}
		return out, nil
	}
	codes, err := GenerateImageCodes(context.Background(), fwd, fakeRequest(2))
	if err != nil {
		t.Fatal(err)
	}
	for b, row := range codes {
		if !slices.Equal(row, slices.Repeat([]int64{5}, fakeImage)) {
			t.Errorf("row %d: codes %v, want all 5", b, row)
		}
	}
}

func TestGenerateImageCodesModelInput(t *testing.T) {
	req := fakeRequest(2)
	calls := 0
	fwd := func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		calls++
		if ids.Shape[0] != 4 || mask.Shape[0] != 4 {
			t.Fatalf("model called with %v rows, want 2B = 4", ids.Shape)
		}
		d, m := ids.I64(), mask.I64()
		for b := range 2 {
			cond := d[b*fakeLength : (b+1)*fakeLength]
			uncond := d[(2+b)*fakeLength : (3+b)*fakeLength]
			if !slices.Equal(uncond[:fakePrefix], []int64{9, 9, 9, 9}) {
				t.Errorf("call %d: unconditional row %d prefix %v, want the empty caption's", calls, b, uncond[:fakePrefix])
			}
			if !slices.Equal(uncond[fakePrefix:], cond[fakePrefix:]) {
				t.Errorf("call %d: unconditional row %d image state %v differs from the conditional %v", calls, b, uncond[fakePrefix:], cond[fakePrefix:])
			}
			if m[(2+b)*fakeLength] != 0 || m[b*fakeLength] != 1 {
				t.Errorf("call %d: attention masks not passed through for row %d", calls, b)
			}
		}
		return peakedForward(2, 1, 2)(ids, mask)
	}
	var events []T2IStepEvent
	req.OnStep = func(ev T2IStepEvent) { events = append(events, ev) }
	if _, err := GenerateImageCodes(context.Background(), fwd, req); err != nil {
		t.Fatal(err)
	}
	if calls != 4 || len(events) != 4 {
		t.Fatalf("%d model calls and %d events, want 4 each", calls, len(events))
	}
	unknown := fakeImage
	for s, ev := range events {
		want := maskLen(s, 4, fakeImage, unknown)
		if s == 3 {
			want = 0
		}
		unknown = want
		if ev.Step != s || ev.Steps != 4 || ev.Masked[0] != want || ev.Masked[1] != want {
			t.Errorf("event %d: %+v, want %d masked per row", s, ev, want)
		}
	}
}

func TestGenerateImageCodesNoGuidanceSingleBatch(t *testing.T) {
	req := fakeRequest(1)
	req.Params.GuidanceScale = 0
	req.UncondInputIDs, req.UncondAttentionMask = nil, nil
	fwd := func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		if ids.Shape[0] != 1 {
			t.Fatalf("model called with %d rows, want 1 without guidance", ids.Shape[0])
		}
		return peakedForward(1, 7, 0)(ids, mask)
	}
	codes, err := GenerateImageCodes(context.Background(), fwd, req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(codes[0], slices.Repeat([]int64{7}, fakeImage)) {
		t.Errorf("codes %v, want all 7", codes[0])
	}
}

func TestGenerateImageCodesKeepsFixedCodes(t *testing.T) {
	req := fakeRequest(1)
	req.InputIDs[0][fakeImageAt+2] = fakeOffset + 11
	codes, err := GenerateImageCodes(context.Background(), peakedForward(1, 4, 0), req)
	if err != nil {
		t.Fatal(err)
	}
	if codes[0][2] != 11 {
		t.Errorf("fixed position has code %d, want 11", codes[0][2])
	}
}

func TestGenerateImageCodesSeededIsDeterministic(t *testing.T) {
	// A flat distribution makes every draw matter.
	flat := func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
		return ir.NewTensor(ir.F32, ids.Shape[0], ids.Shape[1], fakeVocab), nil
	}
	run := func() [][]int64 {
		req := fakeRequest(2)
		codes, err := GenerateImageCodes(context.Background(), flat, req)
		if err != nil {
			t.Fatal(err)
		}
		return codes
	}
	a, b := run(), run()
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("two runs with one seed differ: %v vs %v", a, b)
		}
		for _, c := range a[i] {
			if c < 0 || c >= fakeCodes {
				t.Fatalf("code %d outside the codebook", c)
			}
		}
	}
}

// orderCheck records the kinds and shapes of the draws a sampler takes.
type orderCheck struct {
	inner NoiseSource
	kinds []string
	sizes [][]int64
}

func (o *orderCheck) Next(kind string, shape []int64) (Draw, error) {
	o.kinds = append(o.kinds, kind)
	o.sizes = append(o.sizes, shape)
	return o.inner.Next(kind, shape)
}

func TestGenerateImageCodesDrawOrder(t *testing.T) {
	req := fakeRequest(2)
	rec := &orderCheck{inner: NewSeeded(1)}
	req.Noise = rec
	if _, err := GenerateImageCodes(context.Background(), peakedForward(2, 1, 1), req); err != nil {
		t.Fatal(err)
	}
	for s := range 4 {
		if rec.kinds[2*s] != CategoricalUniform || !slices.Equal(rec.sizes[2*s], []int64{2 * fakeImage}) {
			t.Errorf("draw %d: %s %v, want %s [%d]", 2*s, rec.kinds[2*s], rec.sizes[2*s], CategoricalUniform, 2*fakeImage)
		}
		if rec.kinds[2*s+1] != GumbelUniform || !slices.Equal(rec.sizes[2*s+1], []int64{2, fakeImage}) {
			t.Errorf("draw %d: %s %v, want %s [2 %d]", 2*s+1, rec.kinds[2*s+1], rec.sizes[2*s+1], GumbelUniform, fakeImage)
		}
	}
}

func TestGenerateImageCodesCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := GenerateImageCodes(ctx, peakedForward(1, 1, 1), fakeRequest(1))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestGenerateImageCodesRejects(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(r *T2IRequest)
		fwd    Forward
		reason string
	}{
		{"no timesteps", func(r *T2IRequest) { r.Params.Timesteps = 0 }, nil, "timesteps must be positive"},
		{"negative guidance", func(r *T2IRequest) { r.Params.GuidanceScale = -1 }, nil, "guidance_scale must be >= 0"},
		{"negative temperature", func(r *T2IRequest) { r.Params.Temperature = -1 }, nil, "temperature must be >= 0"},
		{"one image token", func(r *T2IRequest) { r.Params.NumImageTokens = 1 }, nil, "at least 2"},
		{"no codebook", func(r *T2IRequest) { r.Params.CodebookSize = 0 }, nil, "codebook size"},
		{"mask among codes", func(r *T2IRequest) { r.Params.MaskID = fakeOffset + 1 }, nil, "lies among the image tokens"},
		{"no rows", func(r *T2IRequest) { r.InputIDs = nil }, nil, "no input rows"},
		{"too short", func(r *T2IRequest) { r.Params.NumImageTokens = fakeLength }, nil, "too few"},
		{"ragged rows", func(r *T2IRequest) { r.InputIDs[1] = r.InputIDs[1][1:] }, nil, "row 1 has"},
		{"mask values", func(r *T2IRequest) { r.AttentionMask[0][0] = 2 }, nil, "want 0 (padding) or 1"},
		{"mask rows", func(r *T2IRequest) { r.AttentionMask = r.AttentionMask[:1] }, nil, "attention_mask has 1 rows"},
		{"text token in image", func(r *T2IRequest) { r.InputIDs[0][fakeImageAt] = 3 }, nil, "neither the mask id"},
		{"mask in prefix", func(r *T2IRequest) { r.Params.NumImageTokens = fakeImage - 2 }, nil, "contains the mask id at index 5, before the 6 image positions"},
		{"mask at the end", func(r *T2IRequest) { r.InputIDs[1][fakeLength-1] = fakeMask }, nil, "ends with the mask id"},
		{"guidance without uncond", func(r *T2IRequest) { r.UncondInputIDs = nil }, nil, "needs the unconditional prompt"},
		{"prefix overlaps image", func(r *T2IRequest) { r.Params.PrefixLength = fakeImageAt + 1 }, nil, "overlaps the image positions"},
		{"uncond rows", func(r *T2IRequest) { r.UncondInputIDs = r.UncondInputIDs[:1] }, nil, "uncond input_ids has 1 rows"},
		{"no noise", func(r *T2IRequest) { r.Noise = nil }, nil, "no noise source"},
		{"small vocabulary", nil, func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
			return ir.NewTensor(ir.F32, ids.Shape[0], ids.Shape[1], fakeOffset+fakeCodes-1), nil
		}, "ends before the image tokens"},
		{"wrong logits shape", nil, func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
			return ir.NewTensor(ir.F32, 1, ids.Shape[1], fakeVocab), nil
		}, "want f32 [4"},
		{"model error", nil, func(ids, mask *ir.Tensor) (*ir.Tensor, error) {
			return nil, errors.New("boom")
		}, "t2i step 0: boom"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := fakeRequest(2)
			if c.edit != nil {
				c.edit(&req)
			}
			fwd := c.fwd
			if fwd == nil {
				fwd = peakedForward(2, 1, 1)
			}
			_, err := GenerateImageCodes(context.Background(), fwd, req)
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %v, want one containing %q", err, c.reason)
			}
		})
	}
}

// wavyForward scores every code of every position differently, so that
// sampling and re-masking depend on the probabilities of each position.
func wavyForward(ids, mask *ir.Tensor) (*ir.Tensor, error) {
	rows, length := ids.Shape[0], ids.Shape[1]
	out := ir.NewTensor(ir.F32, rows, length, fakeVocab)
	for k := range out.F32() {
		out.F32()[k] = float32(math.Sin(float64(k)*0.37)) * 3
	}
	return out, nil
}

// probsHeads folds the t2i head over a Forward on the host, as the graph
// does: guided logits of the codebook columns, then softmax32.
type probsHeads struct {
	fwd       Forward
	requested [][]int64
}

func (h *probsHeads) at(ids, mask *ir.Tensor, positions []int64, col int64, k int, g float64) (*ir.Tensor, error) {
	all, err := h.fwd(ids, mask)
	if err != nil {
		return nil, err
	}
	rows, length, vocab := int(all.Shape[0]), int(all.Shape[1]), int(all.Shape[2])
	batch := rows
	if g > 0 {
		batch = rows / 2
	}
	out := ir.NewTensor(ir.F32, int64(batch), int64(len(positions)), int64(k))
	row := make([]float32, k)
	for b := range batch {
		for j, p := range positions {
			at := func(r int) []float32 {
				off := (r*length+int(p))*vocab + int(col)
				return all.F32()[off : off+k]
			}
			cond := at(b)
			copy(row, cond)
			if g > 0 {
				uncond := at(batch + b)
				for c := range row {
					row[c] = float32(float32(1+g)*cond[c]) - float32(float32(g)*uncond[c])
				}
			}
			softmax32(out.F32()[(b*len(positions)+j)*k:(b*len(positions)+j+1)*k], row)
		}
	}
	return out, nil
}

func (h *probsHeads) Probs(ids, mask *ir.Tensor, first, n int, col int64, k int, g float64) (*ir.Tensor, error) {
	return h.at(ids, mask, span64(first, first+n), col, k, g)
}

// probsPositionHeads adds ProbsPositionHead to probsHeads.
type probsPositionHeads struct{ probsHeads }

func (h *probsPositionHeads) ProbsAt(ids, mask *ir.Tensor, positions []int64, col int64, k int, g float64) (*ir.Tensor, error) {
	h.requested = append(h.requested, positions)
	return h.at(ids, mask, positions, col, k, g)
}

// TestProbsPositionHeadAsksForMaskedPositions checks that a position head
// is requested for the masked image positions only, after the first step, and
// that the codes equal those of a head over every image position.
func TestProbsPositionHeadAsksForMaskedPositions(t *testing.T) {
	gen := func(h ProbsHead) [][]int64 {
		req := fakeRequest(2)
		req.Head = h
		codes, err := GenerateImageCodes(context.Background(), wavyForward, req)
		if err != nil {
			t.Fatal(err)
		}
		return codes
	}
	want := gen(&probsHeads{fwd: wavyForward})
	ph := &probsPositionHeads{probsHeads{fwd: wavyForward}}
	got := gen(ph)
	for b := range want {
		if !slices.Equal(got[b], want[b]) {
			t.Errorf("row %d: codes %v with positions, %v over every image position", b, got[b], want[b])
		}
	}
	// The first step has every position masked and runs the whole image;
	// the later ones ask for fewer positions, all inside the image.
	if len(ph.requested) == 0 || len(ph.requested) > fakeParams().Timesteps-1 {
		t.Fatalf("requested %d times (%v), want once for each later step with some code fixed", len(ph.requested), ph.requested)
	}
	for s, positions := range ph.requested {
		if len(positions) == 0 || len(positions) >= fakeImage {
			t.Errorf("call %d requested for %v, want some but not all of the %d image positions", s, positions, fakeImage)
		}
		for _, p := range positions {
			if p < fakeImageAt || p >= fakeImageAt+fakeImage {
				t.Errorf("call %d: position %d is outside the image [%d, %d)", s, p, fakeImageAt, fakeImageAt+fakeImage)
			}
		}
	}
}
