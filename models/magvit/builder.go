// Package magvit builds the MAGVIT-v2 image tokenizer of MMaDA and Show-o
// (showlab/magvitv2) as IR graphs: the convolutional encoder with its
// lookup-free quantizer, which turns pixels into integer codes, and the
// decoder, which turns codes back into pixels.
//
// # Graphs
//
//   - vq-encoder: input "pixels" f32 [B, 3, H, W] in [-1, 1]; outputs
//     "latent" f32 [B, z, H/f, W/f] (after quant_conv) and "codes" i64
//     [B, H/f * W/f], row-major over the latent grid.
//   - vq-decoder: input "codes" i64 [B, N]; output "pixels" f32
//     [B, 3, h*f, w*f] for a grid of h x w = N codes, not clamped.
//
// f is the downsampling factor (16 for MAGVIT-v2) and z the latent
// channel count (13). The batch dimension is symbolic unless the options
// fix it; the image size and the grid are static.
//
// # Lookup-free quantizer
//
// A code has one bit per latent channel, channel 0 the most significant:
// bit c is set when z[c] > 0 (strictly), and the decoder's input for a
// code is +1 for a set bit and -1 for a clear one. There is no learned
// codebook. The checkpoint's buffers quantize.embedding (the ±1 table)
// and quantize.power_vals (the powers of two) are accepted and checked
// but not required, because the graphs compute both.
package magvit

import (
	"math"

	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models"
)

// Names of the graphs and of their inputs and outputs.
const (
	EncoderGraph = "vq-encoder"
	DecoderGraph = "vq-decoder"
	Pixels       = "pixels"
	Latent       = "latent"
	Codes        = "codes"
)

// WeightStore resolves checkpoint tensor names to lazy weights;
// *frontend.Checkpoint implements it.
type WeightStore = models.WeightStore

// builder carries the state of one graph construction.
type builder struct {
	g   *ir.Graph
	cfg *Config
	ws  WeightStore
}

// weightError aborts graph construction with a returned error.
type weightError struct{ err error }

// build runs fn inside ir.Build and turns both a weight problem and an op
// that does not fit into a returned error. The caller has validated cfg.
func build(name string, cfg *Config, ws WeightStore, fn func(b *builder)) (*ir.Graph, error) {
	if err := checkBufferHeaders(cfg, ws); err != nil {
		return nil, err
	}
	var werr error
	g, err := ir.Build(name, func(g *ir.Graph) {
		b := &builder{g: g, cfg: cfg, ws: ws}
		defer func() {
			if r := recover(); r != nil {
				we, ok := r.(weightError)
				if !ok {
					panic(r)
				}
				werr = we.err
			}
		}()
		fn(b)
	})
	if werr != nil {
		return nil, werr
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

// weight declares a parameter, checks its shape and widens it to f32.
func (b *builder) weight(name string, shape ...int64) *ir.Value {
	p, err := models.DeclareWeight(b.g, b.ws, name, shape, models.WeightSpec{
		Origin: "the architecture",
		Hint:   "the checkpoint does not match the architecture in config.json",
	})
	if err != nil {
		panic(weightError{err})
	}
	return p
}

// channelsOf returns the static channel count of an NCHW value.
func channelsOf(x *ir.Value) int64 { return x.Type.Shape[1].Size }

// conv applies the convolution prefix.weight [out, in, k, k] and its bias.
// pads are [top, left, bottom, right].
func (b *builder) conv(prefix string, x *ir.Value, out, k, stride int64, pads []int64) *ir.Value {
	w := b.weight(prefix+".weight", out, channelsOf(x), k, k)
	bias := b.weight(prefix+".bias", out)
	return b.g.Op("conv2d", ir.Attrs{"strides": []int64{stride, stride}, "pads": pads}, x, w, bias)
}

// conv3 is a 3x3 convolution with zero padding 1, which keeps the size.
func (b *builder) conv3(prefix string, x *ir.Value, out int64) *ir.Value {
	return b.conv(prefix, x, out, 3, 1, []int64{1, 1, 1, 1})
}

// conv1 is a 1x1 convolution.
func (b *builder) conv1(prefix string, x *ir.Value, out int64) *ir.Value {
	return b.conv(prefix, x, out, 1, 1, []int64{0, 0, 0, 0})
}

// norm is GroupNorm with the config's groups and eps and the affine
// parameters prefix.weight and prefix.bias.
func (b *builder) norm(prefix string, x *ir.Value) *ir.Value {
	c := channelsOf(x)
	scale := b.weight(prefix+".weight", c)
	bias := b.weight(prefix+".bias", c)
	return b.g.Op("group_norm", ir.Attrs{"groups": int64(b.cfg.GroupNormGroups), "eps": b.cfg.GroupNormEps}, x, scale, bias)
}

// normSiLU is GroupNorm followed by x*sigmoid(x).
func (b *builder) normSiLU(prefix string, x *ir.Value) *ir.Value {
	return b.g.Op("silu", nil, b.norm(prefix, x))
}

// resnetBlock maps x to x' + conv2(silu(norm2(conv1(silu(norm1(x)))))),
// where x' is x, or its 1x1 projection nin_shortcut when the channel
// count changes. Dropout is 0 at inference and there is no time
// embedding.
func (b *builder) resnetBlock(prefix string, x *ir.Value, out int64) *ir.Value {
	h := b.conv3(prefix+".conv1", b.normSiLU(prefix+".norm1", x), out)
	h = b.conv3(prefix+".conv2", b.normSiLU(prefix+".norm2", h), out)
	skip := x
	if channelsOf(x) != out {
		skip = b.conv1(prefix+".nin_shortcut", x, out)
	}
	return b.g.Op("add", nil, skip, h)
}

// attnBlock is single-head self-attention over all H*W positions, with
// 1x1 convolutions as the projections: scores q·k scaled by C^-1/2 after
// the product, softmax over the keys, and the output projection added to
// the un-normalised input.
func (b *builder) attnBlock(prefix string, x *ir.Value) *ir.Value {
	g := b.g
	c := channelsOf(x)
	hgt, wid := x.Type.Shape[2].Size, x.Type.Shape[3].Size
	n := hgt * wid
	h := b.norm(prefix+".norm", x)
	flat := func(v *ir.Value) *ir.Value {
		return g.Op("reshape", ir.Attrs{"shape": []int64{0, c, n}}, v)
	}
	q := flat(b.conv1(prefix+".q", h, c)) // [B, C, N]
	k := flat(b.conv1(prefix+".k", h, c))
	v := flat(b.conv1(prefix+".v", h, c))

	qt := g.Op("transpose", ir.Attrs{"perm": []int64{0, 2, 1}}, q) // [B, N, C]
	scores := g.Op("matmul", nil, qt, k)                           // [B, N(query), N(key)]
	scores = g.Op("mul", nil, scores, g.Scalar(ir.F32, 1/math.Sqrt(float64(c))))
	probs := g.Op("softmax", ir.Attrs{"axis": int64(-1)}, scores)
	pt := g.Op("transpose", ir.Attrs{"perm": []int64{0, 2, 1}}, probs) // [B, N(key), N(query)]
	o := g.Op("matmul", nil, v, pt)                                    // [B, C, N(query)]
	o = g.Op("reshape", ir.Attrs{"shape": []int64{0, c, hgt, wid}}, o)
	return g.Op("add", nil, x, b.conv1(prefix+".proj_out", o, c))
}

// mid is the middle of either tower: a residual block, attention, and a
// second residual block at constant width.
func (b *builder) mid(prefix string, x *ir.Value) *ir.Value {
	c := channelsOf(x)
	x = b.resnetBlock(prefix+".mid.block_1", x, c)
	x = b.attnBlock(prefix+".mid.attn_1", x)
	return b.resnetBlock(prefix+".mid.block_2", x, c)
}

// batchDim returns the static batch size, or the symbolic "batch".
func batchDim(n int64) ir.Dim {
	if n > 0 {
		return ir.D(n)
	}
	return ir.S("batch")
}
