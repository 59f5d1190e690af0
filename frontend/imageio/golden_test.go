package imageio_test

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mmadac/mmadac/frontend"
	"github.com/mmadac/mmadac/frontend/imageio"
)

// TestPreprocessMatchesUpstreamGolden compares Preprocess with the pixel
// tensors the upstream PyTorch code produced for dog.png at resolution 16
// (torchvision 0.14 over Pillow).
func TestPreprocessMatchesUpstreamGolden(t *testing.T) {
	golden, err := frontend.ReadSafetensors(filepath.Join("testdata", "vq-encode.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := imageio.Decode(filepath.Join("testdata", "dog.png"))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		squash bool
	}{
		{"pixels_center_crop", false},
		{"pixels_squash", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, ok := golden[tc.name]
			if !ok {
				t.Fatalf("vq-encode.safetensors has no tensor %q", tc.name)
			}
			got, err := imageio.Preprocess(img, 16, tc.squash)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Shape, want.Shape) {
				t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
			}

			var maxDiff, sumDiff float64
			for i, w := range want.F32() {
				d := math.Abs(float64(got.F32()[i] - w))
				maxDiff = max(maxDiff, d)
				sumDiff += d
			}
			meanDiff := sumDiff / float64(want.Len())
			// Values lie in [-1, 1], so one image level of 1/255 is 2/255
			// here. The log reports image levels.
			t.Logf("%s: max %.4f/255, mean %.4f/255", tc.name, maxDiff*255/2, meanDiff*255/2)
			if maxDiff != 0 {
				t.Errorf("differs from upstream: max %g, mean %g", maxDiff, meanDiff)
			}
		})
	}
}
