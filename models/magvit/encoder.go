package magvit

import (
	"fmt"

	"github.com/mmadac/mmadac/ir"
)

// EncoderOptions fix the input of the vq-encoder graph.
type EncoderOptions struct {
	// Height and Width are the image size in pixels; both must be
	// positive multiples of the downsampling factor.
	Height, Width int
	// Batch fixes the batch size; 0 leaves it symbolic ("batch").
	Batch int64
}

// CheckImageSize returns an error unless height and width are positive
// multiples of factor, naming the nearest sizes that are.
func CheckImageSize(height, width, factor int) error {
	for _, side := range []struct {
		name string
		size int
	}{{"height", height}, {"width", width}} {
		if side.size > 0 && side.size%factor == 0 {
			continue
		}
		lower := side.size / factor * factor
		if lower <= 0 {
			return fmt.Errorf("image %s %d is not a positive multiple of the tokenizer's downsampling factor %d; use %d",
				side.name, side.size, factor, factor)
		}
		return fmt.Errorf("image %s %d is not a multiple of the tokenizer's downsampling factor %d; use %d or %d",
			side.name, side.size, factor, lower, lower+factor)
	}
	return nil
}

// BuildEncoder returns the vq-encoder graph: pixels in [-1, 1] to the
// latent after quant_conv and its codes. It reads only tensor headers.
func BuildEncoder(cfg *Config, ws WeightStore, opts EncoderOptions) (*ir.Graph, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := CheckImageSize(opts.Height, opts.Width, cfg.Encoder.Factor()); err != nil {
		return nil, err
	}
	return build(EncoderGraph, cfg, ws, func(b *builder) {
		pixels := b.g.Input(Pixels, ir.F32, ir.Shape{batchDim(opts.Batch), ir.D(3), ir.D(int64(opts.Height)), ir.D(int64(opts.Width))})
		latent := b.encoder(pixels)
		b.g.SetOutput(Latent, latent)
		b.g.SetOutput(Codes, b.codesFromLatent(latent))
	})
}

// encoder runs the levels from full resolution down, then the middle,
// the output norm and convolution, and quant_conv.
func (b *builder) encoder(x *ir.Value) *ir.Value {
	t := b.cfg.Encoder
	x = b.conv3("encoder.conv_in", x, int64(t.Ch))
	last := len(t.ChMult) - 1
	for i := 0; i <= last; i++ {
		out := int64(t.channels(i))
		for j := 0; j < t.NumResBlocks[i]; j++ {
			x = b.resnetBlock(fmt.Sprintf("encoder.down.%d.block.%d", i, j), x, out)
		}
		if i != last {
			x = b.downsample(fmt.Sprintf("encoder.down.%d.downsample.conv", i), x)
		}
	}
	x = b.mid("encoder", x)
	x = b.normSiLU("encoder.norm_out", x)
	z := int64(b.cfg.ZChannels)
	x = b.conv3("encoder.conv_out", x, z)
	return b.conv1("encoder.quant_conv", x, z)
}

// downsample halves the resolution with a 3x3 convolution of stride 2
// after padding one zero row at the bottom and one zero column at the
// right (none at the top or left). Symmetric padding would shift the
// latent by half a pixel and change the codes.
func (b *builder) downsample(prefix string, x *ir.Value) *ir.Value {
	return b.conv(prefix, x, channelsOf(x), 3, 2, []int64{0, 0, 1, 1})
}
