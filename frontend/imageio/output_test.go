package imageio

import (
	"bytes"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmadac/mmadac/ir"
)

// TestToHWCUint8MatchesUpstream checks the post-processing against the
// uint8 images upstream produced from the same decoder output.
func TestToHWCUint8MatchesUpstream(t *testing.T) {
	arrays := readTestArrays(t, filepath.Join("testdata", "vq-decode.safetensors"))
	pixels, want := arrays["pixels"], arrays["image_u8"]
	shape := make([]int64, len(pixels.shape))
	for i, d := range pixels.shape {
		shape[i] = int64(d)
	}
	got, err := ToHWCUint8(ir.FromF32(pixels.f32, shape...))
	if err != nil {
		t.Fatal(err)
	}
	if stats := compareBytes(got, want.u8); stats.max != 0 {
		t.Errorf("differs from upstream image_u8: %v", stats)
	}
}

func TestToImageMatchesToHWCUint8(t *testing.T) {
	arrays := readTestArrays(t, filepath.Join("testdata", "vq-decode.safetensors"))
	pixels := arrays["pixels"]
	tensor := ir.FromF32(pixels.f32, 2, 3, 16, 16)
	hwc, err := ToHWCUint8(tensor)
	if err != nil {
		t.Fatal(err)
	}
	for index := range 2 {
		img, err := ToImage(tensor, index)
		if err != nil {
			t.Fatal(err)
		}
		for y := range 16 {
			for x := range 16 {
				c := img.RGBAAt(x, y)
				o := ((index*16+y)*16 + x) * 3
				if c.R != hwc[o] || c.G != hwc[o+1] || c.B != hwc[o+2] || c.A != 255 {
					t.Fatalf("image %d pixel (%d,%d): got %v, want RGB %v", index, x, y, c, hwc[o:o+3])
				}
			}
		}
	}
}

func TestToByteTruncates(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		x    float32
		want uint8
	}{
		{-1, 0},
		{1, 255},
		{0, 127},         // 0.5 * 255 = 127.5 truncates to 127
		{-2, 0},          // clamped
		{3, 255},         // clamped
		{0.99, 253},      // 0.995 * 255 = 253.7
		{-0.9999999, 0},  // just above -1
		{0.9999999, 254}, // (x+1)/2 * 255 = 254.99998 truncates
		{nan, 0},
		{inf, 255},
		{-inf, 0},
	} {
		if got := toByte(tc.x); got != tc.want {
			t.Errorf("toByte(%v) = %d, want %d", tc.x, got, tc.want)
		}
	}
}

func TestToImageRejectsBadTensors(t *testing.T) {
	good := ir.NewTensor(ir.F32, 2, 3, 4, 4)
	for _, tc := range []struct {
		name      string
		tensor    *ir.Tensor
		index     int
		wantError string
	}{
		{"nil", nil, 0, "nil"},
		{"bf16", ir.NewTensor(ir.BF16, 1, 3, 4, 4), 0, "dtype bf16, want f32"},
		{"rank 3", ir.NewTensor(ir.F32, 3, 4, 4), 0, "want [batch, 3, height, width]"},
		{"four channels", ir.NewTensor(ir.F32, 1, 4, 4, 4), 0, "want [batch, 3, height, width]"},
		{"zero height", &ir.Tensor{DType: ir.F32, Shape: []int64{1, 3, 0, 4}, Data: []float32{}}, 0, "every dimension positive"},
		{"short data", &ir.Tensor{DType: ir.F32, Shape: []int64{1, 3, 2, 2}, Data: make([]float32, 5)}, 0, "needs 12 values, but the data has 5"},
		{"wrong data type", &ir.Tensor{DType: ir.F32, Shape: []int64{1, 3, 2, 2}, Data: make([]float64, 12)}, 0, "data of type []float64"},
		{"index too large", good, 2, "index 2 is out of range for a batch of 2"},
		{"negative index", good, -1, "index -1 is out of range"},
	} {
		_, err := ToImage(tc.tensor, tc.index)
		if err == nil || !strings.Contains(err.Error(), tc.wantError) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.wantError)
		}
	}
	if _, err := ToHWCUint8(ir.NewTensor(ir.F64, 1, 3, 2, 2)); err == nil {
		t.Error("ToHWCUint8 accepted an f64 tensor")
	}
}

func TestWritePNGRoundTrip(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 11)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	path := filepath.Join(t.TempDir(), "out.png")
	if err := WritePNG(path, img); err != nil {
		t.Fatal(err)
	}
	back, err := Decode(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := toRGB(back), toRGB(img); !bytes.Equal(got.pix, want.pix) {
		t.Error("the PNG read back differs from the image written")
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("permissions %v, want 0644", info.Mode().Perm())
	}
	assertOnlyFiles(t, filepath.Dir(path), "out.png")
}

func TestWritePNGFailureLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "keep.png")
	if err := os.WriteFile(existing, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	// An image whose encoding fails: png.Encode rejects sides of 2^32 pixels
	// or more before it reads any pixel.
	huge := &image.Gray{Rect: image.Rect(0, 0, 1<<32, 1)}
	err := WritePNG(existing, huge)
	if err == nil || !strings.Contains(err.Error(), "encode") {
		t.Fatalf("got error %v, want an encode error", err)
	}
	if data, _ := os.ReadFile(existing); string(data) != "old" {
		t.Errorf("the existing file changed to %q", data)
	}
	assertOnlyFiles(t, dir, "keep.png")

	missingDir := filepath.Join(dir, "no-such-dir", "out.png")
	if err := WritePNG(missingDir, image.NewGray(image.Rect(0, 0, 1, 1))); err == nil || !strings.Contains(err.Error(), missingDir) {
		t.Errorf("missing directory: got error %v, want one naming %s", err, missingDir)
	}
	if err := WritePNG(filepath.Join(dir, "empty.png"), image.NewGray(image.Rect(0, 0, 0, 0))); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty image: got error %v", err)
	}
	if err := WritePNG(filepath.Join(dir, "nil.png"), nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Errorf("nil image: got error %v", err)
	}
	assertOnlyFiles(t, dir, "keep.png")
}

func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("directory holds %v, want %v", got, names)
	}
}
