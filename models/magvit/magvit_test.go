package magvit

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/runtime/interp"
)

const (
	tinyDir      = "../../testdata/upstream-tiny/magvit"
	manifestPath = "../../testdata/manifests/magvitv2-tensors.json"
)

func TestCodeBitsMSBFirst(t *testing.T) {
	m, p := float32(-1), float32(1)
	for _, c := range []struct {
		code int64
		want []float32
	}{
		{0, slices.Repeat([]float32{m}, 13)},
		{8191, slices.Repeat([]float32{p}, 13)},
		{1, append(slices.Repeat([]float32{m}, 12), p)},
		{4096, append([]float32{p}, slices.Repeat([]float32{m}, 12)...)},
		{5461, []float32{p, m, p, m, p, m, p, m, p, m, p, m, p}},
	} {
		if got := CodeBits(c.code, 13); !slices.Equal(got, c.want) {
			t.Errorf("CodeBits(%d) = %v, want %v", c.code, got, c.want)
		}
	}
}

func TestGridFor(t *testing.T) {
	for _, c := range []struct {
		n    int
		grid [2]int
		want [2]int
		err  string
	}{
		{1024, [2]int{}, [2]int{32, 32}, ""},
		{1, [2]int{}, [2]int{1, 1}, ""},
		{16, [2]int{2, 8}, [2]int{2, 8}, ""},
		{1000, [2]int{}, [2]int{}, "1000 codes do not form a square grid; pass the grid"},
		{16, [2]int{4, 5}, [2]int{}, "grid 4x5 has 20 cells for 16 codes"},
		{16, [2]int{-4, -4}, [2]int{}, "positive sides"},
		{0, [2]int{}, [2]int{}, "code count 0 must be positive"},
	} {
		got, err := GridFor(c.n, c.grid)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("GridFor(%d, %v): error %v, want %q", c.n, c.grid, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("GridFor(%d, %v) = %v, %v; want %v", c.n, c.grid, got, err, c.want)
		}
	}
}

func TestCheckImageSize(t *testing.T) {
	if err := CheckImageSize(512, 256, 16); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		h, w int
		msg  string
	}{
		{500, 512, "image height 500 is not a multiple of the tokenizer's downsampling factor 16; use 496 or 512"},
		{512, 8, "image width 8 is not a positive multiple of the tokenizer's downsampling factor 16; use 16"},
		{0, 16, "image height 0 is not a positive multiple of the tokenizer's downsampling factor 16; use 16"},
	} {
		if err := CheckImageSize(c.h, c.w, 16); err == nil || err.Error() != c.msg {
			t.Errorf("CheckImageSize(%d, %d): %v, want %q", c.h, c.w, err, c.msg)
		}
	}
}

// quantizerGraph builds a graph with only the quantizer: latent in, codes
// out, and codes in, latent out.
func quantizerGraph(t *testing.T, z int, grid [2]int) *ir.Graph {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ZChannels = z
	g, err := ir.Build("lfq", func(g *ir.Graph) {
		b := &builder{g: g, cfg: cfg}
		latent := g.Input(Latent, ir.F32, ir.Shape{ir.S("batch"), ir.D(int64(z)), ir.D(int64(grid[0])), ir.D(int64(grid[1]))})
		codes := g.Input(Codes, ir.I64, ir.Shape{ir.S("batch"), ir.D(int64(grid[0] * grid[1]))})
		g.SetOutput("codes_out", b.codesFromLatent(latent))
		g.SetOutput("latent_out", b.latentFromCodes(codes, grid))
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestQuantizerRoundTrip(t *testing.T) {
	// Every 13-bit code, laid out on a 64x128 grid, decodes to ±1 bits
	// and encodes back to itself.
	grid := [2]int{64, 128}
	g := quantizerGraph(t, 13, grid)
	s, err := interp.New(g)
	if err != nil {
		t.Fatal(err)
	}
	codes := ir.NewTensor(ir.I64, 1, 8192)
	for i := range codes.I64() {
		codes.I64()[i] = int64(i)
	}
	out, err := s.Run(map[string]*ir.Tensor{Codes: codes, Latent: ir.NewTensor(ir.F32, 1, 13, 64, 128)})
	if err != nil {
		t.Fatal(err)
	}
	latent := out["latent_out"]
	if fmt.Sprint(latent.Shape) != "[1 13 64 128]" {
		t.Fatalf("latent shape %v", latent.Shape)
	}
	// Code 5461 sits at row 42, column 85; its channels alternate +1, -1.
	for c := range 13 {
		got := latent.F32()[c*8192+42*128+85]
		if want := CodeBits(5461, 13)[c]; got != want {
			t.Errorf("code 5461 channel %d = %g, want %g", c, got, want)
		}
	}
	back, err := s.Run(map[string]*ir.Tensor{Codes: codes, Latent: latent})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back["codes_out"].I64(), codes.I64()) {
		t.Error("codes do not survive decode then encode")
	}
}

func TestQuantizerStrictSign(t *testing.T) {
	// Bit c is set only for values > 0: zero and negative zero give 0.
	g := quantizerGraph(t, 3, [2]int{1, 4})
	s, err := interp.New(g)
	if err != nil {
		t.Fatal(err)
	}
	negZero := float32(0)
	negZero = -negZero
	latent := ir.FromF32([]float32{
		0.5, 0, -1, 1e-30, // channel 0 (MSB) at the four positions
		negZero, 2, 2, -2,
		3, 3, 0, 1,
	}, 1, 3, 1, 4)
	out, err := s.Run(map[string]*ir.Tensor{Latent: latent, Codes: ir.NewTensor(ir.I64, 1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out["codes_out"].I64(), []int64{0b101, 0b011, 0b010, 0b101}; !slices.Equal(got, want) {
		t.Errorf("codes %v, want %v", got, want)
	}
}

func openTiny(t *testing.T) (*Config, *frontend.Checkpoint) {
	t.Helper()
	cfg, err := LoadConfig(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := frontend.OpenCheckpoint(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return cfg, ck
}

func TestBuildTinyUsesEveryTensor(t *testing.T) {
	cfg, ck := openTiny(t)
	enc, err := BuildEncoder(cfg, ck, EncoderOptions{Height: 16, Width: 16})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := BuildDecoder(cfg, ck, DecoderOptions{NumTokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*ir.Graph{enc, dec} {
		if err := ir.Verify(g); err != nil {
			t.Errorf("%s: %v", g.Name, err)
		}
	}
	if unused := UnusedTensors(ck.Names(), enc, dec); len(unused) != 0 {
		t.Errorf("tensors left unused: %v", unused)
	}
	if err := CheckQuantizerBuffers(cfg, ck); err != nil {
		t.Error(err)
	}
	if got := enc.OutputValue(Codes).Type.String(); got != "i64[batch,16]" {
		t.Errorf("encoder codes %s, want i64[batch,16]", got)
	}
	if got := enc.OutputValue(Latent).Type.String(); got != "f32[batch,6,4,4]" {
		t.Errorf("encoder latent %s, want f32[batch,6,4,4]", got)
	}
	if got := dec.OutputValue(Pixels).Type.String(); got != "f32[batch,3,16,16]" {
		t.Errorf("decoder pixels %s, want f32[batch,3,16,16]", got)
	}
}

func TestBuildFixedBatch(t *testing.T) {
	cfg, ck := openTiny(t)
	dec, err := BuildDecoder(cfg, ck, DecoderOptions{NumTokens: 8, Grid: [2]int{2, 4}, Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := dec.OutputValue(Pixels).Type.String(); got != "f32[3,3,8,16]" {
		t.Errorf("decoder pixels %s, want f32[3,3,8,16]", got)
	}
}

func TestBuildRejectsBadOptions(t *testing.T) {
	cfg, ck := openTiny(t)
	if _, err := BuildEncoder(cfg, ck, EncoderOptions{Height: 18, Width: 16}); err == nil || !strings.Contains(err.Error(), "height 18 is not a multiple") {
		t.Errorf("height 18: error %v", err)
	}
	if _, err := BuildDecoder(cfg, ck, DecoderOptions{NumTokens: 12}); err == nil || !strings.Contains(err.Error(), "do not form a square grid") {
		t.Errorf("12 tokens: error %v", err)
	}
	bad := *cfg
	bad.ZChannels = 0
	if _, err := BuildDecoder(&bad, ck, DecoderOptions{NumTokens: 16}); err == nil {
		t.Error("z_channels 0 accepted")
	}
}

// memStore is a WeightStore over tensors held in memory.
type memStore map[string]*ir.Tensor

func (m memStore) Info(name string) (frontend.TensorInfo, bool) {
	t, ok := m[name]
	if !ok {
		return frontend.TensorInfo{}, false
	}
	return frontend.TensorInfo{Name: name, DType: t.DType, Shape: t.Shape}, true
}

func (m memStore) Source(name string) (ir.WeightSource, error) {
	return memSource{m[name]}, nil
}

type memSource struct{ t *ir.Tensor }

func (s memSource) Location() (string, int64, int64) { return "", 0, 0 }
func (s memSource) Bytes() ([]byte, error)           { return ir.TensorBytes(s.t), nil }

// tinyStore loads the tiny checkpoint into memory for editing.
func tinyStore(t *testing.T) (*Config, memStore) {
	t.Helper()
	cfg, ck := openTiny(t)
	m := memStore{}
	for _, name := range ck.Names() {
		tensor, err := ck.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		m[name] = tensor
	}
	return cfg, m
}

func TestBuildRejectsBadWeights(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(m memStore)
		reason string
	}{
		{"missing", func(m memStore) { delete(m, "decoder.mid.attn_1.q.weight") }, "checkpoint has no tensor decoder.mid.attn_1.q.weight (shape [64 64 1 1] expected)"},
		{"shape", func(m memStore) { m["decoder.conv_out.bias"] = ir.NewTensor(ir.F32, 4) }, "tensor decoder.conv_out.bias has shape [4], the architecture needs [3]"},
		{"dtype", func(m memStore) { m["decoder.conv_out.bias"] = ir.NewTensor(ir.I64, 3) }, "has dtype i64; want f32, f16 or bf16"},
		{"embedding shape", func(m memStore) { m[EmbeddingBuffer] = ir.NewTensor(ir.F32, 64, 5) }, "quantize.embedding has shape [64 5], want [64 6]"},
		{"embedding dtype", func(m memStore) { m[EmbeddingBuffer] = ir.NewTensor(ir.I64, 64, 6) }, "want a float type"},
		{"power_vals shape", func(m memStore) { m[PowerValsBuffer] = ir.NewTensor(ir.I64, 13) }, "quantize.power_vals has shape [13], want [6]"},
		{"power_vals dtype", func(m memStore) { m[PowerValsBuffer] = ir.NewTensor(ir.Bool, 6) }, "want i64 (or i32, f32, f64)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, m := tinyStore(t)
			c.edit(m)
			_, err := BuildDecoder(cfg, m, DecoderOptions{NumTokens: 16})
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %v, want one containing %q", err, c.reason)
			}
		})
	}
}

func TestBuildWidensHalfWeights(t *testing.T) {
	cfg, m := tinyStore(t)
	w := m["decoder.conv_out.weight"]
	half := ir.NewTensor(ir.BF16, w.Shape...)
	for i, v := range w.F32() {
		half.U16()[i] = ir.F32ToBF16(v)
	}
	m["decoder.conv_out.weight"] = half
	dec, err := BuildDecoder(cfg, m, DecoderOptions{NumTokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Verify(dec); err != nil {
		t.Error(err)
	}
}

func TestCheckQuantizerBuffersValues(t *testing.T) {
	cfg, m := tinyStore(t)
	if err := CheckQuantizerBuffers(cfg, m); err != nil {
		t.Fatalf("tiny checkpoint: %v", err)
	}
	// Buffers are optional.
	noBuffers := memStore{}
	for k, v := range m {
		if k != EmbeddingBuffer && k != PowerValsBuffer {
			noBuffers[k] = v
		}
	}
	if err := CheckQuantizerBuffers(cfg, noBuffers); err != nil {
		t.Errorf("without buffers: %v", err)
	}
	// Other dtypes of power_vals are tolerated when the values fit.
	m[PowerValsBuffer] = ir.FromF32([]float32{32, 16, 8, 4, 2, 1}, 6)
	if err := CheckQuantizerBuffers(cfg, m); err != nil {
		t.Errorf("f32 power_vals: %v", err)
	}
	m[PowerValsBuffer] = ir.FromI64([]int64{1, 2, 4, 8, 16, 32}, 6)
	if err := CheckQuantizerBuffers(cfg, m); err == nil || !strings.Contains(err.Error(), "bit order is not MAGVIT-v2's") {
		t.Errorf("reversed power_vals: error %v", err)
	}
	_, m = tinyStore(t)
	emb := m[EmbeddingBuffer].F32()
	emb[5*6+2] = -emb[5*6+2]
	if err := CheckQuantizerBuffers(cfg, m); err == nil || !strings.Contains(err.Error(), "code 5 channel 2") {
		t.Errorf("flipped embedding bit: error %v", err)
	}
}

// TestFullSizeMatchesManifest builds both graphs of the default
// architecture against a sparse stand-in for the hub checkpoint and
// checks that together with the two quantizer buffers they declare
// exactly the 382 tensors of the real file, with the same shapes.
func TestFullSizeMatchesManifest(t *testing.T) {
	_, infos, err := frontend.LoadManifest(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	frontend.ApplyDefaultDType(infos, ir.F32)
	dir := t.TempDir()
	if err := frontend.WriteSparseSafetensors(filepath.Join(dir, "pytorch_model.safetensors"), infos); err != nil {
		t.Fatal(err)
	}
	ck, err := frontend.OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()

	cfg := DefaultConfig()
	enc, err := BuildEncoder(cfg, ck, EncoderOptions{Height: 512, Width: 512})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := BuildDecoder(cfg, ck, DecoderOptions{NumTokens: 1024})
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]string{
		EmbeddingBuffer: fmt.Sprint([]int64{cfg.CodebookSize(), int64(cfg.ZChannels)}),
		PowerValsBuffer: fmt.Sprint([]int64{int64(cfg.ZChannels)}),
	}
	counts := map[string]int64{}
	for _, g := range []*ir.Graph{enc, dec} {
		for _, p := range g.Params {
			if _, dup := declared[p.Name]; dup {
				t.Errorf("%s declared twice", p.Name)
			}
			declared[p.Name] = fmt.Sprint(p.Type.Shape.Sizes())
			counts[g.Name] += p.Type.Shape.NumElements()
		}
	}
	if len(declared) != len(infos) || len(infos) != 382 {
		t.Errorf("graphs and buffers declare %d tensors, the manifest lists %d (want 382)", len(declared), len(infos))
	}
	for _, info := range infos {
		if got, ok := declared[info.Name]; !ok {
			t.Errorf("manifest tensor %s %v is not declared", info.Name, info.Shape)
		} else if got != fmt.Sprint(info.Shape) {
			t.Errorf("tensor %s: declared %s, manifest %v", info.Name, got, info.Shape)
		}
	}
	// Parameter counts from the upstream modules.
	if counts[EncoderGraph] != 55_439_171 || counts[DecoderGraph] != 39_947_833 {
		t.Errorf("parameters: encoder %d, decoder %d; want 55439171 and 39947833", counts[EncoderGraph], counts[DecoderGraph])
	}
	if got := enc.OutputValue(Codes).Type.String(); got != "i64[batch,1024]" {
		t.Errorf("encoder codes %s, want i64[batch,1024]", got)
	}
	if got := dec.OutputValue(Pixels).Type.String(); got != "f32[batch,3,512,512]" {
		t.Errorf("decoder pixels %s, want f32[batch,3,512,512]", got)
	}
	if unused := UnusedTensors(ck.Names(), enc, dec); len(unused) != 0 {
		t.Errorf("unused tensors: %v", unused)
	}
	// The sparse file reads as zeros, which is not the ±1 codebook.
	if err := CheckQuantizerBuffers(cfg, ck); err == nil || !strings.Contains(err.Error(), "code 0 channel 0 is 0, want -1") {
		t.Errorf("zero buffers: error %v", err)
	}
}
