// Package mmada builds the LLaDA/MMaDA transformer as an IR graph: token
// embedding, bidirectional attention blocks with RoPE, RMSNorm and a SwiGLU
// MLP, the final norm and the untied (or tied) head.
package mmada

import (
	"fmt"
	"math"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models"
)

// Names of the graph's inputs and output.
const (
	InputIDs      = "input_ids"
	AttentionMask = "attention_mask"
	Logits        = "logits"
)

// MaskValue is the additive bias of a key that a query may not attend to.
// It is float32's lowest finite value, as upstream uses: a fully masked
// padding row then gets equal scores everywhere, so its softmax is uniform
// and finite instead of NaN.
const MaskValue = -math.MaxFloat32

// WeightStore resolves checkpoint tensor names to lazy weights.
type WeightStore = models.WeightStore

// Options select graph variants.
type Options struct {
	// Batch and Seq fix the input dimensions; 0 leaves them symbolic
	// ("batch", "seq").
	Batch, Seq int64
}

// Inputs of the block-cache step graph (BuildBlock): the cached keys
// (after RoPE) and values, [layers, batch, heads, cache_seq, head_dim],
// which a block's first step returns as block_k and block_v.
const (
	CacheK = "cache_k"
	CacheV = "cache_v"
)

// builder carries the state of one graph construction.
type builder struct {
	g    *ir.Graph
	cfg  *frontend.LLaDAConfig
	ws   WeightStore
	used map[string]bool
	// keys and values collect each layer's k and v in the block-cache
	// step graph, which returns them.
	keys, values []*ir.Value
}

// Build returns the transformer graph for a config and its weights. It
// reads only tensor headers: every weight stays a lazy reference. Every
// tensor the config needs must exist with the right shape; the error names
// the tensor and both shapes.
func Build(cfg *frontend.LLaDAConfig, ws WeightStore, opts Options) (*ir.Graph, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &builder{cfg: cfg, ws: ws, used: map[string]bool{}}
	var werr error
	g, err := ir.Build("transformer", func(g *ir.Graph) {
		b.g = g
		werr = b.build(opts)
	})
	if werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

// UsedWeights lists the checkpoint tensors a graph reads.
func UsedWeights(g *ir.Graph) []string {
	names := make([]string, len(g.Params))
	for i, p := range g.Params {
		names[i] = p.Name
	}
	return names
}

// weightError aborts graph construction with a returned error.
type weightError struct{ err error }

// recoverWeightError turns a weightError panic into *err and lets any
// other panic through. Builders defer it.
func recoverWeightError(err *error) {
	if r := recover(); r != nil {
		we, ok := r.(weightError)
		if !ok {
			panic(r)
		}
		*err = we.err
	}
}

func (b *builder) build(opts Options) (err error) {
	defer recoverWeightError(&err)
	cfg := b.cfg
	g := b.g
	batch, seq := ir.S("batch"), ir.S("seq")
	if opts.Batch > 0 {
		batch = ir.D(opts.Batch)
	}
	if opts.Seq > 0 {
		seq = ir.D(opts.Seq)
	}
	d := int64(cfg.DModel)
	vocab := int64(cfg.Vocab())

	ids := g.Input(InputIDs, ir.I64, ir.Shape{batch, seq})
	mask := g.Input(AttentionMask, ir.I64, ir.Shape{batch, seq})

	wte := b.weight("model.transformer.wte.weight", vocab, d)
	x := g.Op("gather", ir.Attrs{"axis": int64(0)}, wte, ids)

	bias := b.attentionBias(mask)
	cos, sin := b.ropeTables(ids)
	for l := 0; l < cfg.NLayers; l++ {
		x = b.block(l, x, bias, cos, sin)
	}
	b.setLogits(x, wte)
	return nil
}

// setLogits applies the final norm and the LM head (wte when the config
// ties them) to x and makes the result the Logits output.
func (b *builder) setLogits(x, wte *ir.Value) {
	d, vocab := int64(b.cfg.DModel), int64(b.cfg.Vocab())
	x = b.rmsNorm(x, b.weight("model.transformer.ln_f.weight", d))
	head := wte
	if !b.cfg.Tied() {
		head = b.weight("model.transformer.ff_out.weight", vocab, d)
	}
	b.g.SetOutput(Logits, b.linear(x, head))
}

// stackLayers stacks per-layer [batch, heads, seq, dim] tensors into
// [layers, batch, heads, seq, dim].
func (b *builder) stackLayers(vs []*ir.Value) *ir.Value {
	parts := make([]*ir.Value, len(vs))
	for i, v := range vs {
		parts[i] = b.g.Op("unsqueeze", ir.Attrs{"axes": []int64{0}}, v)
	}
	return b.g.Op("concat", ir.Attrs{"axis": int64(0)}, parts...)
}

// weight declares a parameter, checks its shape and widens it to f32.
func (b *builder) weight(name string, shape ...int64) *ir.Value {
	p, err := models.DeclareWeight(b.g, b.ws, name, shape, models.WeightSpec{Origin: "the config"})
	if err != nil {
		panic(weightError{err})
	}
	b.used[name] = true
	return p
}

// linear computes x W^T for a weight stored [out, in], as nn.Linear does.
func (b *builder) linear(x, w *ir.Value) *ir.Value {
	wt := b.g.Op("transpose", ir.Attrs{"perm": []int64{1, 0}}, w)
	return b.g.Op("matmul", nil, x, wt)
}

// rmsNorm normalises over the last axis with the config's eps, then scales.
func (b *builder) rmsNorm(x, w *ir.Value) *ir.Value {
	g := b.g
	sq := g.Op("mul", nil, x, x)
	ms := g.Op("reduce_mean", ir.Attrs{"axes": []int64{-1}, "keepdims": int64(1)}, sq)
	r := g.Op("rsqrt", nil, g.Op("add", nil, ms, g.Scalar(ir.F32, b.cfg.RMSNormEps)))
	return g.Op("mul", nil, g.Op("mul", nil, x, r), w)
}

// attentionBias turns the [batch, seq] padding mask into an additive bias
// [batch, 1, seq, seq]: 0 where query i and key j are both real tokens,
// MaskValue elsewhere.
func (b *builder) attentionBias(mask *ir.Value) *ir.Value {
	g := b.g
	m := g.Op("cast", ir.Attrs{"to": ir.F32}, mask)
	mi := g.Op("unsqueeze", ir.Attrs{"axes": []int64{2}}, m)
	mj := g.Op("unsqueeze", ir.Attrs{"axes": []int64{1}}, m)
	pair := g.Op("mul", nil, mi, mj)
	blocked := g.Op("sub", nil, g.Scalar(ir.F32, 1), pair)
	bias := g.Op("mul", nil, blocked, g.Scalar(ir.F32, MaskValue))
	return g.Op("unsqueeze", ir.Attrs{"axes": []int64{1}}, bias)
}

// ropeTables builds cos and sin [seq, head_dim] for positions 0..seq-1:
// inv_freq[j] = 1/theta^(2j/head_dim) in float32, angles pos*inv_freq,
// duplicated over both halves of the head (the rotate-half convention).
func (b *builder) ropeTables(ids *ir.Value) (cos, sin *ir.Value) {
	return b.ropeAt(b.g.Op("arange", ir.Attrs{"axis": int64(1), "dtype": ir.F32}, ids))
}

// ropeAt builds cos and sin [n, head_dim] for the float32 positions pos
// [n]. The full graph and the block graph share it, so that both compute
// the angles with the same float32 arithmetic.
func (b *builder) ropeAt(pos *ir.Value) (cos, sin *ir.Value) {
	g := b.g
	hd := b.cfg.HeadDim()
	half := hd / 2
	inv := ir.NewTensor(ir.F32, int64(half))
	for j := 0; j < half; j++ {
		exp := float32(2*j) / float32(hd)
		inv.F32()[j] = 1 / float32(math.Pow(b.cfg.RoPETheta, float64(exp)))
	}
	ang := g.Op("mul", nil, g.Op("unsqueeze", ir.Attrs{"axes": []int64{1}}, pos), g.Constant(inv))
	full := g.Op("concat", ir.Attrs{"axis": int64(1)}, ang, ang)
	return g.Op("cos", nil, full), g.Op("sin", nil, full)
}

// rope rotates q or k [batch, heads, seq, head_dim].
func (b *builder) rope(x, cos, sin *ir.Value) *ir.Value {
	g := b.g
	hd := int64(b.cfg.HeadDim())
	lo := g.Op("slice", ir.Attrs{"starts": []int64{0}, "ends": []int64{hd / 2}, "axes": []int64{3}}, x)
	hi := g.Op("slice", ir.Attrs{"starts": []int64{hd / 2}, "ends": []int64{hd}, "axes": []int64{3}}, x)
	rot := g.Op("concat", ir.Attrs{"axis": int64(3)}, g.Op("neg", nil, hi), lo)
	return g.Op("add", nil, g.Op("mul", nil, x, cos), g.Op("mul", nil, rot, sin))
}

// heads reshapes [batch, seq, d] to [batch, heads, seq, head_dim].
func (b *builder) heads(x *ir.Value) *ir.Value {
	g := b.g
	h, hd := int64(b.cfg.NHeads), int64(b.cfg.HeadDim())
	r := g.Op("reshape", ir.Attrs{"shape": []int64{0, 0, h, hd}}, x)
	return g.Op("transpose", ir.Attrs{"perm": []int64{0, 2, 1, 3}}, r)
}

// block is one LLaDALlamaBlock: pre-norm attention and a SwiGLU MLP, each
// added to the residual stream.
func (b *builder) block(l int, x, bias, cos, sin *ir.Value) *ir.Value {
	d := int64(b.cfg.DModel)
	p := fmt.Sprintf("model.transformer.blocks.%d.", l)

	h := b.rmsNorm(x, b.weight(p+"attn_norm.weight", d))
	q := b.heads(b.linear(h, b.weight(p+"q_proj.weight", d, d)))
	k := b.heads(b.linear(h, b.weight(p+"k_proj.weight", d, d)))
	v := b.heads(b.linear(h, b.weight(p+"v_proj.weight", d, d)))
	q, k = b.rope(q, cos, sin), b.rope(k, cos, sin)

	return b.attendAndMLP(p, x, q, k, v, bias)
}

// attendAndMLP finishes a block from its rotated q and its keys and
// values: softmax(q kᵀ/√d + bias) v, the output projection added to the
// residual stream, then the pre-norm SwiGLU MLP (ff_proj is the gate).
func (b *builder) attendAndMLP(p string, x, q, k, v, bias *ir.Value) *ir.Value {
	g := b.g
	cfg := b.cfg
	d := int64(cfg.DModel)
	hidden := int64(cfg.MLPHidden())

	scale := 1 / math.Sqrt(float64(cfg.HeadDim()))
	kt := g.Op("transpose", ir.Attrs{"perm": []int64{0, 1, 3, 2}}, k)
	scores := g.Op("mul", nil, g.Op("matmul", nil, q, kt), g.Scalar(ir.F32, scale))
	probs := g.Op("softmax", ir.Attrs{"axis": int64(-1)}, g.Op("add", nil, scores, bias))
	a := g.Op("matmul", nil, probs, v)
	a = g.Op("transpose", ir.Attrs{"perm": []int64{0, 2, 1, 3}}, a)
	a = g.Op("reshape", ir.Attrs{"shape": []int64{0, 0, d}}, a)
	x = g.Op("add", nil, x, b.linear(a, b.weight(p+"attn_out.weight", d, d)))

	h := b.rmsNorm(x, b.weight(p+"ff_norm.weight", d))
	gate := b.linear(h, b.weight(p+"ff_proj.weight", hidden, d))
	up := b.linear(h, b.weight(p+"up_proj.weight", hidden, d))
	act := g.Op("mul", nil, g.Op("silu", nil, gate), up)
	return g.Op("add", nil, x, b.linear(act, b.weight(p+"ff_out.weight", d, hidden)))
}
