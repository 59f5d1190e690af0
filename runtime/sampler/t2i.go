package sampler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/mmadac/mmadac/ir"
)

// T2IParams are the settings of MaskGIT-style text-to-image decoding, as
// upstream's t2i_generate takes them, plus the token layout of the model.
type T2IParams struct {
	// GuidanceScale g combines the logits as (1+g)*cond - g*uncond; 0
	// runs the conditional branch only.
	GuidanceScale float64
	// Timesteps is the number of model calls.
	Timesteps int
	// Temperature scales the Gumbel noise of the re-masking step; it is
	// multiplied by (1 - r) after every step, cumulatively.
	Temperature float64
	// MaskID is the token id of a masked image position.
	MaskID int64
	// ImageTokenOffset is the token id of image code 0; code c is token
	// ImageTokenOffset + c.
	ImageTokenOffset int64
	// CodebookSize is the number of image codes.
	CodebookSize int
	// NumImageTokens N is the number of image positions: the N positions
	// before the last one of every sequence.
	NumImageTokens int
	// PrefixLength P is the length of the text prefix: with guidance the
	// unconditional rows take their first P tokens from the
	// unconditional prompt and the rest from the current sequence.
	PrefixLength int
	// Temperatures, when set, is the folded temperature after each step
	// (T2ISchedule); it must match Temperature and Timesteps.
	Temperatures []float64
}

// Validate checks the parameters on their own; GenerateImageCodes also
// checks them against the request.
func (p T2IParams) Validate() error {
	switch {
	case p.Timesteps <= 0:
		return fmt.Errorf("timesteps must be positive, got %d", p.Timesteps)
	case p.GuidanceScale < 0 || math.IsNaN(p.GuidanceScale):
		return fmt.Errorf("guidance_scale must be >= 0, got %g", p.GuidanceScale)
	case p.Temperature < 0 || math.IsNaN(p.Temperature):
		return fmt.Errorf("temperature must be >= 0, got %g", p.Temperature)
	case p.CodebookSize <= 0:
		return fmt.Errorf("codebook size must be positive, got %d", p.CodebookSize)
	case p.NumImageTokens < 2:
		// The re-masking keeps at least one position and re-masks at
		// least one, so it needs two.
		return fmt.Errorf("number of image tokens must be at least 2, got %d", p.NumImageTokens)
	case p.ImageTokenOffset < 0:
		return fmt.Errorf("image token offset must not be negative, got %d", p.ImageTokenOffset)
	case p.MaskID >= p.ImageTokenOffset && p.MaskID < p.ImageTokenOffset+int64(p.CodebookSize):
		return fmt.Errorf("mask id %d lies among the image tokens [%d, %d)", p.MaskID, p.ImageTokenOffset, p.ImageTokenOffset+int64(p.CodebookSize))
	case p.GuidanceScale > 0 && p.PrefixLength <= 0:
		return fmt.Errorf("prefix length must be positive with guidance, got %d", p.PrefixLength)
	}
	return nil
}

// T2IStepEvent reports one finished step of text-to-image decoding.
type T2IStepEvent struct {
	// Step counts from 0 to Steps-1.
	Step, Steps int
	// Masked is, per row, the number of image positions masked for the
	// next step. It is 0 after the last step, whose sampled codes are the
	// result.
	Masked []int
	// Elapsed is the time since decoding started.
	Elapsed time.Duration
}

// T2IRequest is one text-to-image decoding of a batch of prompts.
type T2IRequest struct {
	// InputIDs contains one full sequence per row: text prefix, image
	// positions (MaskID or an image token) and the token after them. All
	// rows have one length.
	InputIDs [][]int64
	// AttentionMask has the shape of InputIDs, 0 on padding; nil means
	// no padding.
	AttentionMask [][]int64
	// UncondInputIDs and UncondAttentionMask are the same layout built
	// from an empty caption, with its own padding. They are required when
	// GuidanceScale > 0; only their first PrefixLength tokens are used.
	UncondInputIDs      [][]int64
	UncondAttentionMask [][]int64
	Params              T2IParams
	// Noise supplies the uniforms: per step one CategoricalUniform draw
	// f64 [B*N] for the categorical samples, then one GumbelUniform draw
	// f32 [B, N] for the re-masking.
	Noise NoiseSource
	// OnStep, when set, is called after every step.
	OnStep func(T2IStepEvent)
	// Head, when set, computes the probabilities in the model graph (the
	// folded sampling head) instead of returning full logits.
	Head ProbsHead
}

// ProbsHead runs the model with the t2i sampling head folded in: the
// logits of positions [first, first+n) and vocabulary columns [col,
// col+k), guidance (1+g)·cond − g·uncond when ids carry unconditional rows
// after the conditional ones, then the softmax. It returns f32 [batch, n, k].
type ProbsHead interface {
	Probs(ids, mask *ir.Tensor, first, n int, col int64, k int, guidance float64) (*ir.Tensor, error)
}

// ProbsPositionHead is a ProbsHead that can also compute chosen image
// positions only (absolute sequence positions), returning [rows,
// len(positions), k]. A step reads the probabilities of masked positions
// only, so the sampler requests those, fewer as the image fills in.
type ProbsPositionHead interface {
	ProbsHead
	ProbsAt(ids, mask *ir.Tensor, positions []int64, col int64, k int, guidance float64) (*ir.Tensor, error)
}

// fixedConfidence is the confidence of a position whose code is already
// known. Upstream uses the largest finite value of the logits' dtype:
// float32 in the fp32 reference model and here, where every backend
// returns f32 logits, and bfloat16 in the bf16 MMaDA-8B. Either log
// (88.723 and 88.719) outranks every masked position, whose score is at
// most 0 + 16.7*temp, unless the temperature is far above 1.
const fixedConfidence = math.MaxFloat32

// GenerateImageCodes runs upstream's t2i_generate: every step calls the
// model (with guidance, on the conditional and unconditional rows as one
// batch of 2B), samples a code for every image position from the softmax
// over the codebook columns, keeps the codes already fixed, and re-masks
// the least confident positions on the cosine schedule. It returns the
// codes of the last step, [B][N], each in [0, CodebookSize).
func GenerateImageCodes(ctx context.Context, fwd Forward, req T2IRequest) ([][]int64, error) {
	p := req.Params
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkT2IRequest(req); err != nil {
		return nil, err
	}
	if req.Noise == nil {
		return nil, errors.New("t2i request has no noise source; pass sampler.NewSeeded(seed) or a Replay")
	}
	batch, length, n := len(req.InputIDs), len(req.InputIDs[0]), p.NumImageTokens
	first := length - n - 1 // index of image position 0

	ids := make([][]int64, batch)
	cur := make([][]int64, batch) // codes, or MaskID where masked
	for b, row := range req.InputIDs {
		ids[b] = slices.Clone(row)
		cur[b] = make([]int64, n)
		for i, t := range row[first : first+n] {
			if t == p.MaskID {
				cur[b][i] = p.MaskID
			} else {
				cur[b][i] = t - p.ImageTokenOffset
			}
		}
	}

	start := time.Now()
	temp := p.Temperature
	var sampled [][]int64
	var scratch probsScratch
	for step := 0; step < p.Timesteps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		probs, err := t2iProbs(fwd, ids, cur, req, &scratch)
		if err != nil {
			return nil, fmt.Errorf("t2i step %d: %w", step, err)
		}
		if sampled, err = sampleCodes(probs, cur, p, req.Noise); err != nil {
			return nil, fmt.Errorf("t2i step %d: %w", step, err)
		}

		ratio := float64(step+1) / float64(p.Timesteps)
		temp *= 1 - ratio
		if p.Temperatures != nil {
			temp = p.Temperatures[step]
		}
		remask, err := remaskPositions(probs, sampled, cur, step, temp, p, req.Noise)
		if err != nil {
			return nil, fmt.Errorf("t2i step %d: %w", step, err)
		}

		ev := T2IStepEvent{Step: step, Steps: p.Timesteps, Masked: make([]int, batch)}
		for b := range ids {
			for i := range n {
				if remask[b][i] {
					cur[b][i] = p.MaskID
					ids[b][first+i] = p.MaskID
					ev.Masked[b]++
				} else {
					cur[b][i] = sampled[b][i]
					ids[b][first+i] = sampled[b][i] + p.ImageTokenOffset
				}
			}
			if step == p.Timesteps-1 {
				ev.Masked[b] = 0
			}
		}
		ev.Elapsed = time.Since(start)
		slog.Debug("t2i step", "step", step+1, "steps", p.Timesteps, "masked", ev.Masked, "elapsed", ev.Elapsed)
		if req.OnStep != nil {
			req.OnStep(ev)
		}
	}
	return sampled, nil
}

// checkT2IRequest checks the shapes and token values of a request.
func checkT2IRequest(req T2IRequest) error {
	p := req.Params
	batch := len(req.InputIDs)
	if batch == 0 {
		return errors.New("t2i request has no input rows")
	}
	length := len(req.InputIDs[0])
	if length < p.NumImageTokens+1 {
		return fmt.Errorf("input rows have %d tokens, too few for %d image positions and the token after them", length, p.NumImageTokens)
	}
	if err := checkRows("input_ids", req.InputIDs, batch, length); err != nil {
		return err
	}
	if req.AttentionMask != nil {
		if err := checkMaskRows("attention_mask", req.AttentionMask, batch, length); err != nil {
			return err
		}
	}
	first := length - p.NumImageTokens - 1
	for b, row := range req.InputIDs {
		// A mask token outside the image positions means that N does not
		// fit the prompt's layout.
		if i := slices.Index(row[:first], p.MaskID); i >= 0 {
			return fmt.Errorf("input_ids row %d contains the mask id at index %d, before the %d image positions (indices %d to %d); the number of image tokens does not match the prompt",
				b, i, p.NumImageTokens, first, first+p.NumImageTokens-1)
		}
		if row[length-1] == p.MaskID {
			return fmt.Errorf("input_ids row %d ends with the mask id; the last token must follow the image positions (<|eoi|>)", b)
		}
		for i, t := range row[first : first+p.NumImageTokens] {
			if t != p.MaskID && (t < p.ImageTokenOffset || t >= p.ImageTokenOffset+int64(p.CodebookSize)) {
				return fmt.Errorf("input_ids row %d image position %d (index %d) is %d, which is neither the mask id %d nor an image token in [%d, %d)",
					b, i, first+i, t, p.MaskID, p.ImageTokenOffset, p.ImageTokenOffset+int64(p.CodebookSize))
			}
		}
	}
	if p.GuidanceScale <= 0 {
		return nil
	}
	if req.UncondInputIDs == nil {
		return fmt.Errorf("guidance_scale %g needs the unconditional prompt (uncond input ids); pass it or set guidance_scale to 0", p.GuidanceScale)
	}
	if p.PrefixLength > first {
		return fmt.Errorf("prefix length %d overlaps the image positions, which start at index %d", p.PrefixLength, first)
	}
	if err := checkRows("uncond input_ids", req.UncondInputIDs, batch, length); err != nil {
		return err
	}
	if req.UncondAttentionMask != nil {
		return checkMaskRows("uncond attention_mask", req.UncondAttentionMask, batch, length)
	}
	return nil
}

func checkRows(name string, rows [][]int64, batch, length int) error {
	if len(rows) != batch {
		return fmt.Errorf("%s has %d rows, input_ids has %d", name, len(rows), batch)
	}
	for i, row := range rows {
		if len(row) != length {
			return fmt.Errorf("%s row %d has %d tokens, input_ids rows have %d; pad every row to one length", name, i, len(row), length)
		}
	}
	return nil
}

func checkMaskRows(name string, rows [][]int64, batch, length int) error {
	if err := checkRows(name, rows, batch, length); err != nil {
		return err
	}
	for i, row := range rows {
		for j, v := range row {
			if v != 0 && v != 1 {
				return fmt.Errorf("%s row %d index %d is %d; want 0 (padding) or 1", name, i, j, v)
			}
		}
	}
	return nil
}

// probsScratch keeps the probability rows of a t2i step and their views
// from one step to the next, so that the loop does not allocate a row per
// image position every step.
type probsScratch struct {
	data  []float32
	views [][][]float32
}

// rows returns [batch][n] views of k floats each over data, or over the
// scratch's own buffer when data is nil. The views stay valid until the
// next call.
func (s *probsScratch) rows(batch, n, k int, data []float32) [][][]float32 {
	if data == nil {
		if len(s.data) != batch*n*k {
			s.data = make([]float32, batch*n*k)
		}
		data = s.data
	}
	views := s.viewsOf(batch, n)
	for b := range views {
		for i := range n {
			s.views[b][i] = data[(b*n+i)*k : (b*n+i+1)*k]
		}
	}
	return s.views
}

// slots returns [batch][n] views into data, which holds npos rows per
// batch row, one per computed position. Position i reads row slot[i]. A
// position with slot -1 gets no row, because its code is fixed and no step
// reads it.
func (s *probsScratch) slots(batch, n, k int, slot []int, npos int, data []float32) [][][]float32 {
	views := s.viewsOf(batch, n)
	for b := range views {
		for i := range n {
			if slot[i] < 0 {
				views[b][i] = nil
				continue
			}
			off := (b*npos + slot[i]) * k
			views[b][i] = data[off : off+k]
		}
	}
	return views
}

// viewsOf returns the [batch][n] view slices, kept from call to call.
func (s *probsScratch) viewsOf(batch, n int) [][][]float32 {
	if len(s.views) != batch || len(s.views[0]) != n {
		s.views = make([][][]float32, batch)
		for b := range s.views {
			s.views[b] = make([][]float32, n)
		}
	}
	return s.views
}

// t2iProbs runs the model and returns, per row and image position, the
// float32 softmax over the codebook columns of the (guided) logits,
// [B][N][K]. The rows live in scratch until the next step.
func t2iProbs(fwd Forward, ids, cur [][]int64, req T2IRequest, scratch *probsScratch) ([][][]float32, error) {
	p := req.Params
	batch, length := len(ids), len(ids[0])
	guided := p.GuidanceScale > 0
	rows := batch
	if guided {
		rows = 2 * batch
	}
	in := ir.NewTensor(ir.I64, int64(rows), int64(length))
	mask := ir.NewTensor(ir.I64, int64(rows), int64(length))
	d, m := in.I64(), mask.I64()
	for b := range ids {
		copy(d[b*length:], ids[b])
		fillMaskRow(m[b*length:(b+1)*length], req.AttentionMask, b)
		if guided {
			// The unconditional row: the empty caption's prefix, then the
			// current image state of the conditional row.
			u := d[(batch+b)*length : (batch+b+1)*length]
			copy(u, ids[b])
			copy(u[:p.PrefixLength], req.UncondInputIDs[b][:p.PrefixLength])
			fillMaskRow(m[(batch+b)*length:(batch+b+1)*length], req.UncondAttentionMask, b)
		}
	}
	n, k := p.NumImageTokens, p.CodebookSize
	first := length - n - 1
	if ph, ok := req.Head.(ProbsPositionHead); ok {
		// cur is the sampler's own record of codes (MaskID where masked),
		// so every position a step reads gets a row. Its image indices
		// become sequence positions for the head.
		if positions, slot := maskedPositions(cur, p.MaskID, 0, n); len(positions) > 0 && len(positions) < n {
			for j := range positions {
				positions[j] += int64(first)
			}
			pr, err := ph.ProbsAt(in, mask, positions, p.ImageTokenOffset, k, p.GuidanceScale)
			if err != nil {
				return nil, err
			}
			return scratch.slots(batch, n, k, slot, len(positions), pr.F32()), nil
		}
	}
	if req.Head != nil {
		pr, err := req.Head.Probs(in, mask, first, n, p.ImageTokenOffset, k, p.GuidanceScale)
		if err != nil {
			return nil, err
		}
		return scratch.rows(batch, n, k, pr.F32()), nil
	}
	logits, err := fwd(in, mask)
	if err != nil {
		return nil, err
	}
	if logits.DType != ir.F32 || len(logits.Shape) != 3 || logits.Shape[0] != int64(rows) || logits.Shape[1] != int64(length) {
		return nil, fmt.Errorf("model returned %v logits of shape %v, want f32 [%d %d vocab]", logits.DType, logits.Shape, rows, length)
	}
	vocab := int(logits.Shape[2])
	if hi := p.ImageTokenOffset + int64(p.CodebookSize); int64(vocab) < hi {
		return nil, fmt.Errorf("model vocabulary of %d ids ends before the image tokens [%d, %d)", vocab, p.ImageTokenOffset, hi)
	}

	all := logits.F32()
	// The scales round to float32 first, as upstream's tensor-by-scalar
	// products do; the explicit conversions keep Go from fusing the
	// multiplies and the subtraction.
	condScale, uncondScale := float32(1+p.GuidanceScale), float32(p.GuidanceScale)
	probs := scratch.rows(batch, n, k, nil)
	row := make([]float32, k)
	for b := range probs {
		for i := range n {
			at := func(r int) []float32 {
				off := (r*length+first+i)*vocab + int(p.ImageTokenOffset)
				return all[off : off+k]
			}
			cond := at(b)
			if guided {
				uncond := at(batch + b)
				for j := range row {
					row[j] = float32(condScale*cond[j]) - float32(uncondScale*uncond[j])
				}
			} else {
				copy(row, cond)
			}
			softmax32(probs[b][i], row)
		}
	}
	return probs, nil
}

// fillMaskRow copies row b of mask into dst, or ones when mask is nil.
func fillMaskRow(dst []int64, mask [][]int64, b int) {
	if mask == nil {
		fill(dst, 1)
		return
	}
	copy(dst, mask[b])
}

// softmax32 writes the float32 softmax of row to out: exponentials of the
// max-shifted values, divided by their sum (accumulated in float64).
func softmax32(out, row []float32) {
	m := float32(math.Inf(-1))
	for _, v := range row {
		m = max(m, v)
	}
	sum := 0.0
	for j, v := range row {
		e := float32(math.Exp(float64(v - m)))
		out[j] = e
		sum += float64(e)
	}
	s := float32(sum)
	for j := range out {
		out[j] /= s
	}
}

// sampleCodes draws one code per image position from probs by inverse
// CDF: with u from the CategoricalUniform draw, the code is the first
// index whose float64 running sum of the probabilities exceeds u times
// their total. Positions whose code is already fixed keep it (their draw
// is still consumed, as upstream samples every position).
func sampleCodes(probs [][][]float32, cur [][]int64, p T2IParams, noise NoiseSource) ([][]int64, error) {
	batch, n := len(probs), p.NumImageTokens
	draw, err := noise.Next(CategoricalUniform, []int64{int64(batch * n)})
	if err != nil {
		return nil, err
	}
	u := draw.Row64(0)
	out := make([][]int64, batch)
	for b := range out {
		out[b] = make([]int64, n)
		for i := range n {
			if cur[b][i] != p.MaskID {
				out[b][i] = cur[b][i]
				continue
			}
			out[b][i] = int64(inverseCDF(probs[b][i], u[b*n+i]))
		}
	}
	return out, nil
}

// inverseCDF returns the first index whose running sum exceeds u*total;
// rounding can leave none, and then the last index with a positive
// probability is taken.
func inverseCDF(probs []float32, u float64) int {
	total := 0.0
	for _, q := range probs {
		total += float64(q)
	}
	target := u * total
	run, last := 0.0, 0
	for j, q := range probs {
		run += float64(q)
		if q > 0 {
			last = j
		}
		if run > target {
			return j
		}
	}
	return last
}

// cosineMaskRatio is upstream's cosine schedule cos(pi/2 * r) evaluated
// as its float32 tensors do: r, r*pi and *0.5 each rounded to float32.
// The rounding matters: at r = 2/3 it gives 0.49999997, so 1024 tokens
// leave 511 masked, not 512.
func cosineMaskRatio(step, steps int) float32 {
	r := float32(float64(step+1) / float64(steps))
	x := float32(r*float32(math.Pi)) * 0.5
	return float32(math.Cos(float64(x)))
}

// maskLen is the number of positions to re-mask after step: floor(N *
// mask ratio) in float32, at most unknown-1 and at least 1.
func maskLen(step, steps, n, unknown int) int {
	f := cosineMaskFloor(step, steps, n)
	f = min(float64(unknown-1), f)
	return int(max(1, f))
}

// remaskPositions scores every sampled code with log(p) plus Gumbel noise
// scaled by temp (float32, as upstream's mask_by_random_topk computes)
// and marks, per row, the positions scoring below the maskLen-th lowest
// score. Ties at the cut-off stay unmasked, as upstream's strict
// comparison leaves them.
func remaskPositions(probs [][][]float32, sampled, cur [][]int64, step int, temp float64, p T2IParams, noise NoiseSource) ([][]bool, error) {
	batch, n := len(probs), p.NumImageTokens
	draw, err := noise.Next(GumbelUniform, []int64{int64(batch), int64(n)})
	if err != nil {
		return nil, err
	}
	tempF := float32(temp)
	const tiny = float32(1e-20)
	out := make([][]bool, batch)
	scores := make([]float32, n)
	for b := range out {
		u := draw.Row32(b)
		unknown := 0
		for i := range n {
			conf := float32(fixedConfidence)
			if cur[b][i] == p.MaskID {
				unknown++
				conf = probs[b][i][sampled[b][i]]
			}
			g := -log32(max(-log32(max(u[i], tiny)), tiny))
			scores[i] = log32(max(conf, tiny)) + float32(tempF*g)
		}
		k := maskLen(step, p.Timesteps, n, unknown)
		sorted := slices.Clone(scores)
		slices.Sort(sorted)
		cut := sorted[k]
		out[b] = make([]bool, n)
		for i, s := range scores {
			out[b][i] = s < cut
		}
	}
	return out, nil
}

// log32 is the natural logarithm rounded to float32.
func log32(x float32) float32 { return float32(math.Log(float64(x))) }

// cosineMaskFloor is floor(N * mask ratio) in float32, before the clamps.
func cosineMaskFloor(step, steps, n int) float64 {
	return math.Floor(float64(float32(n) * cosineMaskRatio(step, steps)))
}
