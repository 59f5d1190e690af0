// Package imageio reads images into the pixel tensors that the MAGVIT-v2
// encoder takes and turns decoder output back into images, reproducing the
// pre- and post-processing of the upstream MMaDA code (PyTorch, torchvision
// 0.14 transforms over Pillow 9.4).
//
// # Input
//
// Decode reads PNG, JPEG and GIF files. Preprocess converts an image to RGB,
// resizes it with Pillow's antialiased bicubic filter (centre crop or
// squash) and scales the bytes to [-1, 1] as a float32 [1, 3, R, R] tensor.
// CheckResolution tests that R suits a model's downsampling factor.
//
// # Output
//
// ToImage and ToHWCUint8 apply upstream's post-processing to a float32
// [B, 3, H, W] tensor: clamp((x+1)/2, 0, 1) * 255, truncated to uint8.
// WritePNG writes a PNG file atomically.
//
// # Why a resampler of our own
//
// The MAGVIT-v2 token ids are the signs of the encoder's output, so a pixel
// that is off by one level can flip a token. The resampler in resample.go
// therefore follows Pillow's documented algorithm step by step: the a=-0.5
// cubic kernel widened by the reduction factor, per-pixel normalised weights
// in 22-bit fixed point, the horizontal pass first, and rounding and
// clamping to uint8 after each pass. On the test images it matches Pillow
// 9.4 exactly.
//
// golang.org/x/image/draw's CatmullRom kernel has the same kernel, the
// same widening and the same pixel centres, but it keeps the intermediate
// image in floating point, works on 16-bit premultiplied values and reduces
// them to 8 bits by truncation. The test inputs are Pillow's decoded pixels
// of the four test images at resolutions 16, 64 and 256. On them it
// differed from Pillow in 16.6% of the values, by 0.17/255 on average and
// by up to 11/255 where an enlarged edge overshoots, which misses the
// 8/255 bound. TestXImageDrawDiffersFromPillow logs these numbers.
//
// # JPEG colours
//
// Pillow decodes JPEG with libjpeg-turbo, whose default chroma upsampling
// and YCbCr conversion differ from Go's image/jpeg. Decode redoes those two
// steps the libjpeg way on the planes Go decodes (jpeg.go), which leaves
// only inverse-DCT differences: at most 3/255, in 0.3% of the values of
// the test images clevr.jpg and geo.jpg and 3.3% of llava1.jpg. After
// preprocessing these become at most 3/255 and a mean of at most 0.006/255
// at resolutions 16 to 256 (TestPreprocessMatchesPillow).
//
// # Test data
//
// testdata/gen_reference.py writes the Pillow reference pixels in
// testdata/reference.safetensors; see its header for how to rerun it.
package imageio
