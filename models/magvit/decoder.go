package magvit

import (
	"fmt"
	"math"

	"github.com/mmadac/mmadac/ir"
)

// DecoderOptions fix the input of the vq-decoder graph.
type DecoderOptions struct {
	// NumTokens is the number of codes per image.
	NumTokens int
	// Grid is the latent grid as (rows, columns), with rows*columns =
	// NumTokens. Zero means a square grid, which needs a square
	// NumTokens (upstream's decode_code does the same).
	Grid [2]int
	// Batch fixes the batch size; 0 leaves it symbolic ("batch").
	Batch int64
}

// GridFor resolves the latent grid of n codes: grid itself when set
// (it must contain exactly n codes), else the square grid of side sqrt(n).
func GridFor(n int, grid [2]int) ([2]int, error) {
	if n <= 0 {
		return [2]int{}, fmt.Errorf("code count %d must be positive", n)
	}
	if grid != [2]int{} {
		if grid[0] <= 0 || grid[1] <= 0 {
			return [2]int{}, fmt.Errorf("grid %dx%d must have positive sides", grid[0], grid[1])
		}
		if grid[0]*grid[1] != n {
			return [2]int{}, fmt.Errorf("grid %dx%d has %d cells for %d codes", grid[0], grid[1], grid[0]*grid[1], n)
		}
		return grid, nil
	}
	side := int(math.Sqrt(float64(n)))
	for side*side > n {
		side--
	}
	for (side+1)*(side+1) <= n {
		side++
	}
	if side*side != n {
		return [2]int{}, fmt.Errorf("%d codes do not form a square grid; pass the grid (rows x columns) explicitly", n)
	}
	return [2]int{side, side}, nil
}

// BuildDecoder returns the vq-decoder graph: codes to pixels (nominally
// in [-1, 1], not clamped). It reads only tensor headers. Codes must lie
// in [0, 2^z); the graph does not check them (a gather out of range
// fails on interp and is undefined on other backends), so callers check
// before running.
func BuildDecoder(cfg *Config, ws WeightStore, opts DecoderOptions) (*ir.Graph, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	grid, err := GridFor(opts.NumTokens, opts.Grid)
	if err != nil {
		return nil, err
	}
	return build(DecoderGraph, cfg, ws, func(b *builder) {
		codes := b.g.Input(Codes, ir.I64, ir.Shape{batchDim(opts.Batch), ir.D(int64(opts.NumTokens))})
		b.g.SetOutput(Pixels, b.decoder(b.latentFromCodes(codes, grid)))
	})
}

// decoder runs post_quant_conv, conv_in and the middle, then the levels
// from the coarsest up, each but level 0 followed by an upsample, and
// the output norm and convolution.
func (b *builder) decoder(z *ir.Value) *ir.Value {
	t := b.cfg.Decoder
	last := len(t.ChMult) - 1
	x := b.conv1("decoder.post_quant_conv", z, int64(b.cfg.ZChannels))
	x = b.conv3("decoder.conv_in", x, int64(t.channels(last)))
	x = b.mid("decoder", x)
	for i := last; i >= 0; i-- {
		out := int64(t.channels(i))
		for j := 0; j < t.NumResBlocks[i]; j++ {
			x = b.resnetBlock(fmt.Sprintf("decoder.up.%d.block.%d", i, j), x, out)
		}
		if i != 0 {
			x = b.upsample(fmt.Sprintf("decoder.up.%d.upsample.conv", i), x)
		}
	}
	x = b.normSiLU("decoder.norm_out", x)
	return b.conv3("decoder.conv_out", x, 3)
}

// upsample doubles the resolution by nearest-neighbour copying (each value
// to a 2x2 block), then applies a 3x3 convolution with padding 1.
func (b *builder) upsample(prefix string, x *ir.Value) *ir.Value {
	x = b.g.Op("resize_nearest", ir.Attrs{"scale": int64(2)}, x)
	return b.conv3(prefix, x, channelsOf(x))
}
