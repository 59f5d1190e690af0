"""Read and write safetensors files with numpy only.

Debian does not package the Python safetensors library, and this format is
simple: an 8-byte little-endian header length, a JSON header mapping each
tensor name to {dtype, shape, data_offsets}, then the raw little-endian data.
"""

import json
import os
import struct

import numpy as np

# Safetensors dtype names and the numpy dtypes that hold their bytes. BF16 is
# read as uint16 bit patterns and widened to float32 in _decode_tensor.
_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def _decode_tensor(raw, dtype_name, shape, where):
    if dtype_name not in _SAFETENSORS_DTYPES:
        raise ValueError(
            f"{where}: unsupported safetensors dtype {dtype_name!r}; "
            f"supported: {sorted(_SAFETENSORS_DTYPES)}"
        )
    array = np.frombuffer(raw, dtype=np.dtype(_SAFETENSORS_DTYPES[dtype_name]).newbyteorder("<"))
    count = int(np.prod(shape, dtype=np.int64))
    if array.size != count:
        raise ValueError(f"{where}: {array.size} elements stored but shape {shape} needs {count}")
    if dtype_name == "BF16":
        # bfloat16 is the top half of a float32, so shifting the bits left by
        # 16 gives the exact float32 value.
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array.reshape(shape)


def read_safetensors(path):
    """Read every tensor of one safetensors file into a dict of numpy arrays.

    The file layout is: an 8-byte little-endian header length, a JSON header
    mapping names to {dtype, shape, data_offsets}, then the raw data. BF16
    tensors come back as float32 with the same values.
    """
    with open(path, "rb") as f:
        blob = bytearray(f.read())  # bytearray so that the arrays are writable
    if len(blob) < 8:
        raise ValueError(f"{path}: file too short for a safetensors header ({len(blob)} bytes)")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise ValueError(f"{path}: header length {header_len} runs past the end of the file")
    header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    data = memoryview(blob)[8 + header_len :]

    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        if not 0 <= begin <= end <= len(data):
            raise ValueError(
                f"{path}: tensor {name!r} has data_offsets [{begin}, {end}] outside "
                f"the {len(data)}-byte data section"
            )
        tensors[name] = _decode_tensor(data[begin:end], entry["dtype"], entry["shape"], f"{path}: {name}")
    return tensors


def write_safetensors(path, tensors, metadata=None):
    """Write a dict of numpy arrays (float32, float64, int64, int32) as safetensors."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
             np.dtype(np.int64): "I64", np.dtype(np.int32): "I32"}
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        if array.dtype not in names:
            raise ValueError(f"tensor {name!r}: cannot write dtype {array.dtype}; use float32, float64, int64 or int32")
        raw = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": names[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata or {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # align the data section to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for raw in chunks:
            f.write(raw)


def read_checkpoint_tensors(folder):
    """Read the weights of a checkpoint folder: model.safetensors, or the
    shards listed in model.safetensors.index.json."""
    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)
    if not os.path.exists(index):
        raise FileNotFoundError(
            f"{folder}: neither model.safetensors nor model.safetensors.index.json found; "
            "pass a folder written by save_pretrained or bench/make_random_ckpt.py"
        )
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        tensors.update(read_safetensors(os.path.join(folder, shard)))
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise ValueError(f"{index}: tensors listed in weight_map but not found in their shards: {missing[:5]}")
    return tensors
