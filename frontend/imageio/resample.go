package imageio

import "math"

// This file holds a separable bicubic resampler that follows the documented
// algorithm of Pillow's Image.resize with Image.BICUBIC (Pillow 9.4, the
// resampler that torchvision's Resize uses for PIL images). The steps:
//
//   - The cubic convolution kernel with a = -0.5 and support 2.
//   - When reducing by a factor s > 1, the kernel is stretched by s, so its
//     support becomes 2s source pixels. This is Pillow's antialiasing.
//   - Output pixel i has its centre at source coordinate (i + 0.5) * scale.
//     Its taps run from int(centre - support + 0.5) to
//     int(centre + support + 0.5), clipped to the image, and the weights are
//     normalised to sum to 1 over the taps that remain.
//   - The weights become 22-bit fixed point, rounded half away from zero.
//   - The horizontal pass runs first. Each pass adds 2^21 for rounding, shifts
//     right by 22 and clamps to 0..255, so the intermediate image is uint8.
//   - A pass whose output size equals its input size is skipped.
//
// The result equals Pillow's to the last bit on the test images (see
// preprocess_test.go).

// fixedPointBits is the fraction width of the integer weights. Pillow uses
// 32 - 8 - 2 bits for 8-bit images so that the sums cannot overflow int32.
const fixedPointBits = 22

// cubicSupport is the half-width of the a = -0.5 cubic kernel in pixels.
const cubicSupport = 2.0

// cubic evaluates the cubic convolution kernel with a = -0.5 (Keys' kernel,
// the Catmull-Rom spline).
func cubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	switch {
	case x < 1:
		return ((a+2)*x-(a+3))*x*x + 1
	case x < 2:
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// taps holds the fixed-point weights of one output pixel along one axis: the
// pixel reads source indices first, first+1, ..., first+len(weights)-1.
type taps struct {
	first   int
	weights []int32
}

// resampleWeights computes the taps of output pixels [outFirst, outFirst+count)
// when an axis of inSize pixels is resized to outSize pixels. Each output
// pixel's taps depend only on its own index, so a window of the output
// (a centre crop) gets exactly the weights the full resize would use.
func resampleWeights(inSize, outSize, outFirst, count int) []taps {
	scale := float64(inSize) / float64(outSize)
	filterScale := max(scale, 1.0)
	support := cubicSupport * filterScale
	invFilterScale := 1 / filterScale

	result := make([]taps, count)
	float := make([]float64, 0, int(math.Ceil(support))*2+1)
	for i := range result {
		centre := (float64(outFirst+i) + 0.5) * scale
		// Go's int conversion truncates toward zero like C's cast, which
		// Pillow relies on here.
		first := max(int(centre-support+0.5), 0)
		last := min(int(centre+support+0.5), inSize)

		float = float[:0]
		total := 0.0
		for x := first; x < last; x++ {
			w := cubic((float64(x) - centre + 0.5) * invFilterScale)
			float = append(float, w)
			total += w
		}

		fixed := make([]int32, len(float))
		for k, w := range float {
			if total != 0 {
				w /= total
			}
			fixed[k] = toFixedPoint(w)
		}
		result[i] = taps{first: first, weights: fixed}
	}
	return result
}

// toFixedPoint rounds a weight to fixedPointBits fraction bits, half away
// from zero.
func toFixedPoint(w float64) int32 {
	scaled := w * (1 << fixedPointBits)
	if scaled < 0 {
		return int32(scaled - 0.5)
	}
	return int32(scaled + 0.5)
}

// clampFixedPoint turns a rounded fixed-point sum back into a pixel value.
func clampFixedPoint(sum int64) uint8 {
	v := sum >> fixedPointBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// rgbImage is a packed 8-bit RGB raster, row-major, 3 bytes a pixel.
type rgbImage struct {
	width, height int
	pix           []uint8
}

// resizeWindow resizes src to width x height with Pillow's bicubic filter
// and returns the window of that result whose top-left corner is (left, top)
// and whose size is windowWidth x windowHeight. With the full window it is
// a plain resize. The window must lie inside the resized image.
func resizeWindow(src rgbImage, width, height, left, top, windowWidth, windowHeight int) rgbImage {
	needHorizontal := width != src.width
	needVertical := height != src.height

	// The vertical pass reads only the source rows that its taps cover, so
	// the horizontal pass runs over just those rows.
	rowFirst, rowLast := top, top+windowHeight
	var vertical []taps
	if needVertical {
		vertical = resampleWeights(src.height, height, top, windowHeight)
		rowFirst = vertical[0].first
		rowLast = 0
		for _, t := range vertical {
			rowLast = max(rowLast, t.first+len(t.weights))
		}
	}

	// Horizontal pass: rows [rowFirst, rowLast) of src, columns of the window.
	rows := rgbImage{width: windowWidth, height: rowLast - rowFirst}
	if needHorizontal {
		horizontal := resampleWeights(src.width, width, left, windowWidth)
		rows.pix = make([]uint8, rows.width*rows.height*3)
		for y := range rows.height {
			in := src.pix[(rowFirst+y)*src.width*3 : (rowFirst+y+1)*src.width*3]
			out := rows.pix[y*rows.width*3 : (y+1)*rows.width*3]
			for x, t := range horizontal {
				r, g, b := int64(1)<<(fixedPointBits-1), int64(1)<<(fixedPointBits-1), int64(1)<<(fixedPointBits-1)
				for k, w := range t.weights {
					p := in[(t.first+k)*3:]
					r += int64(p[0]) * int64(w)
					g += int64(p[1]) * int64(w)
					b += int64(p[2]) * int64(w)
				}
				out[x*3] = clampFixedPoint(r)
				out[x*3+1] = clampFixedPoint(g)
				out[x*3+2] = clampFixedPoint(b)
			}
		}
	} else {
		rows.pix = copyWindow(src, left, rowFirst, windowWidth, rows.height)
	}

	if !needVertical {
		return rows
	}

	// Vertical pass over the intermediate rows, whose row 0 is source row
	// rowFirst.
	dst := rgbImage{width: windowWidth, height: windowHeight}
	dst.pix = make([]uint8, windowWidth*windowHeight*3)
	stride := rows.width * 3
	for y, t := range vertical {
		out := dst.pix[y*stride : (y+1)*stride]
		for i := range stride {
			sum := int64(1) << (fixedPointBits - 1)
			for k, w := range t.weights {
				sum += int64(rows.pix[(t.first-rowFirst+k)*stride+i]) * int64(w)
			}
			out[i] = clampFixedPoint(sum)
		}
	}
	return dst
}

// copyWindow returns the pixels of a width x height window of src whose
// top-left corner is (left, top).
func copyWindow(src rgbImage, left, top, width, height int) []uint8 {
	pix := make([]uint8, width*height*3)
	for y := range height {
		start := ((top+y)*src.width + left) * 3
		copy(pix[y*width*3:(y+1)*width*3], src.pix[start:start+width*3])
	}
	return pix
}
