package imageio

import (
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/image/draw"
)

// referenceCase is one entry of testdata/reference.safetensors: Pillow's
// preprocessing of file at resolution, crop or squash path.
type referenceCase struct {
	file       string
	squash     bool
	resolution int
	want       []uint8
}

func (c referenceCase) String() string {
	path := "crop"
	if c.squash {
		path = "squash"
	}
	return fmt.Sprintf("%s/%s/%d", c.file, path, c.resolution)
}

func loadReferenceCases(t *testing.T) []referenceCase {
	t.Helper()
	arrays := readTestArrays(t, filepath.Join("testdata", "reference.safetensors"))
	var cases []referenceCase
	for name, array := range arrays {
		parts := strings.Split(name, "/")
		if len(parts) != 3 {
			t.Fatalf("reference tensor %q: want a name image/path/resolution", name)
		}
		resolution, err := strconv.Atoi(parts[2])
		if err != nil {
			t.Fatalf("reference tensor %q: %v", name, err)
		}
		cases = append(cases, referenceCase{
			file:       parts[0],
			squash:     parts[1] == "squash",
			resolution: resolution,
			want:       array.u8,
		})
	}
	slices.SortFunc(cases, func(a, b referenceCase) int { return strings.Compare(a.String(), b.String()) })
	if len(cases) == 0 {
		t.Fatal("reference.safetensors holds no cases")
	}
	return cases
}

func decodeTestImage(t *testing.T, name string) image.Image {
	t.Helper()
	img, err := Decode(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestPreprocessMatchesPillow runs the whole input path, file to pixels,
// against Pillow. PNG decoding is exact, so dog.png must match exactly; the
// JPEG files carry the small inverse-DCT differences of Go's decoder.
func TestPreprocessMatchesPillow(t *testing.T) {
	for _, c := range loadReferenceCases(t) {
		t.Run(c.String(), func(t *testing.T) {
			got, err := preprocessPixels(decodeTestImage(t, c.file), c.resolution, c.squash)
			if err != nil {
				t.Fatal(err)
			}
			stats := compareBytes(got.pix, c.want)
			t.Logf("%s: %v", c, stats)
			if strings.HasSuffix(c.file, ".png") && stats.max != 0 {
				t.Errorf("PNG source differs from Pillow: %v", stats)
			}
			if stats.max > 8 || stats.mean > 1 {
				t.Errorf("differs from Pillow beyond max 8/255 or mean 1/255: %v", stats)
			}
		})
	}
}

// TestResizeMatchesPillowExactly feeds the resampler the pixels Pillow
// decoded from the JPEG files, so any difference is the resampler's.
func TestResizeMatchesPillowExactly(t *testing.T) {
	for _, c := range loadReferenceCases(t) {
		source := strings.Replace(c.file, ".jpg", ".pil.png", 1)
		t.Run(c.String(), func(t *testing.T) {
			got, err := preprocessPixels(decodeTestImage(t, source), c.resolution, c.squash)
			if err != nil {
				t.Fatal(err)
			}
			if stats := compareBytes(got.pix, c.want); stats.max != 0 {
				t.Errorf("differs from Pillow: %v", stats)
			}
		})
	}
}

// TestXImageDrawDiffersFromPillow measures golang.org/x/image/draw's
// CatmullRom scaler on the same inputs, the alternative the package
// documentation weighs against its own resampler.
func TestXImageDrawDiffersFromPillow(t *testing.T) {
	var all diffStats
	var total float64
	count := 0
	for _, c := range loadReferenceCases(t) {
		source := strings.Replace(c.file, ".jpg", ".pil.png", 1)
		src := toRGB(decodeTestImage(t, source))
		width, height, left, top := c.resolution, c.resolution, 0, 0
		if !c.squash {
			width, height = shorterSideTo(src.width, src.height, c.resolution)
			left, top = centreCropOffset(width, c.resolution), centreCropOffset(height, c.resolution)
		}
		got := scaleWithXImageDraw(src, width, height)
		window := copyWindow(got, left, top, c.resolution, c.resolution)
		stats := compareBytes(window, c.want)
		t.Logf("x/image/draw %s: %v", c, stats)
		all.max = max(all.max, stats.max)
		all.differed += stats.differed
		total += stats.mean * float64(len(window))
		count += len(window)
	}
	all.mean = total / float64(count)
	t.Logf("x/image/draw over all cases: %v of %d values (%.1f%%)", all, count, 100*float64(all.differed)/float64(count))
	if all.max == 0 {
		t.Errorf("x/image/draw now matches Pillow exactly; consider using it instead of resample.go")
	}
}

func scaleWithXImageDraw(src rgbImage, width, height int) rgbImage {
	in := image.NewRGBA(image.Rect(0, 0, src.width, src.height))
	for i := range src.width * src.height {
		copy(in.Pix[i*4:i*4+3], src.pix[i*3:i*3+3])
		in.Pix[i*4+3] = 0xff
	}
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.CatmullRom.Scale(out, out.Bounds(), in, in.Bounds(), draw.Src, nil)
	return toRGB(out)
}

func TestPreprocessTensorLayout(t *testing.T) {
	img := decodeTestImage(t, "dog.png")
	const resolution = 16
	pixels, err := preprocessPixels(img, resolution, false)
	if err != nil {
		t.Fatal(err)
	}
	tensor, err := Preprocess(img, resolution, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tensor.Shape, []int64{1, 3, resolution, resolution}) {
		t.Fatalf("shape %v, want [1 3 16 16]", tensor.Shape)
	}
	data := tensor.F32()
	plane := resolution * resolution
	for i := range plane {
		for c := range 3 {
			v := pixels.pix[i*3+c]
			want := (float32(v)/255 - 0.5) / 0.5
			if got := data[c*plane+i]; got != want {
				t.Fatalf("channel %d pixel %d: got %v, want %v (byte %d)", c, i, got, want, v)
			}
		}
	}
	if data[0] < -1 || data[0] > 1 {
		t.Errorf("value %v outside [-1, 1]", data[0])
	}
}

func TestNormalisationEndpoints(t *testing.T) {
	black := image.NewGray(image.Rect(0, 0, 4, 4))
	white := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range white.Pix {
		white.Pix[i] = 255
	}
	for _, tc := range []struct {
		img  image.Image
		want float32
	}{{black, -1}, {white, 1}} {
		tensor, err := Preprocess(tc.img, 2, true)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range tensor.F32() {
			if v != tc.want {
				t.Fatalf("value %d = %v, want %v", i, v, tc.want)
			}
		}
	}
}

func TestCropWindowEqualsFullResize(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range [][2]int{{37, 23}, {23, 37}, {100, 9}, {12, 12}} {
		src := rgbImage{width: size[0], height: size[1], pix: make([]uint8, size[0]*size[1]*3)}
		for i := range src.pix {
			src.pix[i] = uint8(rng.IntN(256))
		}
		for _, resolution := range []int{5, 8, 16, 40} {
			width, height := shorterSideTo(src.width, src.height, resolution)
			full := resizeWindow(src, width, height, 0, 0, width, height)
			left, top := centreCropOffset(width, resolution), centreCropOffset(height, resolution)
			want := copyWindow(full, left, top, resolution, resolution)
			got := resizeWindow(src, width, height, left, top, resolution, resolution)
			if stats := compareBytes(got.pix, want); stats.max != 0 {
				t.Errorf("%dx%d at %d: window differs from full resize then crop: %v", size[0], size[1], resolution, stats)
			}
		}
	}
}

func TestResizeSameSizeIsIdentity(t *testing.T) {
	src := rgbImage{width: 3, height: 2, pix: []uint8{1, 2, 3, 40, 50, 60, 70, 80, 90, 200, 210, 220, 0, 255, 7, 9, 9, 9}}
	got := resizeWindow(src, 3, 2, 0, 0, 3, 2)
	if !slices.Equal(got.pix, src.pix) {
		t.Errorf("got %v, want %v", got.pix, src.pix)
	}
}

func TestResampleWeightsSumToOne(t *testing.T) {
	for _, sizes := range [][2]int{{10, 3}, {3, 10}, {229, 16}, {155, 256}, {7, 7}} {
		for i, tap := range resampleWeights(sizes[0], sizes[1], 0, sizes[1]) {
			var sum int64
			for _, w := range tap.weights {
				sum += int64(w)
			}
			// Each weight is rounded separately, so the sum may miss 1.0 by
			// a few units of the last place.
			if d := sum - 1<<fixedPointBits; d < -8 || d > 8 {
				t.Errorf("%d to %d, pixel %d: weights sum to %d, want about %d", sizes[0], sizes[1], i, sum, 1<<fixedPointBits)
			}
			if tap.first < 0 || tap.first+len(tap.weights) > sizes[0] {
				t.Errorf("%d to %d, pixel %d: taps [%d, %d) leave the image", sizes[0], sizes[1], i, tap.first, tap.first+len(tap.weights))
			}
		}
	}
}

func TestShorterSideTo(t *testing.T) {
	for _, tc := range []struct{ width, height, resolution, wantWidth, wantHeight int }{
		{229, 155, 16, 23, 16},    // 16*229/155 = 23.6, truncated
		{155, 229, 16, 16, 23},    // portrait
		{100, 100, 16, 16, 16},    // square: width counts as shorter
		{480, 320, 256, 384, 256}, // exact
		{191, 89, 64, 137, 64},    // 137.3
	} {
		w, h := shorterSideTo(tc.width, tc.height, tc.resolution)
		if w != tc.wantWidth || h != tc.wantHeight {
			t.Errorf("%dx%d at %d: got %dx%d, want %dx%d", tc.width, tc.height, tc.resolution, w, h, tc.wantWidth, tc.wantHeight)
		}
	}
}

func TestCentreCropOffsetRoundsHalfToEven(t *testing.T) {
	for _, tc := range []struct{ size, crop, want int }{
		{16, 16, 0},
		{17, 16, 0}, // 0.5 rounds to 0
		{19, 16, 2}, // 1.5 rounds to 2
		{21, 16, 2}, // 2.5 rounds to 2
		{23, 16, 4}, // 3.5 rounds to 4
		{24, 16, 4},
	} {
		if got := centreCropOffset(tc.size, tc.crop); got != tc.want {
			t.Errorf("size %d crop %d: got %d, want %d", tc.size, tc.crop, got, tc.want)
		}
	}
}

func TestPreprocessDropsAlphaAndExpandsGray(t *testing.T) {
	// A fully transparent pixel keeps its stored colour, as Pillow's
	// convert("RGB") keeps it.
	transparent := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	transparent.SetNRGBA(0, 0, color.NRGBA{R: 200, G: 100, B: 50, A: 0})
	gray := image.NewGray(image.Rect(0, 0, 1, 1))
	gray.SetGray(0, 0, color.Gray{Y: 77})
	paletted := image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.NRGBA{R: 10, G: 20, B: 30, A: 0}})
	deep := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
	deep.SetNRGBA64(0, 0, color.NRGBA64{R: 0x1234, G: 0xfedc, B: 0x8000, A: 0})
	// A sub-image whose bounds do not start at the origin.
	wide := image.NewNRGBA(image.Rect(0, 0, 3, 1))
	wide.SetNRGBA(2, 0, color.NRGBA{R: 1, G: 2, B: 3, A: 255})
	sub := wide.SubImage(image.Rect(2, 0, 3, 1))

	for _, tc := range []struct {
		name string
		img  image.Image
		want []uint8
	}{
		{"transparent NRGBA", transparent, []uint8{200, 100, 50}},
		{"gray", gray, []uint8{77, 77, 77}},
		{"paletted", paletted, []uint8{10, 20, 30}},
		{"NRGBA64", deep, []uint8{0x12, 0xfe, 0x80}},
		{"sub-image", sub, []uint8{1, 2, 3}},
	} {
		got, err := preprocessPixels(tc.img, 1, true)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(got.pix, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got.pix, tc.want)
		}
	}
}

func TestPreprocessRejectsBadInput(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for _, tc := range []struct {
		name       string
		img        image.Image
		resolution int
		wantError  string
	}{
		{"zero resolution", img, 0, "invalid image resolution 0"},
		{"negative resolution", img, -16, "invalid image resolution -16"},
		{"nil image", nil, 16, "image is nil"},
		{"empty image", image.NewGray(image.Rect(0, 0, 0, 5)), 16, "image is empty"},
	} {
		_, err := Preprocess(tc.img, tc.resolution, false)
		if err == nil || !strings.Contains(err.Error(), tc.wantError) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.wantError)
		}
	}
}

func TestCheckResolution(t *testing.T) {
	for _, tc := range []struct {
		resolution, factor int
		wantError          string // empty for success
	}{
		{512, 16, ""},
		{256, 16, ""},
		{16, 16, ""},
		{500, 16, "use 496 or 512"},
		{8, 16, "use 16"},
		{0, 16, "invalid image resolution 0"},
		{-32, 16, "invalid image resolution -32"},
		{512, 0, "invalid resolution factor 0"},
	} {
		err := CheckResolution(tc.resolution, tc.factor)
		switch {
		case tc.wantError == "" && err != nil:
			t.Errorf("CheckResolution(%d, %d): unexpected error %v", tc.resolution, tc.factor, err)
		case tc.wantError != "" && (err == nil || !strings.Contains(err.Error(), tc.wantError)):
			t.Errorf("CheckResolution(%d, %d): got error %v, want one containing %q", tc.resolution, tc.factor, err, tc.wantError)
		}
	}
}
