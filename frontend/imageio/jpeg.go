package imageio

import "image"

// Go's image/jpeg returns the decoded Y, Cb and Cr planes with the chroma
// planes at their stored (subsampled) size, and its colour conversion
// replicates each chroma sample over the pixels it covers. Pillow decodes
// JPEG with libjpeg(-turbo) at its default settings, which differ in two
// ways that change pixel values:
//
//   - "Fancy upsampling": subsampled chroma is interpolated with a triangle
//     filter (3/4 of the nearer sample plus 1/4 of the next one) instead of
//     being replicated. With replication, Go's pixels of the 4:2:0 test
//     image clevr.jpg are off by up to 14 levels at colour edges.
//   - The YCbCr to RGB conversion rounds each chroma term with a constant
//     1/2, where Go's rounding term depends on Y. With Go's conversion, 24%
//     of the values of the 4:4:4 test image llava1.jpg differ from Pillow's
//     (by at most 4 levels), against 3.3% with libjpeg's.
//
// fromLibjpegColours redoes both steps the libjpeg way on Go's decoded
// planes. What remains is the difference between the two inverse DCTs: at
// most 3 levels, in 0.3% of the values of clevr.jpg and geo.jpg and 3.3%
// of llava1.jpg (TestJPEGMatchesPillowDecode).
//
// NOTE: this reproduces libjpeg-turbo with the default decoder settings
// that Pillow 9.4 uses. A Pillow built against another libjpeg, or a
// draft-mode or scaled decode, gives other pixels.

// fromLibjpegColours converts a decoded JPEG to an opaque *image.RGBA as
// libjpeg's default decoder would produce it. Images that are not YCbCr
// (gray, CMYK, or RGB JPEGs with an Adobe transform of 0) are returned
// unchanged. Go's decoder places the image at the origin, which the plane
// indexing below relies on.
func fromLibjpegColours(img image.Image) image.Image {
	m, ok := img.(*image.YCbCr)
	if !ok || m.Rect.Min != (image.Point{}) {
		return img
	}
	width, height := m.Rect.Dx(), m.Rect.Dy()

	// The factors by which the chroma planes are smaller than the image.
	hFactor, vFactor := 1, 1
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hFactor = 2
	case image.YCbCrSubsampleRatio420:
		hFactor, vFactor = 2, 2
	case image.YCbCrSubsampleRatio440:
		vFactor = 2
	case image.YCbCrSubsampleRatio411:
		hFactor = 4
	case image.YCbCrSubsampleRatio410:
		hFactor, vFactor = 4, 2
	}
	plane := chromaPlane{
		stride: m.CStride,
		width:  (width + hFactor - 1) / hFactor,
		height: (height + vFactor - 1) / vFactor,
	}
	plane.pix = m.Cb
	cb := plane.upsample(width, height, hFactor, vFactor)
	plane.pix = m.Cr
	cr := plane.upsample(width, height, hFactor, vFactor)

	out := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := range height {
		lumaRow := m.Y[y*m.YStride:]
		for x := range width {
			r, g, b := libjpegYCbCrToRGB(lumaRow[x], cb[y*width+x], cr[y*width+x])
			i := y*out.Stride + x*4
			out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = r, g, b, 0xff
		}
	}
	return out
}

// libjpegYCbCrToRGB converts one JFIF YCbCr sample with libjpeg's 16-bit
// fixed-point coefficients (1.402, 0.34414, 0.71414, 1.772) and its
// rounding: each chroma term is rounded with +1/2 before it is added to Y.
func libjpegYCbCrToRGB(y, cb, cr uint8) (r, g, b uint8) {
	const half = 1 << 15
	yy := int32(y)
	cbc := int32(cb) - 128
	crc := int32(cr) - 128
	r = clampByte(yy + (91881*crc+half)>>16)
	g = clampByte(yy + (-22554*cbc-46802*crc+half)>>16)
	b = clampByte(yy + (116130*cbc+half)>>16)
	return r, g, b
}

func clampByte(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// chromaPlane is one subsampled chroma plane as Go's decoder stores it:
// width x height samples, rows stride bytes apart, origin at pix[0].
type chromaPlane struct {
	pix           []uint8
	stride        int
	width, height int
}

// at returns the sample in column x of row y, with rows outside the plane
// replaced by the nearest edge row, as libjpeg's context rows are.
func (p chromaPlane) at(x, y int) int32 {
	y = min(max(y, 0), p.height-1)
	return int32(p.pix[y*p.stride+x])
}

// upsample returns the plane interpolated to width x height the way
// libjpeg-turbo's default decoder does: the triangle filter for 2x
// horizontal (4:2:2), 2x both ways (4:2:0) and 2x vertical (4:4:0), and
// replication for every other factor. Like libjpeg, it replicates instead
// of interpolating when a plane is 2 samples wide or narrower in the
// horizontally subsampled cases.
func (p chromaPlane) upsample(width, height, hFactor, vFactor int) []uint8 {
	out := make([]uint8, width*height)
	fancy2x := hFactor == 2 && p.width > 2
	for y := range height {
		row := out[y*width : (y+1)*width]
		cy := y / vFactor
		switch {
		case fancy2x && vFactor == 2:
			p.upsampleRow420(row, cy, y%2 == 1)
		case fancy2x && vFactor == 1:
			p.upsampleRow422(row, cy)
		case hFactor == 1 && vFactor == 2:
			p.upsampleRow440(row, cy, y%2 == 1)
		default:
			for x := range row {
				row[x] = uint8(p.at(x/hFactor, cy))
			}
		}
	}
	return out
}

// upsampleRow422 fills one output row from chroma row cy with the
// horizontal triangle filter. The even output pixel of sample i leans on
// sample i-1 and the odd one on sample i+1; the outermost output pixels
// copy their sample. Rounding biases are 1 and 2 (out of 4), as libjpeg's.
func (p chromaPlane) upsampleRow422(row []uint8, cy int) {
	for x := range row {
		i := x / 2
		this := p.at(i, cy)
		switch {
		case x%2 == 0 && i == 0, x%2 == 1 && i == p.width-1:
			row[x] = uint8(this)
		case x%2 == 0:
			row[x] = uint8((3*this + p.at(i-1, cy) + 1) >> 2)
		default:
			row[x] = uint8((3*this + p.at(i+1, cy) + 2) >> 2)
		}
	}
}

// upsampleRow420 fills one output row with the triangle filter in both
// directions. Vertically each column sums 3 x the nearer chroma row cy plus
// the next nearer one (above for the upper output row of the pair, below
// for the lower). Horizontally it mixes those column sums 3:1 as in
// upsampleRow422, with the outermost pixels using 4 x their own column sum,
// and divides by 16 with rounding biases 8 and 7, as libjpeg's.
func (p chromaPlane) upsampleRow420(row []uint8, cy int, lower bool) {
	other := cy - 1
	if lower {
		other = cy + 1
	}
	column := func(i int) int32 { return 3*p.at(i, cy) + p.at(i, other) }
	for x := range row {
		i := x / 2
		this := column(i)
		switch {
		case x%2 == 0 && i == 0:
			row[x] = uint8((4*this + 8) >> 4)
		case x%2 == 1 && i == p.width-1:
			row[x] = uint8((4*this + 7) >> 4)
		case x%2 == 0:
			row[x] = uint8((3*this + column(i-1) + 8) >> 4)
		default:
			row[x] = uint8((3*this + column(i+1) + 7) >> 4)
		}
	}
}

// upsampleRow440 fills one output row with the vertical triangle filter:
// 3 x the nearer chroma row plus the next nearer, rounding bias 1 for the
// upper output row of the pair and 2 for the lower, as libjpeg's.
func (p chromaPlane) upsampleRow440(row []uint8, cy int, lower bool) {
	other, bias := cy-1, int32(1)
	if lower {
		other, bias = cy+1, 2
	}
	for x := range row {
		row[x] = uint8((3*p.at(x, cy) + p.at(x, other) + bias) >> 2)
	}
}
