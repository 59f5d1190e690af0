package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // registers the GIF decoder with image.Decode
	"image/jpeg"
	_ "image/png" // registers the PNG decoder with image.Decode
	"os"
)

// supportedFormats names the decoders registered by this package, for error
// messages.
const supportedFormats = "PNG, JPEG, GIF"

// Decode reads an image file in PNG, JPEG or GIF format (the first frame of
// a GIF). A JPEG file comes back as an opaque *image.RGBA whose colours
// follow libjpeg's decoder, the one Pillow uses (see fromLibjpegColours).
// Other formats come back as the standard library decodes them, alpha
// included.
//
// EXIF orientation is not applied, as Pillow's Image.open does not apply it.
func Decode(path string) (image.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	img, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode image %s: %w", path, err)
	}
	return img, nil
}

// DecodeBytes decodes an image held in memory, in the formats Decode accepts.
func DecodeBytes(data []byte) (image.Image, error) {
	img, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode image from %d bytes: %w", len(data), err)
	}
	return img, nil
}

func decode(data []byte) (image.Image, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("the data is empty (supported formats: %s)", supportedFormats)
	}
	_, format, err := image.DecodeConfig(bytes.NewReader(data))
	if errors.Is(err, image.ErrFormat) {
		return nil, fmt.Errorf("unrecognised image format (supported formats: %s)", supportedFormats)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid or truncated image header (supported formats: %s): %w", supportedFormats, err)
	}

	if format == "jpeg" {
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("invalid or truncated JPEG data: %w", err)
		}
		return fromLibjpegColours(img), nil
	}

	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("invalid or truncated %s data: %w", format, err)
	}
	return img, nil
}

// toRGB converts img to packed 8-bit RGB the way Pillow's convert("RGB")
// does for the modes a PNG, JPEG or GIF file opens in:
//
//   - alpha is dropped and the colour channels are kept as stored, not
//     composited over a background and not premultiplied;
//   - gray is copied into all three channels;
//   - palette images take the palette's colour;
//   - 16-bit channels keep their high byte.
//
// NOTE: Pillow 9.4 opens a 16-bit grayscale PNG in mode "I" and clamps its
// values to 255 when converting to RGB, so nearly every pixel turns white.
// This function keeps the high byte instead, which differs from Pillow for
// such files. Premultiplied colours with partial alpha (image.RGBA and
// friends) are un-premultiplied first, which loses precision the stored
// straight colours would not have. Go's GIF decoder stores the transparent
// palette entry as transparent black, where Pillow keeps its colour.
func toRGB(img image.Image) rgbImage {
	b := img.Bounds()
	out := rgbImage{width: b.Dx(), height: b.Dy()}
	out.pix = make([]uint8, out.width*out.height*3)

	switch m := img.(type) {
	case *image.NRGBA:
		for y := range out.height {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*4:]
			for x := range out.width {
				copy(out.pix[(y*out.width+x)*3:(y*out.width+x)*3+3], row[x*4:x*4+3])
			}
		}
		return out
	case *image.RGBA:
		for y := range out.height {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X)*4:]
			for x := range out.width {
				i := (y*out.width + x) * 3
				p := row[x*4 : x*4+4]
				if p[3] == 0xff {
					copy(out.pix[i:i+3], p[:3])
				} else {
					out.pix[i], out.pix[i+1], out.pix[i+2] = straightRGB(color.RGBA{p[0], p[1], p[2], p[3]})
				}
			}
		}
		return out
	case *image.Gray:
		for y := range out.height {
			row := m.Pix[(y+b.Min.Y-m.Rect.Min.Y)*m.Stride+(b.Min.X-m.Rect.Min.X):]
			for x := range out.width {
				i := (y*out.width + x) * 3
				out.pix[i], out.pix[i+1], out.pix[i+2] = row[x], row[x], row[x]
			}
		}
		return out
	}

	for y := range out.height {
		for x := range out.width {
			r, g, bl := straightRGB(img.At(b.Min.X+x, b.Min.Y+y))
			i := (y*out.width + x) * 3
			out.pix[i], out.pix[i+1], out.pix[i+2] = r, g, bl
		}
	}
	return out
}

// straightRGB returns the non-premultiplied 8-bit colour of c, ignoring alpha.
func straightRGB(c color.Color) (r, g, b uint8) {
	switch c := c.(type) {
	case color.NRGBA:
		return c.R, c.G, c.B
	case color.NRGBA64:
		return uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)
	case color.Gray:
		return c.Y, c.Y, c.Y
	case color.Gray16:
		return uint8(c.Y >> 8), uint8(c.Y >> 8), uint8(c.Y >> 8)
	case color.RGBA:
		if c.A == 0xff {
			return c.R, c.G, c.B
		}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return n.R, n.G, n.B
}
