package engine

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/frontend/imageio"
	"github.com/mmadac/mmadac/ir"
	"github.com/mmadac/mmadac/models/magvit"
)

// vqGoldenCase is a vq-decode or vq-encode entry of cases.json.
type vqGoldenCase struct {
	Kind       string `json:"kind"`
	File       string `json:"file"`
	Grid       [2]int `json:"grid"`
	Image      string `json:"image"`
	Resolution int    `json:"resolution"`
}

func loadVQCase(t *testing.T, kind string) vqGoldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []vqGoldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Cases {
		if c.Kind == kind {
			return c
		}
	}
	t.Fatalf("cases.json has no %s case", kind)
	return vqGoldenCase{}
}

// goldenFile is a safetensors file of the golden data: float and integer
// tensors, plus the U8 images, which the project's reader rejects because
// no model stores them.
type goldenFile struct {
	tensors map[string]*ir.Tensor
	bytes   map[string][]uint8
}

func readGolden(t *testing.T, path string) goldenFile {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data := raw[8+n:]
	out := goldenFile{tensors: map[string]*ir.Tensor{}, bytes: map[string][]uint8{}}
	dtypes := map[string]ir.DType{"F32": ir.F32, "F64": ir.F64, "I64": ir.I64}
	for name, msg := range header {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType   string  `json:"dtype"`
			Shape   []int64 `json:"shape"`
			Offsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil {
			t.Fatalf("%s: tensor %s: %v", path, name, err)
		}
		b := data[e.Offsets[0]:e.Offsets[1]]
		if e.DType == "U8" {
			out.bytes[name] = b
			continue
		}
		dt, ok := dtypes[e.DType]
		if !ok {
			t.Fatalf("%s: tensor %s has dtype %s", path, name, e.DType)
		}
		tensor, err := ir.TensorFromBytes(dt, e.Shape, b)
		if err != nil {
			t.Fatalf("%s: tensor %s: %v", path, name, err)
		}
		out.tensors[name] = tensor
	}
	return out
}

func maxAbs(t *testing.T, got, want *ir.Tensor) float64 {
	t.Helper()
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	worst := 0.0
	for i, g := range got.F32() {
		d := math.Abs(float64(g) - float64(want.F32()[i]))
		if math.IsNaN(d) {
			t.Fatalf("value %d is NaN", i)
		}
		worst = max(worst, d)
	}
	return worst
}

func loadTinyVQ(t *testing.T, backend string) *VQModel {
	t.Helper()
	m, err := LoadVQ(filepath.Join(goldenDir, "magvit"), backend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestGoldenVQDecode(t *testing.T) {
	c := loadVQCase(t, "vq-decode")
	golden := readGolden(t, filepath.Join(goldenDir, c.File))
	ts, wantU8 := golden.tensors, golden.bytes["image_u8"]
	for _, be := range backends(t) {
		m := loadTinyVQ(t, be)
		for _, grid := range [][2]int{c.Grid, {}} {
			pixels, err := m.Decode(ts["codes"], grid)
			if err != nil {
				t.Fatalf("%s: %v", be, err)
			}
			d := maxAbs(t, pixels, ts["pixels"])
			t.Logf("%s grid %v: pixels max abs error %.3g", be, grid, d)
			if d > 1e-4 {
				t.Errorf("%s: pixels max abs error %.3g > 1e-4", be, d)
			}
			compareImage(t, fmt.Sprintf("%s grid %v", be, grid), pixels, wantU8)
		}
	}
}

// knifeEdge is how close, in byte units, a decoder output may come to a
// truncation boundary (x+1)/2*255 = integer for its byte to be allowed to
// differ from upstream's by one: 1e-4 bytes is about 8e-7 in pixel units,
// a few float32 ulps, far inside the 1e-4 pixel tolerance. At such a
// value the byte depends on the last bit of the sum, which no two
// convolution implementations agree on.
const knifeEdge = 1e-4

// compareImage checks that the post-processed bytes of pixels f32
// [B, 3, H, W] equal want ([B, H, W, 3], upstream's uint8 image), except
// bytes off by one whose value sits on a truncation boundary (see
// knifeEdge), which it logs.
func compareImage(t *testing.T, label string, pixels *ir.Tensor, want []uint8) {
	t.Helper()
	got, err := imageio.ToHWCUint8(pixels)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d image bytes, want %d", label, len(got), len(want))
	}
	h, w := int(pixels.Shape[2]), int(pixels.Shape[3])
	edges := 0
	for i := range got {
		if got[i] == want[i] {
			continue
		}
		b, ch, pos := i/(h*w*3), i%3, (i/3)%(h*w)
		v := pixels.F32()[(b*3+ch)*h*w+pos]
		scaled := (float64(v) + 1) / 2 * 255
		dist := math.Abs(scaled - math.Round(scaled))
		if math.Abs(float64(got[i])-float64(want[i])) == 1 && dist < knifeEdge {
			edges++
			t.Logf("%s: byte %d is %d, upstream %d: the value %.9g lies %.2g bytes from the boundary", label, i, got[i], want[i], v, dist)
			continue
		}
		t.Errorf("%s: byte %d (image %d, y %d, x %d, channel %d) is %d, want %d (value %.9g)",
			label, i, b, pos/w, pos%w, ch, got[i], want[i], v)
	}
	if edges > 0 {
		t.Logf("%s: %d of %d bytes differ on a truncation boundary", label, edges, len(got))
	}
}

func TestGoldenVQEncode(t *testing.T) {
	c := loadVQCase(t, "vq-encode")
	ts, err := frontend.ReadSafetensors(filepath.Join(goldenDir, c.File))
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range backends(t) {
		m := loadTinyVQ(t, be)
		latent, codes, err := m.Encode(ts["pixels_center_crop"])
		if err != nil {
			t.Fatalf("%s: %v", be, err)
		}
		d := maxAbs(t, latent, ts["latent"])
		t.Logf("%s: latent max abs error %.3g", be, d)
		if d > 1e-4 {
			t.Errorf("%s: latent max abs error %.3g > 1e-4", be, d)
		}
		if fmt.Sprint(codes.Shape) != fmt.Sprint(ts["codes"].Shape) || fmt.Sprint(codes.I64()) != fmt.Sprint(ts["codes"].I64()) {
			t.Errorf("%s: codes %v %v, want %v %v", be, codes.Shape, codes.I64(), ts["codes"].Shape, ts["codes"].I64())
		}
	}
}

func TestGoldenVQPreprocess(t *testing.T) {
	c := loadVQCase(t, "vq-encode")
	ts, err := frontend.ReadSafetensors(filepath.Join(goldenDir, c.File))
	if err != nil {
		t.Fatal(err)
	}
	img, err := imageio.Decode(filepath.Join("../../testdata/images", c.Image))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		key    string
		squash bool
	}{{"pixels_center_crop", false}, {"pixels_squash", true}} {
		got, err := imageio.Preprocess(img, c.Resolution, v.squash)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbs(t, got, ts[v.key]); d != 0 {
			t.Errorf("%s: preprocessing differs by up to %g", v.key, d)
		}
	}
}

func TestVQRejectsBadInput(t *testing.T) {
	m := loadTinyVQ(t, BackendInterp)
	codes := func(shape []int64, vals ...int64) *ir.Tensor {
		t := ir.NewTensor(ir.I64, shape...)
		copy(t.I64(), vals)
		return t
	}
	for _, c := range []struct {
		name   string
		run    func() error
		reason string
	}{
		{"odd resolution", func() error { _, _, err := m.Encode(ir.NewTensor(ir.F32, 1, 3, 14, 16)); return err }, "height 14 is not a multiple of the tokenizer's downsampling factor 4; use 12 or 16"},
		{"tiny resolution", func() error { _, _, err := m.Encode(ir.NewTensor(ir.F32, 1, 3, 16, 2)); return err }, "width 2 is not a positive multiple"},
		{"gray pixels", func() error { _, _, err := m.Encode(ir.NewTensor(ir.F32, 1, 1, 16, 16)); return err }, "want f32 [batch, 3, height, width]"},
		{"f64 pixels", func() error { _, _, err := m.Encode(ir.NewTensor(ir.F64, 1, 3, 16, 16)); return err }, "want f32"},
		{"nil pixels", func() error { _, _, err := m.Encode(nil); return err }, "nil"},
		{"non-square codes", func() error { _, err := m.Decode(codes([]int64{1, 6}), [2]int{}); return err }, "do not form a square grid"},
		{"wrong grid", func() error { _, err := m.Decode(codes([]int64{1, 6}), [2]int{2, 2}); return err }, "grid 2x2 has 4 cells for 6 codes"},
		{"negative code", func() error { _, err := m.Decode(codes([]int64{1, 4}, 0, -1), [2]int{}); return err }, "code -1 (row 0, position 1) is outside the codebook [0, 64)"},
		{"large code", func() error { _, err := m.Decode(codes([]int64{2, 4}, 0, 0, 0, 0, 0, 0, 64), [2]int{}); return err }, "code 64 (row 1, position 2)"},
		{"f32 codes", func() error { _, err := m.Decode(ir.NewTensor(ir.F32, 1, 4), [2]int{}); return err }, "want i64 [batch, tokens]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.run()
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %v, want one containing %q", err, c.reason)
			}
		})
	}
}

func TestVQNonSquareGrid(t *testing.T) {
	// A 2x8 grid decodes to a 8x32 image; the decoder is fully
	// convolutional plus global attention, so any grid works.
	m := loadTinyVQ(t, BackendInterp)
	codes := ir.NewTensor(ir.I64, 1, 16)
	for i := range codes.I64() {
		codes.I64()[i] = int64(i * 3)
	}
	pixels, err := m.Decode(codes, [2]int{2, 8})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(pixels.Shape) != "[1 3 8 32]" {
		t.Errorf("pixels shape %v, want [1 3 8 32]", pixels.Shape)
	}
}

func TestLoadVQRejects(t *testing.T) {
	if _, err := LoadVQ(filepath.Join(goldenDir, "magvit"), "cuda"); err == nil || !strings.Contains(err.Error(), `backend "cuda" cannot run`) {
		t.Errorf("backend cuda: error %v", err)
	}
	if _, err := LoadVQ(filepath.Join(goldenDir, "no-such-folder"), BackendInterp); err == nil {
		t.Error("missing folder accepted")
	}
	if _, err := LoadVQ(filepath.Join(goldenDir, "cases.json"), BackendInterp); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("file instead of folder: error %v", err)
	}
	// A transformer checkpoint passed as the tokenizer is named as such.
	if _, err := LoadVQ(filepath.Join(goldenDir, "mmada"), BackendInterp); err == nil || !strings.Contains(err.Error(), "is a MMaDA/LLaDA transformer") {
		t.Errorf("text checkpoint: error %v", err)
	}
}

func TestLoadVQRejectsMismatchedConfig(t *testing.T) {
	src := filepath.Join(goldenDir, "magvit")
	for _, c := range []struct {
		name, config, reason string
	}{
		{"fewer blocks", `{"encoder": {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": [1, 1, 0]},
		  "decoder": {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": [1, 1, 1]}, "z_channels": 6}`, "does not use"},
		{"other width", `{"encoder": {"ch": 64, "ch_mult": [1, 2, 2], "num_res_blocks": [1, 1, 1]},
		  "decoder": {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": [1, 1, 1]}, "z_channels": 6}`, "has shape"},
		{"other z", `{"encoder": {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": [1, 1, 1]},
		  "decoder": {"ch": 32, "ch_mult": [1, 2, 2], "num_res_blocks": [1, 1, 1]}, "z_channels": 5}`, "quantize.embedding has shape"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Symlink(filepath.Join(mustAbs(t, src), "model.safetensors"), filepath.Join(dir, "model.safetensors")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadVQ(dir, BackendInterp)
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %v, want one containing %q", err, c.reason)
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// writeRandomVQ writes a checkpoint of the full MAGVIT-v2 architecture
// with random weights to dir: He-scaled normal convolution weights
// (std sqrt(2/fan_in)), zero biases, unit GroupNorm scales, and the real
// quantizer buffers. The names and shapes come from the manifest of the
// hub checkpoint.
func writeRandomVQ(b *testing.B, dir string) {
	b.Helper()
	_, infos, err := frontend.LoadManifest("../../testdata/manifests/magvitv2-tensors.json")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := magvit.DefaultConfig()
	tensors := map[string]*ir.Tensor{}
	for _, info := range infos {
		switch {
		case info.Name == magvit.EmbeddingBuffer:
			t := ir.NewTensor(ir.F32, info.Shape...)
			for code := range cfg.CodebookSize() {
				copy(t.F32()[code*int64(cfg.ZChannels):], magvit.CodeBits(code, cfg.ZChannels))
			}
			tensors[info.Name] = t
		case info.Name == magvit.PowerValsBuffer:
			t := ir.NewTensor(ir.I64, info.Shape...)
			for c := range t.I64() {
				t.I64()[c] = 1 << (cfg.ZChannels - 1 - c)
			}
			tensors[info.Name] = t
		case len(info.Shape) == 4:
			t := ir.NewTensor(ir.F32, info.Shape...)
			std := math.Sqrt(2 / float64(info.Shape[1]*info.Shape[2]*info.Shape[3]))
			for i := range t.F32() {
				t.F32()[i] = float32(rng.NormFloat64() * std)
			}
			tensors[info.Name] = t
		case strings.Contains(info.Name, "norm") && strings.HasSuffix(info.Name, ".weight"):
			t := ir.NewTensor(ir.F32, info.Shape...)
			for i := range t.F32() {
				t.F32()[i] = 1
			}
			tensors[info.Name] = t
		default:
			tensors[info.Name] = ir.NewTensor(ir.F32, info.Shape...)
		}
	}
	if err := frontend.WriteSafetensors(filepath.Join(dir, "pytorch_model.safetensors"), tensors); err != nil {
		b.Fatal(err)
	}
	config := `{"_class_name": "MAGVITv2", "_diffusers_version": "0.30.0"}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
		b.Fatal(err)
	}
}

// benchVQ runs fn on a full-size random-weight tokenizer for each
// backend, after opening the session it needs (not timed).
func benchVQ(b *testing.B, prepare func(m *VQModel) error, fn func(m *VQModel) error) {
	dir := b.TempDir()
	writeRandomVQ(b, dir)
	bes := []string{BackendInterp}
	if _, err := openORTCheck(); err == nil {
		bes = append(bes, BackendORT)
	} else {
		b.Logf("skipping the ort backend: %v", err)
	}
	for _, be := range bes {
		b.Run(be, func(b *testing.B) {
			m, err := LoadVQ(dir, be)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			start := time.Now()
			if err := prepare(m); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: session opened in %v", be, time.Since(start))
			b.ResetTimer()
			for range b.N {
				if err := fn(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVQDecode512 decodes a 32x32 grid of codes to a 512x512 image.
// Run it alone: go test ./internal/engine -run '^$' -bench VQDecode512 -benchtime=1x
func BenchmarkVQDecode512(b *testing.B) {
	codes := ir.NewTensor(ir.I64, 1, 1024)
	for i := range codes.I64() {
		codes.I64()[i] = int64(i*2654435761) % 8192
	}
	benchVQ(b, func(m *VQModel) error {
		_, err := m.decoderSession([2]int{32, 32})
		return err
	}, func(m *VQModel) error {
		pixels, err := m.Decode(codes, [2]int{})
		if err == nil {
			err = checkFinite(pixels)
		}
		return err
	})
}

// BenchmarkVQEncode512 encodes a 512x512 image to 1024 codes.
func BenchmarkVQEncode512(b *testing.B) {
	pixels := ir.NewTensor(ir.F32, 1, 3, 512, 512)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range pixels.F32() {
		pixels.F32()[i] = rng.Float32()*2 - 1
	}
	benchVQ(b, func(m *VQModel) error {
		_, err := m.encoderSession(512, 512)
		return err
	}, func(m *VQModel) error {
		latent, _, err := m.Encode(pixels)
		if err == nil {
			err = checkFinite(latent)
		}
		return err
	})
}

func checkFinite(t *ir.Tensor) error {
	for i, v := range t.F32() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("value %d is %v", i, v)
		}
	}
	return nil
}
