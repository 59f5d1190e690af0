package imageio

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"

	"github.com/mmadac/mmadac/ir"
)

// ToImage converts image index of a decoder output tensor, float32
// [B, 3, H, W] with channels RGB and values nominally in [-1, 1], to an
// opaque RGBA image. Each value becomes a byte with upstream MMaDA's
// post-processing (see toByte).
func ToImage(pixels *ir.Tensor, index int) (*image.RGBA, error) {
	data, batch, height, width, err := checkPixels(pixels)
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= batch {
		return nil, fmt.Errorf("image index %d is out of range for a batch of %d images", index, batch)
	}

	plane := height * width
	channels := data[index*3*plane : (index+1)*3*plane]
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		for x := range width {
			i := y*width + x
			o := y*img.Stride + x*4
			img.Pix[o] = toByte(channels[i])
			img.Pix[o+1] = toByte(channels[plane+i])
			img.Pix[o+2] = toByte(channels[2*plane+i])
			img.Pix[o+3] = 0xff
		}
	}
	return img, nil
}

// ToHWCUint8 converts a whole decoder output tensor, float32 [B, 3, H, W],
// to bytes in [B, H, W, 3] order with the same post-processing as ToImage.
// The layout is that of upstream's numpy images, for comparison with
// reference images stored as uint8 arrays.
func ToHWCUint8(pixels *ir.Tensor) ([]uint8, error) {
	data, batch, height, width, err := checkPixels(pixels)
	if err != nil {
		return nil, err
	}

	plane := height * width
	out := make([]uint8, batch*plane*3)
	for b := range batch {
		channels := data[b*3*plane : (b+1)*3*plane]
		dst := out[b*plane*3 : (b+1)*plane*3]
		for i := range plane {
			for c := range 3 {
				dst[i*3+c] = toByte(channels[c*plane+i])
			}
		}
	}
	return out, nil
}

// toByte is upstream's post-processing of one value, all in float32:
// clamp((x + 1) / 2, 0, 1) * 255, then a cast to uint8 that truncates
// toward zero instead of rounding (numpy's astype). NaN becomes 0, which
// is what numpy's cast gives on x86-64. Go's float-to-integer conversion
// also truncates, so uint8(v) matches for every v in [0, 255].
func toByte(x float32) uint8 {
	v := (x + 1) / 2
	switch {
	case math.IsNaN(float64(v)):
		return 0
	case v < 0:
		v = 0
	case v > 1:
		v = 1
	}
	return uint8(v * 255)
}

// checkPixels validates a [B, 3, H, W] float32 tensor and returns its data
// and sizes.
func checkPixels(pixels *ir.Tensor) (data []float32, batch, height, width int, err error) {
	if pixels == nil {
		return nil, 0, 0, 0, errors.New("pixel tensor is nil")
	}
	if pixels.DType != ir.F32 {
		return nil, 0, 0, 0, fmt.Errorf("pixel tensor has dtype %v, want f32; convert it to float32 first", pixels.DType)
	}
	if len(pixels.Shape) != 4 || pixels.Shape[1] != 3 {
		return nil, 0, 0, 0, fmt.Errorf("pixel tensor has shape %v, want [batch, 3, height, width]", pixels.Shape)
	}
	for _, d := range pixels.Shape {
		if d <= 0 {
			return nil, 0, 0, 0, fmt.Errorf("pixel tensor has shape %v, want every dimension positive", pixels.Shape)
		}
	}
	data, ok := pixels.Data.([]float32)
	if !ok {
		return nil, 0, 0, 0, fmt.Errorf("invalid pixel tensor: dtype f32 but data of type %T", pixels.Data)
	}
	if int64(len(data)) != ir.NumElements(pixels.Shape) {
		return nil, 0, 0, 0, fmt.Errorf("invalid pixel tensor: shape %v needs %d values, but the data has %d", pixels.Shape, ir.NumElements(pixels.Shape), len(data))
	}
	return data, int(pixels.Shape[0]), int(pixels.Shape[2]), int(pixels.Shape[3]), nil
}

// WritePNG encodes img as PNG at path. It writes a temporary file in the
// same directory and renames it over path, so path never holds a partial
// image: after an error the old file, if any, is unchanged and the
// temporary file is removed. The file gets permissions 0644.
func WritePNG(path string, img image.Image) (err error) {
	if img == nil {
		return fmt.Errorf("write PNG %s: the image is nil", path)
	}
	if img.Bounds().Empty() {
		return fmt.Errorf("write PNG %s: the image is empty (bounds %v)", path, img.Bounds())
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write PNG %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	if err := png.Encode(tmp, img); err != nil {
		return fmt.Errorf("write PNG %s: encode: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write PNG %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write PNG %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write PNG %s: %w", path, err)
	}
	return nil
}
