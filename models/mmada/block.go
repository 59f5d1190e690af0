package mmada

import (
	"fmt"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
)

// Inputs of the block-cache step graph.
const (
	// BlockPositions, i64 [block]: the absolute positions of the block's
	// tokens, for RoPE.
	BlockPositions = "block_positions"
	// CachedPositions, i64 [cached]: the sequence positions whose cached
	// keys and values the step attends to, in any order. The caller
	// leaves out the recomputed rows, whose cached entries are stale.
	CachedPositions = "cached_positions"
	// BlockBias, f32 [batch, 1, block, cached+block]: the additive attention
	// bias over the cached keys followed by the block's own keys. The
	// caller masks padding with MaskValue.
	BlockBias = "block_bias"
)

// Outputs of the block-cache step graph besides the logits: the fresh keys
// (after RoPE) and values of the recomputed rows, [layers, batch, heads,
// block, head_dim]. A step that recomputes every row, with nothing cached,
// returns in them the cache that the block's later steps read.
const (
	BlockK = "block_k"
	BlockV = "block_v"
)

// BlockOptions size the block-cache step graph. Batch is static. Block,
// the number of recomputed rows, is static when positive. Zero makes it
// the symbolic dimension "block", so that one graph serves every width:
// the whole sequence at a block's first step, then the block (dual cache)
// or the tail from the block on (prefix cache). The cache's length
// ("cache_seq") and the number of cached positions attended to ("cached")
// are always symbolic.
type BlockOptions struct {
	Batch, Block int64
}

// BuildBlock builds the step graph of the approximate block cache, after
// Fast-dLLM's prefix and dual caches. Only the recomputed rows run through
// the layers. They attend to the cached keys and values of the positions
// listed in cached_positions, and to their own fresh keys and values. The
// cache (inputs cache_k, cache_v) is what the block_k and block_v outputs
// of the block's first step returned. It returns logits [batch, block, vocab] for the
// recomputed rows. The result is approximate: the cached entries are not
// updated while the block's tokens change.
func BuildBlock(cfg *frontend.LLaDAConfig, ws WeightStore, o BlockOptions) (*ir.Graph, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Batch <= 0 || o.Block < 0 {
		return nil, fmt.Errorf("block graph needs a positive batch and a block width >= 0 (0 for symbolic), got %+v", o)
	}
	b := &builder{cfg: cfg, ws: ws, used: map[string]bool{}}
	var werr error
	g, err := ir.Build("transformer_block", func(g *ir.Graph) {
		b.g = g
		werr = b.buildBlock(o)
	})
	if werr != nil {
		return nil, werr
	}
	return g, err
}

func (b *builder) buildBlock(o BlockOptions) (err error) {
	defer recoverWeightError(&err)
	cfg := b.cfg
	g := b.g
	d := int64(cfg.DModel)
	h, hd := int64(cfg.NHeads), int64(cfg.HeadDim())
	layers := int64(cfg.NLayers)
	vocab := int64(cfg.Vocab())

	block := ir.D(o.Block)
	if o.Block == 0 {
		block = ir.S("block")
	}
	batch := ir.D(o.Batch)
	ids := g.Input(InputIDs, ir.I64, ir.Shape{batch, block})
	pos := g.Input(BlockPositions, ir.I64, ir.Shape{block})
	cacheShape := ir.Shape{ir.D(layers), batch, ir.D(h), ir.S("cache_seq"), ir.D(hd)}
	ck := g.Input(CacheK, ir.F32, cacheShape)
	cv := g.Input(CacheV, ir.F32, cacheShape)
	cached := ir.S("cached")
	rows := g.Input(CachedPositions, ir.I64, ir.Shape{cached})
	// The keys are the cached ones followed by the block's own, so the
	// bias has the dimension the concat of the two makes.
	bias := g.Input(BlockBias, ir.F32, ir.Shape{batch, ir.D(1), block, ir.SumDim(cached, block)})
	// Only the valid cached entries are kept, once for all layers, so that
	// attention does no work on stale keys.
	ck = g.Op("gather", ir.Attrs{"axis": int64(3)}, ck, rows)
	cv = g.Op("gather", ir.Attrs{"axis": int64(3)}, cv, rows)

	wte := b.weight("model.transformer.wte.weight", vocab, d)
	x := g.Op("gather", ir.Attrs{"axis": int64(0)}, wte, ids)
	cos, sin := b.ropeAt(g.Op("cast", ir.Attrs{"to": ir.F32}, pos))
	for l := 0; l < cfg.NLayers; l++ {
		x = b.blockLayer(l, x, ck, cv, bias, cos, sin)
	}
	b.setLogits(x, wte)
	g.SetOutput(BlockK, b.stackLayers(b.keys))
	g.SetOutput(BlockV, b.stackLayers(b.values))
	return nil
}

// blockLayer is one transformer block for the block tokens, attending to
// the cached keys and values of layer l followed by the block's own.
func (b *builder) blockLayer(l int, x, ck, cv, bias, cos, sin *ir.Value) *ir.Value {
	g := b.g
	d := int64(b.cfg.DModel)
	p := fmt.Sprintf("model.transformer.blocks.%d.", l)

	hn := b.rmsNorm(x, b.weight(p+"attn_norm.weight", d))
	q := b.heads(b.linear(hn, b.weight(p+"q_proj.weight", d, d)))
	k := b.heads(b.linear(hn, b.weight(p+"k_proj.weight", d, d)))
	v := b.heads(b.linear(hn, b.weight(p+"v_proj.weight", d, d)))
	q, k = b.rope(q, cos, sin), b.rope(k, cos, sin)
	b.keys, b.values = append(b.keys, k), append(b.values, v)

	layer := g.Scalar(ir.I64, float64(l))
	keys := g.Op("concat", ir.Attrs{"axis": int64(2)}, g.Op("gather", ir.Attrs{"axis": int64(0)}, ck, layer), k)
	values := g.Op("concat", ir.Attrs{"axis": int64(2)}, g.Op("gather", ir.Attrs{"axis": int64(0)}, cv, layer), v)

	return b.attendAndMLP(p, x, q, keys, values, bias)
}
