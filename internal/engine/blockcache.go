package engine

import (
	"fmt"
	"slices"
	"sync"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/mmada"
	"github.com/mmadac/mmadac/passes"
	"github.com/mmadac/mmadac/runtime/sampler"
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
	// The cache of the current block, and the ids and mask it was built
	// from.
	lo, hi    int
	k, v      *ir.Tensor
	ids, mask []int64
	// FullSteps and BlockSteps count the two kinds of step run.
	FullSteps, BlockSteps int
}

type cacheKey struct {
	mode string
	cfg  bool
	rows int64
}

// The samplers request the masked positions only from both heads.
var (
	_ sampler.PositionHead      = (*BlockCache)(nil)
	_ sampler.PositionHead      = (*TextModel)(nil)
	_ sampler.ProbsPositionHead = (*TextModel)(nil)
)

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

// session builds (once) the block step graph for a batch size, with the
// sampling head folded in the given mode. One graph with a symbolic width
// serves every step: the whole sequence at a block's first step, then the
// dual cache's block or the prefix cache's shrinking tail. Sharing it keeps
// one copy of the weights in the backend.
func (c *BlockCache) session(key cacheKey) (Session, error) {
	if s, ok := c.sessions[key]; ok {
		return s, nil
	}
	g, err := mmada.BuildBlock(c.m.Config, c.m.ckpt, mmada.BlockOptions{Batch: key.rows})
	if err != nil {
		return nil, err
	}
	spec := &passes.HeadSpec{Mode: key.mode, CFG: key.cfg}
	if _, err := optimizeWith(g, c.m.Config, c.m.passOpts, spec); err != nil {
		return nil, err
	}
	s, err := c.m.open(g)
	if err != nil {
		return nil, fmt.Errorf("opening the block-cache graph: %w", err)
	}
	c.sessions[key] = s
	return s, nil
}

// run executes a step. At a new block every row is recomputed with
// nothing cached, and the step's fresh keys and values become the cache.
// Later steps of the block recompute the block (and in prefix mode the
// rows after it) against that cache.
func (c *BlockCache) run(mode string, ids, mask *ir.Tensor, lo, hi int, positions []int64, factor float32) (map[string]*ir.Tensor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.m.checkIDs(ids); err != nil {
		return nil, err
	}
	rows, seq := ids.Shape[0], ids.Shape[1]
	s, err := c.session(cacheKey{mode: mode, cfg: factor != 1, rows: rows})
	if err != nil {
		return nil, err
	}

	// A new block, a new shape, or tokens changed outside the block (the
	// caller started another generation) refresh the cache.
	full := lo != c.lo || hi != c.hi || c.k == nil || c.k.Shape[1] != rows || c.k.Shape[3] != seq ||
		!sameOutside(ids.I64(), c.ids, int(seq), lo, hi) || !slices.Equal(mask.I64(), c.mask)
	// The recomputed rows [start, end).
	start, end := lo, hi
	switch {
	case full:
		start, end = 0, int(seq)
	case c.prefixOnly:
		end = int(seq)
	}
	width := int64(end - start)
	blockIDs := ids
	if !full {
		blockIDs = ir.NewTensor(ir.I64, rows, width)
		for r := int64(0); r < rows; r++ {
			copy(blockIDs.I64()[r*width:(r+1)*width], ids.I64()[r*seq+int64(start):r*seq+int64(end)])
		}
	}
	// The head reads the given rows of the block, counted from start.
	rel := make([]int64, len(positions))
	for i, p := range positions {
		rel[i] = p - int64(start)
	}
	in, _ := headInputs(blockIDs, mask, rel, factor)
	delete(in, mmada.AttentionMask)
	pos := ir.NewTensor(ir.I64, width)
	for i := range pos.I64() {
		pos.I64()[i] = int64(start + i)
	}
	in[mmada.BlockPositions] = pos
	if full {
		// Nothing is cached yet: an empty list of cached positions
		// selects nothing from a one-position placeholder cache.
		cfg := c.m.Config
		empty := ir.NewTensor(ir.F32, int64(cfg.NLayers), rows, int64(cfg.NHeads), 1, int64(cfg.HeadDim()))
		in[mmada.CacheK], in[mmada.CacheV] = empty, empty
	} else {
		in[mmada.CacheK], in[mmada.CacheV] = c.k, c.v
	}
	in[mmada.CachedPositions] = cachedPositions(int(seq), start, end)
	in[mmada.BlockBias] = blockBias(mask, start, end)

	out, err := s.Run(in)
	if err != nil {
		return nil, err
	}
	if full {
		c.k, c.v, c.lo, c.hi = out[mmada.BlockK], out[mmada.BlockV], lo, hi
		c.ids, c.mask = slices.Clone(ids.I64()), slices.Clone(mask.I64())
		c.FullSteps++
	} else {
		c.BlockSteps++
	}
	return out, nil
}

// sameOutside reports whether two [rows, seq] id tensors agree everywhere
// outside the columns [lo, hi).
func sameOutside(a, b []int64, seq, lo, hi int) bool {
	if len(a) != len(b) {
		return false
	}
	for r := 0; r < len(a); r += seq {
		if !slices.Equal(a[r:r+lo], b[r:r+lo]) || !slices.Equal(a[r+hi:r+seq], b[r+hi:r+seq]) {
			return false
		}
	}
	return true
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
	return c.GreedyAt(ids, mask, lo, hi, span(lo, hi), factor)
}

// GreedyAt implements sampler.PositionHead: the head at the block's masked
// positions only.
func (c *BlockCache) GreedyAt(ids, mask *ir.Tensor, lo, hi int, positions []int64, factor float32) ([]int64, []float64, error) {
	out, err := c.run(passes.HeadGreedy, ids, mask, lo, hi, positions, factor)
	if err != nil {
		return nil, nil, err
	}
	c.m.heads.outBytes = outputBytes(out)
	return out["tokens"].I64(), out["confidence"].F64(), nil
}

// Logits implements sampler.Head.
func (c *BlockCache) Logits(ids, mask *ir.Tensor, lo, hi int, factor float32) (*ir.Tensor, error) {
	return c.LogitsAt(ids, mask, lo, hi, span(lo, hi), factor)
}

// LogitsAt implements sampler.PositionHead.
func (c *BlockCache) LogitsAt(ids, mask *ir.Tensor, lo, hi int, positions []int64, factor float32) (*ir.Tensor, error) {
	out, err := c.run(passes.HeadLogits, ids, mask, lo, hi, positions, factor)
	if err != nil {
		return nil, err
	}
	c.m.heads.outBytes = outputBytes(out)
	return out["logits"], nil
}

// outputBytes counts every output a step returned to Go, the fresh keys
// and values included, which a block step returns but does not use.
func outputBytes(out map[string]*ir.Tensor) int64 {
	n := int64(0)
	for _, t := range out {
		n += int64(t.Len() * t.DType.Size())
	}
	return n
}

// Close releases the cache's sessions.
func (c *BlockCache) Close() error { return c.Release() }

// Release closes the sessions and drops the cache, freeing their memory;
// the next step builds them again.
func (c *BlockCache) Release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for key, s := range c.sessions {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
		delete(c.sessions, key)
	}
	c.k, c.v, c.lo, c.hi, c.ids, c.mask = nil, nil, -1, -1, nil, nil
	return first
}
