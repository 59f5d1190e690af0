package engine

import (
	"fmt"
	"sync"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/passes"
)

// headVariants holds the sessions of the folded-head graph variants of a
// text model, built on first use.
type headVariants struct {
	mu       sync.Mutex
	sessions map[headKey]Session
	// outBytes counts the bytes the last step moved from the backend.
	outBytes int64
	// positions counts the positions the last step's head computed.
	positions int
}

type headKey struct {
	mode       string
	cfg        bool
	col, width int64
}

// variant returns the session of one folded-head variant, building the
// graph from the checkpoint headers and running the pipeline with the
// fold-sampling-head pass set to that mode.
func (m *TextModel) variant(mode string, cfg bool) (Session, error) {
	return m.variantCols(headKey{mode: mode, cfg: cfg})
}

func (m *TextModel) variantCols(key headKey) (Session, error) {
	mode, cfg := key.mode, key.cfg
	m.heads.mu.Lock()
	defer m.heads.mu.Unlock()
	if s, ok := m.heads.sessions[key]; ok {
		return s, nil
	}
	g, err := mmada.Build(m.Config, m.ckpt, mmada.Options{})
	if err != nil {
		return nil, err
	}
	spec := &passes.HeadSpec{Mode: mode, CFG: cfg, ColStart: key.col, ColEnd: key.col + key.width}
	if _, err := optimizeWith(g, m.Config, m.passOpts, spec); err != nil {
		return nil, err
	}
	s, err := m.open(g)
	if err != nil {
		return nil, fmt.Errorf("opening the %s head variant: %w", mode, err)
	}
	if m.heads.sessions == nil {
		m.heads.sessions = map[headKey]Session{}
	}
	m.heads.sessions[key] = s
	return s, nil
}

// span returns the positions lo, lo+1, ..., hi-1.
func span(lo, hi int) []int64 {
	out := make([]int64, hi-lo)
	for i := range out {
		out[i] = int64(lo + i)
	}
	return out
}

// addGuidanceRows adds the batch rows of the two guidance branches: the
// conditional rows first, then the unconditional ones.
func addGuidanceRows(in map[string]*ir.Tensor, ids *ir.Tensor) {
	rows := ids.Shape[0] / 2
	cr, ur := ir.NewTensor(ir.I64, rows), ir.NewTensor(ir.I64, rows)
	for i := int64(0); i < rows; i++ {
		cr.I64()[i], ur.I64()[i] = i, rows+i
	}
	in[passes.InputCondRows], in[passes.InputUncondRows] = cr, ur
}

// headInputs adds the folded head's inputs to the model inputs: the
// positions whose head is computed, and the guidance rows and factor.
func headInputs(ids, mask *ir.Tensor, positions []int64, factor float32) (map[string]*ir.Tensor, bool) {
	in := map[string]*ir.Tensor{mmada.InputIDs: ids, mmada.AttentionMask: mask}
	in[passes.InputPositions] = ir.FromI64(positions, int64(len(positions)))
	cfg := factor != 1
	if cfg {
		addGuidanceRows(in, ids)
		f := ir.NewTensor(ir.F32)
		f.F32()[0] = factor
		in[passes.InputCFGFactor] = f
	}
	return in, cfg
}

// Greedy implements sampler.Head.
func (m *TextModel) Greedy(ids, mask *ir.Tensor, lo, hi int, factor float32) ([]int64, []float64, error) {
	return m.GreedyAt(ids, mask, lo, hi, span(lo, hi), factor)
}

// GreedyAt implements sampler.PositionHead.
func (m *TextModel) GreedyAt(ids, mask *ir.Tensor, lo, hi int, positions []int64, factor float32) ([]int64, []float64, error) {
	if err := m.checkIDs(ids); err != nil {
		return nil, nil, err
	}
	in, cfg := headInputs(ids, mask, positions, factor)
	s, err := m.variant(passes.HeadGreedy, cfg)
	if err != nil {
		return nil, nil, err
	}
	out, err := s.Run(in)
	if err != nil {
		return nil, nil, err
	}
	m.heads.outBytes = int64(len(out["tokens"].I64())*8 + len(out["confidence"].F64())*8)
	m.heads.positions = len(positions)
	return out["tokens"].I64(), out["confidence"].F64(), nil
}

// Logits implements sampler.Head.
func (m *TextModel) Logits(ids, mask *ir.Tensor, lo, hi int, factor float32) (*ir.Tensor, error) {
	return m.LogitsAt(ids, mask, lo, hi, span(lo, hi), factor)
}

// LogitsAt implements sampler.PositionHead.
func (m *TextModel) LogitsAt(ids, mask *ir.Tensor, lo, hi int, positions []int64, factor float32) (*ir.Tensor, error) {
	if err := m.checkIDs(ids); err != nil {
		return nil, err
	}
	in, cfg := headInputs(ids, mask, positions, factor)
	s, err := m.variant(passes.HeadLogits, cfg)
	if err != nil {
		return nil, err
	}
	out, err := s.Run(in)
	if err != nil {
		return nil, err
	}
	m.heads.outBytes = int64(out["logits"].Len() * 4)
	m.heads.positions = len(positions)
	return out["logits"], nil
}

// LastStepBytes returns the bytes the last model step returned to Go.
func (m *TextModel) LastStepBytes() int64 { return m.heads.outBytes }

// LastStepPositions returns how many positions the last text step's
// folded head computed: the block's masked positions, which the graph's
// last layer and head are narrowed to.
func (m *TextModel) LastStepPositions() int { return m.heads.positions }

// HeadFolding reports whether the model runs with the folded sampling
// head (the default pipeline) rather than returning full logits.
func (m *TextModel) HeadFolding() bool { return !m.passOpts.None && !m.noHead }

// Probs implements sampler.ProbsHead with the probs variant of the folded
// head: image positions and codebook columns only, guidance and softmax in
// the graph.
func (m *TextModel) Probs(ids, mask *ir.Tensor, first, n int, col int64, k int, guidance float64) (*ir.Tensor, error) {
	return m.ProbsAt(ids, mask, span(first, first+n), col, k, guidance)
}

// ProbsAt implements sampler.ProbsPositionHead: the probs variant at the
// given image positions only.
func (m *TextModel) ProbsAt(ids, mask *ir.Tensor, positions []int64, col int64, k int, guidance float64) (*ir.Tensor, error) {
	if err := m.checkIDs(ids); err != nil {
		return nil, err
	}
	in := map[string]*ir.Tensor{mmada.InputIDs: ids, mmada.AttentionMask: mask}
	in[passes.InputPositions] = ir.FromI64(positions, int64(len(positions)))
	cfg := guidance > 0
	if cfg {
		addGuidanceRows(in, ids)
		a, b := ir.NewTensor(ir.F32), ir.NewTensor(ir.F32)
		a.F32()[0], b.F32()[0] = float32(1+guidance), float32(guidance)
		in[passes.InputCFGCond], in[passes.InputCFGUncond] = a, b
	}
	s, err := m.variantCols(headKey{mode: passes.HeadProbs, cfg: cfg, col: col, width: int64(k)})
	if err != nil {
		return nil, err
	}
	out, err := s.Run(in)
	if err != nil {
		return nil, err
	}
	m.heads.outBytes = int64(out["probs"].Len() * 4)
	m.heads.positions = len(positions)
	return out["probs"], nil
}
