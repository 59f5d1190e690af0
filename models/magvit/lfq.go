package magvit

import (
	"fmt"
	"slices"

	"github.com/mmadac/mmadac/ir"
)

// Names of the quantizer's buffers in the checkpoint. Both are optional.
const (
	// EmbeddingBuffer is the ±1 codebook, f32 [2^z, z].
	EmbeddingBuffer = "quantize.embedding"
	// PowerValsBuffer contains the bit weights 2^(z-1) ... 2, 1, i64 [z].
	PowerValsBuffer = "quantize.power_vals"
)

// CodeBits returns the decoder input of one code: z values, +1 where bit
// z-1-c of code is set and -1 where it is clear, so that channel 0 carries
// the most significant bit.
func CodeBits(code int64, z int) []float32 {
	out := make([]float32, z)
	for c := range out {
		if code>>(z-1-c)&1 == 1 {
			out[c] = 1
		} else {
			out[c] = -1
		}
	}
	return out
}

// bitsTable returns the codebook [2^z, z], row i = CodeBits(i, z).
func bitsTable(z int) *ir.Tensor {
	n := int64(1) << z
	t := ir.NewTensor(ir.F32, n, int64(z))
	d := t.F32()
	for code := int64(0); code < n; code++ {
		copy(d[code*int64(z):], CodeBits(code, z))
	}
	return t
}

// powers returns the bit weights 2^(z-1-c) for c = 0..z-1.
func powers(z int) []int64 {
	out := make([]int64, z)
	for c := range out {
		out[c] = 1 << (z - 1 - c)
	}
	return out
}

// codesFromLatent quantizes latent [B, z, h, w] to codes [B, h*w]: bit c
// is latent[c] > 0 and has weight 2^(z-1-c). The weighted sum runs in
// float32, which is exact because the codes stay below 2^MaxZChannels,
// far below 2^24.
func (b *builder) codesFromLatent(latent *ir.Value) *ir.Value {
	g := b.g
	z := b.cfg.ZChannels
	h, w := latent.Type.Shape[2].Size, latent.Type.Shape[3].Size
	bits := g.Op("cast", ir.Attrs{"to": ir.F32}, g.Op("greater", nil, latent, g.Scalar(ir.F32, 0)))
	weights := ir.NewTensor(ir.F32, 1, int64(z), 1, 1)
	for c, p := range powers(z) {
		weights.F32()[c] = float32(p)
	}
	sum := g.Op("reduce_sum", ir.Attrs{"axes": []int64{1}, "keepdims": int64(0)}, g.Op("mul", nil, bits, g.Constant(weights)))
	codes := g.Op("cast", ir.Attrs{"to": ir.I64}, sum)
	return g.Op("reshape", ir.Attrs{"shape": []int64{0, h * w}}, codes)
}

// latentFromCodes looks codes [B, N] up in the ±1 table and lays the
// result out as the latent [B, z, rows, cols], code n at row n / cols and
// column n % cols.
func (b *builder) latentFromCodes(codes *ir.Value, grid [2]int) *ir.Value {
	g := b.g
	z := int64(b.cfg.ZChannels)
	bits := g.Op("gather", ir.Attrs{"axis": int64(0)}, g.Constant(bitsTable(b.cfg.ZChannels)), codes) // [B, N, z]
	grid4 := g.Op("reshape", ir.Attrs{"shape": []int64{0, int64(grid[0]), int64(grid[1]), z}}, bits)
	return g.Op("transpose", ir.Attrs{"perm": []int64{0, 3, 1, 2}}, grid4)
}

// checkBufferHeaders checks the shape and dtype of the quantizer buffers
// that the checkpoint has, without reading their data.
func checkBufferHeaders(cfg *Config, ws WeightStore) error {
	z := int64(cfg.ZChannels)
	if info, ok := ws.Info(EmbeddingBuffer); ok {
		if !slices.Equal(info.Shape, []int64{cfg.CodebookSize(), z}) {
			return fmt.Errorf("tensor %s has shape %v, want [%d %d] for z_channels %d; the checkpoint does not match config.json",
				EmbeddingBuffer, info.Shape, cfg.CodebookSize(), z, z)
		}
		if !info.DType.IsFloat() {
			return fmt.Errorf("tensor %s has dtype %v; want a float type", EmbeddingBuffer, info.DType)
		}
	}
	if info, ok := ws.Info(PowerValsBuffer); ok {
		if !slices.Equal(info.Shape, []int64{z}) {
			return fmt.Errorf("tensor %s has shape %v, want [%d] for z_channels %d; the checkpoint does not match config.json",
				PowerValsBuffer, info.Shape, z, z)
		}
		switch info.DType {
		case ir.I64, ir.I32, ir.F32, ir.F64:
		default:
			return fmt.Errorf("tensor %s has dtype %v; want i64 (or i32, f32, f64)", PowerValsBuffer, info.DType)
		}
	}
	return nil
}

// CheckQuantizerBuffers reads the quantizer buffers the checkpoint has and
// checks that they contain what the graphs compute: the ±1 table with the
// most significant bit in channel 0, and the powers of two from 2^(z-1)
// down to 1. A mismatch means the checkpoint uses another bit order,
// which the graphs do not implement.
func CheckQuantizerBuffers(cfg *Config, ws WeightStore) error {
	if err := checkBufferHeaders(cfg, ws); err != nil {
		return err
	}
	z := cfg.ZChannels
	if _, ok := ws.Info(EmbeddingBuffer); ok {
		t, err := readTensor(ws, EmbeddingBuffer)
		if err != nil {
			return err
		}
		got := t.AsF32()
		want := bitsTable(z).F32()
		for i := range want {
			if got[i] != want[i] {
				code, c := i/z, i%z
				return fmt.Errorf("tensor %s: code %d channel %d is %g, want %g (channel 0 is the most significant bit); the quantizer's bit order is not MAGVIT-v2's",
					EmbeddingBuffer, code, c, got[i], want[i])
			}
		}
	}
	if _, ok := ws.Info(PowerValsBuffer); ok {
		t, err := readTensor(ws, PowerValsBuffer)
		if err != nil {
			return err
		}
		got := make([]float64, z)
		switch d := t.Data.(type) {
		case []int64:
			for i, v := range d {
				got[i] = float64(v)
			}
		case []int32:
			for i, v := range d {
				got[i] = float64(v)
			}
		case []float32:
			for i, v := range d {
				got[i] = float64(v)
			}
		case []float64:
			copy(got, d)
		}
		for c, p := range powers(z) {
			if got[c] != float64(p) {
				return fmt.Errorf("tensor %s is %v, want %v (channel 0 the most significant bit); the quantizer's bit order is not MAGVIT-v2's",
					PowerValsBuffer, got, powers(z))
			}
		}
	}
	return nil
}

// readTensor reads one stored tensor whole.
func readTensor(ws WeightStore, name string) (*ir.Tensor, error) {
	info, _ := ws.Info(name)
	src, err := ws.Source(name)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	raw, err := src.Bytes()
	if err != nil {
		return nil, fmt.Errorf("reading tensor %s: %w", name, err)
	}
	t, err := ir.TensorFromBytes(info.DType, info.Shape, raw)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return t, nil
}

// UnusedTensors returns the checkpoint tensor names, sorted, that none of
// the graphs reads as a parameter, leaving out the two quantizer buffers.
// Upstream loads the tokenizer strictly, so a leftover tensor means
// config.json describes another architecture than the weights.
func UnusedTensors(names []string, graphs ...*ir.Graph) []string {
	used := map[string]bool{EmbeddingBuffer: true, PowerValsBuffer: true}
	for _, g := range graphs {
		for _, p := range g.Params {
			used[p.Name] = true
		}
	}
	var out []string
	for _, n := range names {
		if !used[n] {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
