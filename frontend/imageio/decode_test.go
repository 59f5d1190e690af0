package imageio

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeFormats(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 8, 6))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	for i := 3; i < len(src.Pix); i += 4 {
		src.Pix[i] = 255
	}

	encoders := map[string]func(*bytes.Buffer) error{
		"png":  func(b *bytes.Buffer) error { return png.Encode(b, src) },
		"jpeg": func(b *bytes.Buffer) error { return jpeg.Encode(b, src, &jpeg.Options{Quality: 95}) },
		"gif":  func(b *bytes.Buffer) error { return gif.Encode(b, src, nil) },
	}
	for name, encode := range encoders {
		var buf bytes.Buffer
		if err := encode(&buf); err != nil {
			t.Fatal(err)
		}
		img, err := DecodeBytes(buf.Bytes())
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if img.Bounds() != src.Bounds() {
			t.Errorf("%s: bounds %v, want %v", name, img.Bounds(), src.Bounds())
		}
	}
}

func TestDecodeJPEGReturnsOpaqueRGBA(t *testing.T) {
	img := decodeTestImage(t, "clevr.jpg")
	m, ok := img.(*image.RGBA)
	if !ok {
		t.Fatalf("got %T, want *image.RGBA", img)
	}
	if m.Bounds() != image.Rect(0, 0, 480, 320) {
		t.Errorf("bounds %v, want (0,0)-(480,320)", m.Bounds())
	}
	if !m.Opaque() {
		t.Error("decoded JPEG is not opaque")
	}
}

// TestJPEGMatchesPillowDecode compares Decode with Pillow's decoding of the
// same JPEG files (stored as PNG). clevr.jpg and geo.jpg use 4:2:0 chroma
// subsampling, which covers the fancy upsampling in jpeg.go; llava1.jpg
// uses 4:4:4, which isolates the colour conversion.
func TestJPEGMatchesPillowDecode(t *testing.T) {
	for _, name := range []string{"clevr", "geo", "llava1"} {
		got := toRGB(decodeTestImage(t, name+".jpg"))
		want := toRGB(decodeTestImage(t, name+".pil.png"))
		stats := compareBytes(got.pix, want.pix)
		t.Logf("%s.jpg against Pillow: %v of %d (%.2f%%)", name, stats, len(got.pix), 100*float64(stats.differed)/float64(len(got.pix)))
		// Only the inverse DCTs should differ. Go's own conversion is off by
		// up to 14 levels on clevr.jpg (replicated chroma) and in 24% of the
		// values of llava1.jpg (rounding), which these bounds reject.
		if stats.max > 3 || stats.differed*20 > len(got.pix) {
			t.Errorf("%s.jpg: more than inverse-DCT differences from Pillow: %v", name, stats)
		}
	}
}

func TestChromaUpsamplingEdges(t *testing.T) {
	// One chroma row of three samples, 4:2:2: the outer output pixels copy
	// their sample and the inner ones mix 3:1 with rounding biases 1 and 2.
	plane := chromaPlane{pix: []uint8{0, 100, 200}, stride: 3, width: 3, height: 1}
	got := plane.upsample(6, 1, 2, 1)
	want := []uint8{0, (0*3 + 100 + 2) >> 2, (100*3 + 0 + 1) >> 2, (100*3 + 200 + 2) >> 2, (200*3 + 100 + 1) >> 2, 200}
	if !bytes.Equal(got, want) {
		t.Errorf("4:2:2 row: got %v, want %v", got, want)
	}

	// Two samples wide: libjpeg replicates.
	narrow := chromaPlane{pix: []uint8{10, 90}, stride: 2, width: 2, height: 1}
	if got := narrow.upsample(4, 1, 2, 1); !bytes.Equal(got, []uint8{10, 10, 90, 90}) {
		t.Errorf("narrow plane: got %v, want replication", got)
	}

	// 4:4:0 with two rows: the top output row leans on the replicated row
	// above (itself), so it equals the sample.
	tall := chromaPlane{pix: []uint8{40, 80}, stride: 1, width: 1, height: 2}
	wantTall := []uint8{40, (40*3 + 80 + 2) >> 2, (80*3 + 40 + 1) >> 2, 80}
	if got := tall.upsample(1, 4, 1, 2); !bytes.Equal(got, wantTall) {
		t.Errorf("4:4:0 column: got %v, want %v", got, wantTall)
	}
}

func TestLibjpegYCbCrToRGB(t *testing.T) {
	for _, tc := range []struct {
		y, cb, cr uint8
		r, g, b   uint8
	}{
		{128, 128, 128, 128, 128, 128},
		{0, 128, 128, 0, 0, 0},
		{255, 128, 128, 255, 255, 255},
		{76, 85, 255, 254, 0, 0}, // pure red in JFIF YCbCr
		{100, 200, 50, 0, 131, 228},
	} {
		r, g, b := libjpegYCbCrToRGB(tc.y, tc.cb, tc.cr)
		if r != tc.r || g != tc.g || b != tc.b {
			t.Errorf("YCbCr(%d,%d,%d): got RGB(%d,%d,%d), want (%d,%d,%d)", tc.y, tc.cb, tc.cr, r, g, b, tc.r, tc.g, tc.b)
		}
	}
}

func TestDecodeGrayJPEG(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range src.Pix {
		src.Pix[i] = 128
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, nil); err != nil {
		t.Fatal(err)
	}
	img, err := DecodeBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img.(*image.Gray); !ok {
		t.Errorf("got %T, want *image.Gray", img)
	}
}

func TestDecodeRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "notes.png")
	if err := os.WriteFile(garbage, []byte("this is not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	var pngBytes bytes.Buffer
	if err := png.Encode(&pngBytes, image.NewGray(image.Rect(0, 0, 16, 16))); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.png")
	if err := os.WriteFile(truncated, pngBytes.Bytes()[:pngBytes.Len()-20], 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.jpg")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		path      string
		wantError []string
	}{
		{garbage, []string{garbage, "unrecognised image format", "PNG, JPEG, GIF"}},
		{truncated, []string{truncated, "invalid or truncated png data"}},
		{empty, []string{empty, "empty", "PNG, JPEG, GIF"}},
		{filepath.Join(dir, "missing.png"), []string{"missing.png", "no such file"}},
	} {
		_, err := Decode(tc.path)
		if err == nil {
			t.Errorf("%s: no error", tc.path)
			continue
		}
		for _, want := range tc.wantError {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not contain %q", tc.path, err, want)
			}
		}
	}

	if _, err := DecodeBytes([]byte{0xff, 0xd8, 0xff}); err == nil || !strings.Contains(err.Error(), "from 3 bytes") {
		t.Errorf("truncated JPEG bytes: got error %v", err)
	}
}

func TestStraightRGBUnpremultiplies(t *testing.T) {
	// Half-transparent premultiplied red: the straight colour is full red.
	r, g, b := straightRGB(color.RGBA{R: 128, A: 128})
	if r != 255 || g != 0 || b != 0 {
		t.Errorf("got (%d,%d,%d), want (255,0,0)", r, g, b)
	}
	r, g, b = straightRGB(color.Gray16{Y: 0xabcd})
	if r != 0xab || g != 0xab || b != 0xab {
		t.Errorf("Gray16: got (%d,%d,%d), want the high byte 0xab", r, g, b)
	}
}
