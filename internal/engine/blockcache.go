package engine

import (
	"fmt"
	"sync"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/passes"
)

// BlockCache is an opt-in sampler.Head that reuses keys and values within
// a block, as Fast-dLLM's "dual cache" does. The first step of each block
// runs the whole sequence and keeps every layer's keys and values. The
// other steps of that block run only the block's tokens against them. It
// is approximate, because positions outside the block are not recomputed
// while the block changes. It costs memory for two float32 tensors of
// [layers, rows, heads, seq, head_dim].
type BlockCache struct {
	m *TextModel

	mu       sync.Mutex
	sessions map[cacheKey]Session
	// The cache of the current block.
	lo, hi int
	k, v   *ir.Tensor
	// FullSteps and BlockSteps count the two kinds of step run.
	FullSteps, BlockSteps int
}

type cacheKey struct {
	block      bool
	mode       string
	cfg        bool
	rows, seq  int64
	blockWidth int64
}

// NewBlockCache wraps a loaded model.
func NewBlockCache(m *TextModel) *BlockCache {
	return &BlockCache{m: m, sessions: map[cacheKey]Session{}, lo: -1}
}

// session builds (once) the full-sequence graph with cache outputs or the
// block step graph, with the sampling head folded in the given mode.
func (c *BlockCache) session(key cacheKey) (Session, error) {
	if s, ok := c.sessions[key]; ok {
		return s, nil
	}
	var g *ir.Graph
	var err error
	if key.block {
		g, err = mmada.BuildBlock(c.m.Config, c.m.ckpt, mmada.BlockOptions{Batch: key.rows, Seq: key.seq, Block: key.blockWidth})
	} else {
		g, err = mmada.Build(c.m.Config, c.m.ckpt, mmada.Options{Batch: key.rows, Seq: key.seq, CacheOutputs: true})
	}
	if err != nil {
		return nil, err
	}
	spec := &passes.HeadSpec{Mode: key.mode, CFG: key.cfg}
	if _, err := optimizeWith(g, c.m.Config, c.m.passOpts, spec); err != nil {
		return nil, err
	}
	s, _, err := OpenSession(g, c.m.Backend)
	if err != nil {
		return nil, fmt.Errorf("opening the block-cache graph: %w", err)
	}
	c.sessions[key] = s
	return s, nil
}

// run executes a step: the full graph at a new block, else the block graph.
func (c *BlockCache) run(mode string, ids, mask *ir.Tensor, lo, hi int, factor float32) (map[string]*ir.Tensor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.m.checkIDs(ids); err != nil {
		return nil, err
	}
	rows, seq := ids.Shape[0], ids.Shape[1]
	cfg := factor != 1
	if lo != c.lo || hi != c.hi || c.k == nil || c.k.Shape[1] != rows {
		s, err := c.session(cacheKey{mode: mode, cfg: cfg, rows: rows, seq: seq})
		if err != nil {
			return nil, err
		}
		in, _ := headInputs(ids, mask, lo, hi, factor)
		out, err := s.Run(in)
		if err != nil {
			return nil, err
		}
		c.k, c.v, c.lo, c.hi = out[mmada.CacheK], out[mmada.CacheV], lo, hi
		c.FullSteps++
		return out, nil
	}
	width := int64(hi - lo)
	s, err := c.session(cacheKey{block: true, mode: mode, cfg: cfg, rows: rows, seq: seq, blockWidth: width})
	if err != nil {
		return nil, err
	}
	blockIDs := ir.NewTensor(ir.I64, rows, width)
	for r := int64(0); r < rows; r++ {
		copy(blockIDs.I64()[r*width:(r+1)*width], ids.I64()[r*seq+int64(lo):r*seq+int64(hi)])
	}
	in, _ := headInputs(blockIDs, mask, 0, hi-lo, factor)
	delete(in, mmada.AttentionMask)
	pos := ir.NewTensor(ir.I64, width)
	for i := range pos.I64() {
		pos.I64()[i] = int64(lo + i)
	}
	in[mmada.BlockPositions] = pos
	in[mmada.CacheK], in[mmada.CacheV] = c.k, c.v
	in[mmada.BlockBias] = blockBias(mask, lo, hi)
	out, err := s.Run(in)
	if err != nil {
		return nil, err
	}
	c.BlockSteps++
	return out, nil
}

// blockBias builds the additive bias of the block graph: query i of the
// block may attend to cached key j outside [lo, hi) and to every fresh
// block key, where both are real tokens.
func blockBias(mask *ir.Tensor, lo, hi int) *ir.Tensor {
	rows, seq := mask.Shape[0], mask.Shape[1]
	width := int64(hi - lo)
	keys := seq + width
	out := ir.NewTensor(ir.F32, rows, 1, width, keys)
	d := out.F32()
	m := mask.I64()
	for r := int64(0); r < rows; r++ {
		for i := int64(0); i < width; i++ {
			qReal := m[r*seq+int64(lo)+i] != 0
			row := d[(r*width+i)*keys : (r*width+i+1)*keys]
			for j := int64(0); j < seq; j++ {
				stale := j >= int64(lo) && j < int64(hi)
				if stale || !qReal || m[r*seq+j] == 0 {
					row[j] = mmada.MaskValue
				}
			}
			for j := int64(0); j < width; j++ {
				if !qReal || m[r*seq+int64(lo)+j] == 0 {
					row[seq+j] = mmada.MaskValue
				}
			}
		}
	}
	return out
}

// Greedy implements sampler.Head.
func (c *BlockCache) Greedy(ids, mask *ir.Tensor, lo, hi int, factor float32) ([]int64, []float64, error) {
	out, err := c.run(passes.HeadGreedy, ids, mask, lo, hi, factor)
	if err != nil {
		return nil, nil, err
	}
	c.m.heads.outBytes = int64(out["tokens"].Len()*8 + out["confidence"].Len()*8)
	return out["tokens"].I64(), out["confidence"].F64(), nil
}

// Logits implements sampler.Head.
func (c *BlockCache) Logits(ids, mask *ir.Tensor, lo, hi int, factor float32) (*ir.Tensor, error) {
	out, err := c.run(passes.HeadLogits, ids, mask, lo, hi, factor)
	if err != nil {
		return nil, err
	}
	c.m.heads.outBytes = int64(out["logits"].Len() * 4)
	return out["logits"], nil
}

// Close releases the cache's sessions.
func (c *BlockCache) Close() error {
	var first error
	for _, s := range c.sessions {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
