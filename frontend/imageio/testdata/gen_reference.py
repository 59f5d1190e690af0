"""Write reference pixels for the imageio tests with Pillow.

Run from this directory with Debian's Python (numpy and python3-pil):

    /usr/bin/python3 gen_reference.py

The upstream MMaDA preprocessing is torchvision's Resize(R, BICUBIC) followed
by CenterCrop(R) (the "crop" path), or Resize((R, R), BICUBIC) (the "squash"
path), on a PIL image converted to RGB. torchvision is not needed: for PIL
images both transforms reduce to Image.resize with BICUBIC plus a crop, which
this script does directly:

  * crop path: the shorter side becomes R and the longer side
    int(R * long / short); then the crop offsets are
    top = int(round((H - R) / 2)) and left = int(round((W - R) / 2)).
  * squash path: resize to R x R.

Before writing anything the script checks that this emulation reproduces the
upstream golden tensors pixels_center_crop and pixels_squash in
vq-encode.safetensors (dog.png at R = 16) exactly.

Outputs:
  reference.safetensors  U8 tensors "<image>/<path>/<R>" of shape [R, R, 3],
                         path "crop" or "squash".
  clevr.pil.png, geo.pil.png, llava1.pil.png
                         Pillow's decoding of the JPEG files, stored losslessly
                         so that the Go tests can check the resampler on the
                         exact pixels Pillow resized, apart from any JPEG
                         decoder difference.
"""

import json
import struct

import numpy as np
from PIL import Image

# Resolutions per image. To keep the test data small, 256 is stored for two
# images only. dog.png is a PNG, so its decoding is exact, and it is
# enlarged at 256. clevr.jpg is reduced from 320 rows to 256, a non-integer
# ratio.
RESOLUTIONS = {
    "dog.png": [16, 64, 256],
    "clevr.jpg": [16, 64, 256],
    "geo.jpg": [16, 64],
    "llava1.jpg": [16, 64],
}

PIL_DECODED = {"clevr.jpg": "clevr.pil.png", "geo.jpg": "geo.pil.png", "llava1.jpg": "llava1.pil.png"}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_len])
    base = 8 + header_len
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        data = np.frombuffer(blob[base + start : base + end], dtype=dtypes[info["dtype"]])
        tensors[name] = data.reshape(info["shape"])
    return tensors


def write_safetensors(path, tensors):
    header = {}
    offset = 0
    for name, array in tensors.items():
        size = array.nbytes
        header[name] = {"dtype": "U8", "shape": list(array.shape), "data_offsets": [offset, offset + size]}
        offset += size
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for array in tensors.values():
            f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def center_crop(img, resolution):
    width, height = img.size
    if width <= height:
        new_width, new_height = resolution, int(resolution * height / width)
    else:
        new_width, new_height = int(resolution * width / height), resolution
    resized = np.asarray(img.resize((new_width, new_height), Image.BICUBIC))
    top = int(round((new_height - resolution) / 2))
    left = int(round((new_width - resolution) / 2))
    return resized[top : top + resolution, left : left + resolution]


def squash(img, resolution):
    return np.asarray(img.resize((resolution, resolution), Image.BICUBIC))


def normalize(pixels):
    """ToTensor and Normalize(0.5, 0.5) in float32, as [1, 3, H, W]."""
    x = pixels.astype(np.float32) / np.float32(255)
    x = (x - np.float32(0.5)) / np.float32(0.5)
    return x.transpose(2, 0, 1)[None]


def check_golden():
    golden = read_safetensors("vq-encode.safetensors")
    img = Image.open("dog.png").convert("RGB")
    for name, transform in (("pixels_center_crop", center_crop), ("pixels_squash", squash)):
        ours = normalize(transform(img, 16))
        diff = np.abs(ours - golden[name]).max()
        if diff != 0:
            raise SystemExit(f"{name}: emulation differs from the golden tensor by {diff}")
    print("emulation reproduces pixels_center_crop and pixels_squash exactly")


def main():
    check_golden()
    tensors = {}
    for image, resolutions in RESOLUTIONS.items():
        img = Image.open(image).convert("RGB")
        for resolution in resolutions:
            tensors[f"{image}/crop/{resolution}"] = center_crop(img, resolution)
            tensors[f"{image}/squash/{resolution}"] = squash(img, resolution)
    write_safetensors("reference.safetensors", tensors)
    for image, png in PIL_DECODED.items():
        Image.open(image).convert("RGB").save(png, optimize=True)
    print(f"wrote {len(tensors)} reference arrays with Pillow {Image.__version__}")


if __name__ == "__main__":
    main()
