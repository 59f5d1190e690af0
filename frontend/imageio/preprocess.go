package imageio

import (
	"errors"
	"fmt"
	"image"
	"log/slog"
	"math"

	"github.com/mmadac/mmadac/ir"
)

// CheckResolution returns an error unless resolution is a positive multiple
// of factor, for example of the tokenizer's downsampling factor 16, which
// makes the token grid resolution/16 on a side. Preprocess itself accepts
// any positive resolution.
func CheckResolution(resolution, factor int) error {
	if factor <= 0 {
		return fmt.Errorf("invalid resolution factor %d: it must be positive", factor)
	}
	if resolution <= 0 {
		return fmt.Errorf("invalid image resolution %d: it must be a positive multiple of %d", resolution, factor)
	}
	if resolution%factor != 0 {
		lower := resolution / factor * factor
		upper := lower + factor
		if lower == 0 {
			return fmt.Errorf("invalid image resolution %d: it must be a multiple of %d; use %d", resolution, factor, upper)
		}
		return fmt.Errorf("invalid image resolution %d: it must be a multiple of %d; use %d or %d", resolution, factor, lower, upper)
	}
	return nil
}

// Preprocess turns an image into the pixel tensor the MAGVIT-v2 encoder
// takes: float32 of shape [1, 3, resolution, resolution], channels RGB,
// values in [-1, 1]. It reproduces MMaDA's preprocessing on PIL images
// (torchvision 0.14 transforms over Pillow 9.4):
//
//  1. Convert to RGB as Pillow's convert("RGB") does (see toRGB): alpha is
//     dropped, gray is expanded.
//  2. Resize with Pillow's bicubic filter, antialiased when reducing (see
//     resample.go). With squash false (MMaDA's default transform) the
//     shorter side becomes resolution and the longer side
//     int(resolution * long / short), then a centre crop of resolution x
//     resolution follows, at top = round((H - resolution) / 2) and likewise
//     left, with halves rounded to even as Python's round does. With squash
//     true the image is resized straight to resolution x resolution,
//     changing its aspect ratio. Upstream's understanding script picks
//     squash for files whose names contain ai2d, clevr, docvqa, geo or
//     llava.
//  3. Scale each uint8 value v to ((v / 255) - 0.5) / 0.5, in float32.
//
// Decode JPEG files with Decode, not image/jpeg directly, to get Pillow's
// colours.
func Preprocess(img image.Image, resolution int, squash bool) (*ir.Tensor, error) {
	pixels, err := preprocessPixels(img, resolution, squash)
	if err != nil {
		return nil, err
	}

	// HWC uint8 to CHW float32. Every value goes through the same float32
	// steps as torchvision's ToTensor and Normalize, so a table of the 256
	// possible results is exact.
	var table [256]float32
	for v := range table {
		x := float32(v) / 255
		table[v] = (x - 0.5) / 0.5
	}
	plane := resolution * resolution
	data := make([]float32, 3*plane)
	for i := range plane {
		for c := range 3 {
			data[c*plane+i] = table[pixels.pix[i*3+c]]
		}
	}
	return ir.FromF32(data, 1, 3, int64(resolution), int64(resolution)), nil
}

// preprocessPixels runs steps 1 and 2 of Preprocess and returns the uint8
// RGB pixels, resolution x resolution.
func preprocessPixels(img image.Image, resolution int, squash bool) (rgbImage, error) {
	if resolution <= 0 {
		return rgbImage{}, fmt.Errorf("invalid image resolution %d: it must be positive", resolution)
	}
	if img == nil {
		return rgbImage{}, errors.New("preprocess image: the image is nil")
	}
	bounds := img.Bounds()
	if bounds.Empty() {
		return rgbImage{}, fmt.Errorf("preprocess image: the image is empty (bounds %v)", bounds)
	}

	src := toRGB(img)
	if squash {
		slog.Debug("resizing image", "width", src.width, "height", src.height, "resolution", resolution, "path", "squash")
		return resizeWindow(src, resolution, resolution, 0, 0, resolution, resolution), nil
	}

	width, height := shorterSideTo(src.width, src.height, resolution)
	top := centreCropOffset(height, resolution)
	left := centreCropOffset(width, resolution)
	slog.Debug("resizing image", "width", src.width, "height", src.height,
		"resized_width", width, "resized_height", height, "crop_left", left, "crop_top", top, "path", "crop")
	// Only the cropped window of the resized image is computed. Each output
	// pixel depends only on its own position, so this equals resizing the
	// whole image and cropping afterwards, and it keeps memory bounded for
	// very elongated images.
	return resizeWindow(src, width, height, left, top, resolution, resolution), nil
}

// shorterSideTo returns the size torchvision's Resize(resolution) gives an
// image of width x height: the shorter side becomes resolution and the
// longer side int(resolution * long / short), truncated. A square image
// counts its width as the shorter side. The longer side is never below
// resolution, so the centre crop always fits.
func shorterSideTo(width, height, resolution int) (newWidth, newHeight int) {
	// Integer division equals Python's int() of the float quotient here:
	// the product is exact and a fraction of at least 1/short cannot round
	// up to the next integer in float64 for any realistic image size.
	if width <= height {
		return resolution, int(int64(resolution) * int64(height) / int64(width))
	}
	return int(int64(resolution) * int64(width) / int64(height)), resolution
}

// centreCropOffset returns torchvision's CenterCrop offset along one axis:
// int(round((size - crop) / 2)) with Python's round, halves to even.
func centreCropOffset(size, crop int) int {
	return int(math.RoundToEven(float64(size-crop) / 2))
}
