package engine

import (
	"fmt"
	"sync"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/passes"
)

// Block-cache modes, after Fast-dLLM's two caches.
const (
	// CacheDual reuses the keys and values of the prefix and of the
	// suffix (the positions after the block): a step runs the block only.
	CacheDual = "dual"
	// CachePrefix reuses the prefix only: a step runs the block and
	// everything after it, so only the prefix is stale.
	CachePrefix = "prefix"
)

// BlockCache is an opt-in sampler.Head that reuses keys and values within
// a block. The first step of each block runs the whole sequence and keeps
// every layer's keys and values. The other steps of that block run only
// the block's tokens (and, in prefix mode, the suffix's) against them. It
// is approximate, because the cached positions are not recomputed while
// the block changes. It costs memory for two float32 tensors of [layers,
// rows, heads, seq, head_dim].
type BlockCache struct {
	m *TextModel
	// prefixOnly recomputes the suffix at every step (CachePrefix).
	prefixOnly bool

	mu       sync.Mutex
	sessions map[cacheKey]Session
	// The cache of the current block.
	lo, hi int
	k, v   *ir.Tensor
	// FullSteps and BlockSteps count the two kinds of step run.
	FullSteps, BlockSteps int
}

type cacheKey struct {
	block     bool
	mode      string
	cfg       bool
	rows, seq int64
}

// NewBlockCache wraps a loaded model in a dual cache.
func NewBlockCache(m *TextModel) *BlockCache {
	return &BlockCache{m: m, sessions: map[cacheKey]Session{}, lo: -1}
}

// NewBlockCacheMode wraps a loaded model in a cache of the given mode,
// CacheDual or CachePrefix.
func NewBlockCacheMode(m *TextModel, mode string) (*BlockCache, error) {
	c := NewBlockCache(m)
	switch mode {
	case CacheDual:
	case CachePrefix:
		c.prefixOnly = true
	default:
		return nil, fmt.Errorf("unknown block-cache mode %q; use %s or %s", mode, CacheDual, CachePrefix)
	}
	return c, nil
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
		// One graph with a symbolic width serves every block: the dual
		// cache's fixed block and the prefix cache's shrinking tail.
		g, err = mmada.BuildBlock(c.m.Config, c.m.ckpt, mmada.BlockOptions{Batch: key.rows, Seq: key.seq})
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
	// The recomputed rows: the block, and in prefix mode the suffix too.
	// The head still reads the block's rows only, the first hi-lo.
	end := hi
	if c.prefixOnly {
		end = int(seq)
	}
	width := int64(end - lo)
	s, err := c.session(cacheKey{block: true, mode: mode, cfg: cfg, rows: rows, seq: seq})
	if err != nil {
		return nil, err
	}
	blockIDs := ir.NewTensor(ir.I64, rows, width)
	for r := int64(0); r < rows; r++ {
		copy(blockIDs.I64()[r*width:(r+1)*width], ids.I64()[r*seq+int64(lo):r*seq+int64(end)])
	}
	in, _ := headInputs(blockIDs, mask, 0, hi-lo, factor)
	delete(in, mmada.AttentionMask)
	pos := ir.NewTensor(ir.I64, width)
	for i := range pos.I64() {
		pos.I64()[i] = int64(lo + i)
	}
	in[mmada.BlockPositions] = pos
	in[mmada.CacheK], in[mmada.CacheV] = c.k, c.v
	in[mmada.CachedPositions] = cachedPositions(int(seq), lo, end)
	in[mmada.BlockBias] = blockBias(mask, lo, end)
	out, err := s.Run(in)
	if err != nil {
		return nil, err
	}
	c.BlockSteps++
	return out, nil
}

// cachedPositions lists the positions outside the recomputed rows [lo,
// hi), whose cached keys and values are still used.
func cachedPositions(seq, lo, hi int) *ir.Tensor {
	out := ir.NewTensor(ir.I64, int64(seq-(hi-lo)))
	d := out.I64()[:0]
	for j := 0; j < seq; j++ {
		if j < lo || j >= hi {
			d = append(d, int64(j))
		}
	}
	return out
}

// blockBias builds the additive bias of the block graph: query i of the
// recomputed rows [lo, hi) may attend to the cached keys outside them
// (in cachedPositions order) and to every fresh key, where both are real
// tokens.
func blockBias(mask *ir.Tensor, lo, hi int) *ir.Tensor {
	rows, seq := mask.Shape[0], mask.Shape[1]
	width := int64(hi - lo)
	cached := seq - width
	keys := cached + width
	out := ir.NewTensor(ir.F32, rows, 1, width, keys)
	d := out.F32()
	m := mask.I64()
	for r := int64(0); r < rows; r++ {
		for i := int64(0); i < width; i++ {
			qReal := m[r*seq+int64(lo)+i] != 0
			row := d[(r*width+i)*keys : (r*width+i+1)*keys]
			col := 0
			for j := int64(0); j < seq; j++ {
				if j >= int64(lo) && j < int64(hi) {
					continue
				}
				if !qReal || m[r*seq+j] == 0 {
					row[col] = mmada.MaskValue
				}
				col++
			}
			for j := int64(0); j < width; j++ {
				if !qReal || m[r*seq+int64(lo)+j] == 0 {
					row[cached+j] = mmada.MaskValue
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
