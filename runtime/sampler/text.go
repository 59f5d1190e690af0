// Package sampler runs MMaDA's diffusion sampling loops in Go around a
// model step: LLaDA-style block text generation (also used for image
// understanding) and MaskGIT-style text-to-image decoding.
package sampler

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/mmadac/mmadac/ir"
)

// Forward runs the transformer: input ids and padding mask, both i64
// [batch, seq], to f32 logits [batch, seq, vocab].
type Forward func(ids, mask *ir.Tensor) (*ir.Tensor, error)

// TextParams are the settings of the text sampler, named as upstream's
// generate() names them.
type TextParams struct {
	Steps       int     `json:"steps"`
	GenLength   int     `json:"gen_length"`
	BlockLength int     `json:"block_length"`
	Temperature float64 `json:"temperature"`
	CFGScale    float64 `json:"cfg_scale"`
	// Remasking is "low_confidence" or "random".
	Remasking string `json:"remasking"`
	MaskID    int64  `json:"mask_id"`

	// The fields below are opt-in accelerations beyond upstream; their
	// zero values give upstream's exact decoding.

	// ParallelThreshold, when positive, replaces the fixed transfer
	// schedule: every step unmasks each masked position of the block
	// whose confidence exceeds the threshold, and at least the most
	// confident one; a block ends when it has no mask left (at most
	// BlockLength steps). Steps is then ignored.
	ParallelThreshold float64 `json:"parallel_threshold,omitempty"`
	// StopAtEOS ends generation after a block once every row holds an
	// end-of-text token (one of EOSIDs) in its generated part; the
	// positions after it are filled with EOSIDs[0].
	StopAtEOS bool    `json:"stop_at_eos,omitempty"`
	EOSIDs    []int64 `json:"eos_ids,omitempty"`
	// Schedule, when set, holds the transfer counts per step of a block
	// (folded at build time); it must equal NumTransfer(BlockLength,
	// steps per block) for the run's settings.
	Schedule []int `json:"schedule,omitempty"`
}

// DefaultTextParams are upstream's generate() defaults.
func DefaultTextParams(maskID int64) TextParams {
	return TextParams{Steps: 128, GenLength: 128, BlockLength: 128, Remasking: "low_confidence", MaskID: maskID}
}

// Validate checks the parameters against what the schedule requires.
func (p TextParams) Validate() error {
	switch {
	case p.GenLength <= 0:
		return fmt.Errorf("gen_length must be positive, got %d", p.GenLength)
	case p.BlockLength <= 0:
		return fmt.Errorf("block_length must be positive, got %d", p.BlockLength)
	case p.GenLength%p.BlockLength != 0:
		return fmt.Errorf("gen_length %d is not a multiple of block_length %d", p.GenLength, p.BlockLength)
	case p.Steps <= 0:
		return fmt.Errorf("steps must be positive, got %d", p.Steps)
	case p.Steps%(p.GenLength/p.BlockLength) != 0:
		return fmt.Errorf("steps %d is not divisible by the number of blocks %d (gen_length/block_length); use a multiple of %d", p.Steps, p.GenLength/p.BlockLength, p.GenLength/p.BlockLength)
	case p.Temperature < 0:
		return fmt.Errorf("temperature must be >= 0, got %g", p.Temperature)
	case p.CFGScale < 0:
		return fmt.Errorf("cfg_scale must be >= 0, got %g", p.CFGScale)
	case p.Remasking != "low_confidence" && p.Remasking != "random":
		return fmt.Errorf("remasking %q is not supported; use low_confidence or random", p.Remasking)
	case p.ParallelThreshold < 0 || p.ParallelThreshold >= 1:
		return fmt.Errorf("parallel_threshold must be in [0, 1), got %g", p.ParallelThreshold)
	case p.StopAtEOS && len(p.EOSIDs) == 0:
		return fmt.Errorf("stop at end of text needs the end-of-text token ids")
	}
	return nil
}

// StepEvent reports one finished sampler step.
type StepEvent struct {
	Block, Blocks int
	Step, Steps   int // step within the block, and steps per block
	// Positions and Tokens list what this step unmasked, per row.
	Positions [][]int
	Tokens    [][]int64
	// Confidences are the scores the positions were chosen by.
	Confidences [][]float64
	// IDs is the whole current sequence per row (shared; do not modify).
	IDs     [][]int64
	Elapsed time.Duration
}

// TextRequest is one text (or mmu) generation.
type TextRequest struct {
	// Prompt holds one row per sequence, all of one length (left-pad
	// shorter prompts and pass AttentionMask).
	Prompt [][]int64
	// AttentionMask is optional: [batch][prompt+gen] with 0 on padding.
	AttentionMask [][]int64
	Params        TextParams
	Noise         NoiseSource
	// Head, when set, replaces Forward with a folded sampling head that
	// returns only what a step needs for the current block.
	Head Head
	// OnStep, when set, is called after every step.
	OnStep func(StepEvent)
}

// Head runs the model with the sampling head folded into the graph. ids
// and mask hold the batch rows, followed with classifier-free guidance by
// the unconditional rows; results cover positions [lo, hi) of the rows.
type Head interface {
	// Greedy returns the argmax token and its float64 softmax probability
	// per position, [rows*(hi-lo)] each.
	Greedy(ids, mask *ir.Tensor, lo, hi int, cfgFactor float32) (tokens []int64, conf []float64, err error)
	// Logits returns the logits of the positions, f32 [rows, hi-lo, vocab].
	Logits(ids, mask *ir.Tensor, lo, hi int, cfgFactor float32) (*ir.Tensor, error)
}

// PositionHead is a Head that can also compute the results of chosen
// positions only. The sampler reads a step's results only at the block's
// masked positions, so it requests those: the head's per-position work
// (the last layer's narrowed rows and the float64 softmax over the
// vocabulary) shrinks as the block fills. Results are [rows*len(positions)]
// or [rows, len(positions), vocab], in the order of positions.
type PositionHead interface {
	Head
	// GreedyAt and LogitsAt take the block [lo, hi) too, which the
	// positions lie in: a head that caches per block needs it.
	GreedyAt(ids, mask *ir.Tensor, lo, hi int, positions []int64, cfgFactor float32) (tokens []int64, conf []float64, err error)
	LogitsAt(ids, mask *ir.Tensor, lo, hi int, positions []int64, cfgFactor float32) (*ir.Tensor, error)
}

// stepScores gives, for row b and absolute position i of the current block,
// the logits row, or the greedy token and confidence when the head computed
// them.
type stepScores struct {
	logits []float32
	vocab  int
	rowLen int // positions per row in logits or tokens
	offset int // absolute position of index 0
	// slot, when set, maps position offset+j to its index in a row of
	// the results, for a head that computed chosen positions only.
	slot   []int
	tokens []int64
	conf   []float64
}

func (s *stepScores) index(b, i int) int {
	if s.slot != nil {
		return b*s.rowLen + s.slot[i-s.offset]
	}
	return b*s.rowLen + i - s.offset
}

// maskedPositions lists the positions of [lo, hi) that are masked in any
// row, and for every position of the range its index in that list (-1
// where no row is masked).
func maskedPositions(x [][]int64, maskID int64, lo, hi int) ([]int64, []int) {
	var positions []int64
	slot := make([]int, hi-lo)
	for i := lo; i < hi; i++ {
		slot[i-lo] = -1
		for _, row := range x {
			if row[i] == maskID {
				slot[i-lo] = len(positions)
				positions = append(positions, int64(i))
				break
			}
		}
	}
	return positions, slot
}

func (s *stepScores) row(b, i int) []float32 {
	k := s.index(b, i)
	return s.logits[k*s.vocab : (k+1)*s.vocab]
}

// NumTransfer splits m masked tokens over s steps: base = m/s each, and the
// remainder one extra on the first steps.
func NumTransfer(m, s int) []int {
	out := make([]int, s)
	for i := range out {
		out[i] = m / s
		if i < m%s {
			out[i]++
		}
	}
	return out
}

// GenerateText runs block diffusion: blocks left to right, each unmasked
// over Steps/blocks steps, the most confident (or random) positions first.
// It returns the whole sequences, prompt included.
func GenerateText(ctx context.Context, fwd Forward, req TextRequest) ([][]int64, error) {
	p := req.Params
	if err := p.Validate(); err != nil {
		return nil, err
	}
	batch := len(req.Prompt)
	if batch == 0 {
		return nil, fmt.Errorf("no prompt rows")
	}
	lp := len(req.Prompt[0])
	for i, row := range req.Prompt {
		if len(row) != lp {
			return nil, fmt.Errorf("prompt row %d has %d tokens, row 0 has %d; left-pad rows to one length", i, len(row), lp)
		}
	}
	total := lp + p.GenLength
	if req.AttentionMask != nil {
		if len(req.AttentionMask) != batch {
			return nil, fmt.Errorf("attention mask has %d rows, the prompt %d", len(req.AttentionMask), batch)
		}
		for i, row := range req.AttentionMask {
			if len(row) != total {
				return nil, fmt.Errorf("attention mask row %d has %d entries, want prompt+gen_length = %d", i, len(row), total)
			}
		}
	}
	if p.CFGScale > 0 && req.AttentionMask != nil {
		slog.Warn("classifier-free guidance runs without the attention mask, as upstream does")
	}

	x := make([][]int64, batch)
	for b := range x {
		x[b] = make([]int64, total)
		copy(x[b], req.Prompt[b])
		for i := lp; i < total; i++ {
			x[b][i] = p.MaskID
		}
	}
	isPrompt := make([][]bool, batch)
	for b := range x {
		isPrompt[b] = make([]bool, total)
		for i, t := range x[b] {
			isPrompt[b][i] = t != p.MaskID
		}
	}

	blocks := p.GenLength / p.BlockLength
	perBlock := p.Steps / blocks
	var scratch []float32
	start := time.Now()
	for blk := 0; blk < blocks; blk++ {
		lo, hi := lp+blk*p.BlockLength, lp+(blk+1)*p.BlockLength
		transfers := make([][]int, batch)
		for b := range x {
			m := 0
			for _, t := range x[b][lo:hi] {
				if t == p.MaskID {
					m++
				}
			}
			transfers[b] = NumTransfer(m, perBlock)
			if p.Schedule != nil && m == p.BlockLength {
				transfers[b] = p.Schedule
			}
		}
		stepsHere := perBlock
		if p.ParallelThreshold > 0 {
			stepsHere = p.BlockLength
		}
		for step := 0; step < stepsHere; step++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			scores, err := textScores(fwd, req.Head, x, isPrompt, req.AttentionMask, p, lo, hi, &scratch)
			if err != nil {
				return nil, err
			}
			ev, err := textStep(x, scores, transfers, step, lo, hi, p, req.Noise)
			if err != nil {
				return nil, err
			}
			ev.Block, ev.Blocks, ev.Step, ev.Steps = blk, blocks, step, stepsHere
			ev.IDs, ev.Elapsed = x, time.Since(start)
			if req.OnStep != nil {
				req.OnStep(ev)
			}
			if p.ParallelThreshold > 0 && !anyMasked(x, lo, hi, p.MaskID) {
				break
			}
		}
		if p.StopAtEOS && blk+1 < blocks && allEnded(x, lp, hi, p.EOSIDs) {
			for b := range x {
				for i := hi; i < total; i++ {
					x[b][i] = p.EOSIDs[0]
				}
			}
			break
		}
	}
	return x, nil
}

func anyMasked(x [][]int64, lo, hi int, mask int64) bool {
	for _, row := range x {
		for _, t := range row[lo:hi] {
			if t == mask {
				return true
			}
		}
	}
	return false
}

// allEnded reports whether every row holds an end-of-text token in
// [lo, hi).
func allEnded(x [][]int64, lo, hi int, eos []int64) bool {
	for _, row := range x {
		found := false
		for _, t := range row[lo:hi] {
			for _, e := range eos {
				if t == e {
					found = true
				}
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// textInputs builds the model inputs of a step: the current sequences
// and mask, and with classifier-free guidance the same sequences with the
// prompt positions masked appended as extra rows (run without the padding
// mask, as upstream does).
func textInputs(x [][]int64, isPrompt [][]bool, mask [][]int64, p TextParams) (ids, m *ir.Tensor) {
	batch, total := len(x), len(x[0])
	rows := batch
	if p.CFGScale > 0 {
		rows = 2 * batch
	}
	ids = ir.NewTensor(ir.I64, int64(rows), int64(total))
	m = ir.NewTensor(ir.I64, int64(rows), int64(total))
	fill(m.I64(), 1)
	d := ids.I64()
	for b := range x {
		copy(d[b*total:], x[b])
		if mask != nil && p.CFGScale <= 0 {
			copy(m.I64()[b*total:], mask[b])
		}
		if p.CFGScale > 0 {
			un := d[(batch+b)*total : (batch+b+1)*total]
			for i, t := range x[b] {
				if isPrompt[b][i] {
					un[i] = p.MaskID
				} else {
					un[i] = t
				}
			}
		}
	}
	return ids, m
}

// textScores runs one model step and returns what textStep reads.
// scratch, when non-nil, holds a buffer reused across steps for the
// guided logits, so the full-logits path does not allocate them per step.
func textScores(fwd Forward, head Head, x [][]int64, isPrompt [][]bool, mask [][]int64, p TextParams, lo, hi int, scratch *[]float32) (*stepScores, error) {
	batch, total := len(x), len(x[0])
	ids, m := textInputs(x, isPrompt, mask, p)
	factor := float32(p.CFGScale + 1)
	if ph, ok := head.(PositionHead); ok {
		// A step with nothing masked in the block still runs the whole
		// block, as upstream does, so that its noise draws keep their
		// shapes.
		if positions, slot := maskedPositions(x, p.MaskID, lo, hi); len(positions) > 0 {
			return positionScores(ph, ids, m, lo, hi, positions, slot, factor, p.Temperature)
		}
	}
	if head != nil {
		if p.Temperature == 0 {
			tokens, conf, err := head.Greedy(ids, m, lo, hi, factor)
			if err != nil {
				return nil, err
			}
			return &stepScores{rowLen: hi - lo, offset: lo, tokens: tokens, conf: conf}, nil
		}
		l, err := head.Logits(ids, m, lo, hi, factor)
		if err != nil {
			return nil, err
		}
		return &stepScores{logits: l.F32(), vocab: int(l.Shape[2]), rowLen: hi - lo, offset: lo}, nil
	}
	all, err := fwd(ids, m)
	if err != nil {
		return nil, err
	}
	vocab := int(all.Shape[2])
	if p.CFGScale <= 0 {
		return &stepScores{logits: all.F32(), vocab: vocab, rowLen: total}, nil
	}
	half := batch * total * vocab
	d := all.F32()
	if cap(*scratch) < half {
		*scratch = make([]float32, half)
	}
	out := (*scratch)[:half]
	for i := range out {
		c, u := d[i], d[half+i]
		out[i] = u + factor*(c-u)
	}
	return &stepScores{logits: out, vocab: vocab, rowLen: total}, nil
}

// positionScores runs a position head on the chosen positions.
func positionScores(ph PositionHead, ids, mask *ir.Tensor, lo, hi int, positions []int64, slot []int, factor float32, temperature float64) (*stepScores, error) {
	if temperature == 0 {
		tokens, conf, err := ph.GreedyAt(ids, mask, lo, hi, positions, factor)
		if err != nil {
			return nil, err
		}
		return &stepScores{rowLen: len(positions), offset: lo, slot: slot, tokens: tokens, conf: conf}, nil
	}
	l, err := ph.LogitsAt(ids, mask, lo, hi, positions, factor)
	if err != nil {
		return nil, err
	}
	return &stepScores{logits: l.F32(), vocab: int(l.Shape[2]), rowLen: len(positions), offset: lo, slot: slot}, nil
}

func fill(d []int64, v int64) {
	for i := range d {
		d[i] = v
	}
}

// textStep picks a token and a confidence for every masked position of the
// current block and unmasks the best transfers[b][step] of them per row.
func textStep(x [][]int64, sc *stepScores, transfers [][]int, step, lo, hi int, p TextParams, noise NoiseSource) (StepEvent, error) {
	batch, total := len(x), len(x[0])
	vocab := sc.vocab

	var gumbel, remask Draw
	var err error
	if p.Temperature > 0 {
		if sc.logits == nil {
			return StepEvent{}, fmt.Errorf("a positive temperature needs logits from the model step")
		}
		if gumbel, err = noise.Next(GumbelUniform, []int64{int64(batch), int64(total), int64(vocab)}); err != nil {
			return StepEvent{}, err
		}
	}
	if p.Remasking == "random" {
		if remask, err = noise.Next(RemaskUniform, []int64{int64(batch), int64(total)}); err != nil {
			return StepEvent{}, err
		}
	}
	ev := StepEvent{Positions: make([][]int, batch), Tokens: make([][]int64, batch), Confidences: make([][]float64, batch)}
	for b := 0; b < batch; b++ {
		type cand struct {
			pos  int
			tok  int64
			conf float64
		}
		var cands []cand
		var remaskRow []float32
		if remask != nil {
			remaskRow = remask.Row32(b)
		}
		// Positions right of the block get confidence -inf and masked
		// positions are the only candidates, so only [lo, hi) matters.
		for i := lo; i < hi; i++ {
			if x[b][i] != p.MaskID {
				continue
			}
			var tok int
			var conf float64
			switch {
			case sc.tokens != nil:
				k := sc.index(b, i)
				tok, conf = int(sc.tokens[k]), sc.conf[k]
			case gumbel != nil:
				row := sc.row(b, i)
				tok = argmaxGumbel(row, gumbel.Row64(b*total+i), p.Temperature)
				conf = softmaxProb64(row, tok)
			default:
				row := sc.row(b, i)
				tok = argmax32(row)
				conf = softmaxProb64(row, tok)
			}
			if remaskRow != nil {
				conf = float64(remaskRow[i])
			}
			cands = append(cands, cand{i, int64(tok), conf})
		}
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].conf > cands[j].conf })
		var k int
		if p.ParallelThreshold > 0 {
			k = min(1, len(cands))
			for k < len(cands) && cands[k].conf > p.ParallelThreshold {
				k++
			}
		} else {
			k = transfers[b][step]
		}
		if k > len(cands) {
			return StepEvent{}, fmt.Errorf("row %d: step %d wants %d tokens, %d positions are masked", b, step, k, len(cands))
		}
		for _, c := range cands[:k] {
			x[b][c.pos] = c.tok
			ev.Positions[b] = append(ev.Positions[b], c.pos)
			ev.Tokens[b] = append(ev.Tokens[b], c.tok)
			ev.Confidences[b] = append(ev.Confidences[b], c.conf)
		}
	}
	return ev, nil
}

// argmax32 returns the first index of the maximum, as torch.argmax does.
func argmax32(row []float32) int {
	best, bi := float32(math.Inf(-1)), 0
	for i, v := range row {
		if v > best {
			best, bi = v, i
		}
	}
	return bi
}

// argmaxGumbel samples from softmax(logits/T) by the Gumbel-max trick in
// float64: argmax(l - T*ln(-ln u)). It is the argmax of upstream's
// exp(l)/(-ln u)^T, in log space, where exp cannot overflow.
func argmaxGumbel(row []float32, u []float64, temp float64) int {
	best, bi := math.Inf(-1), 0
	for i, v := range row {
		s := float64(v) - temp*math.Log(-math.Log(u[i]))
		if s > best {
			best, bi = s, i
		}
	}
	return bi
}

// softmaxProb64 returns the float64 softmax probability of index tok over
// the whole row.
func softmaxProb64(row []float32, tok int) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	s := 0.0
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	return math.Exp(float64(row[tok])-m) / s
}
