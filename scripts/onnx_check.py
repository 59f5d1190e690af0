#!/usr/bin/python3
"""Validate an ONNX model with the onnx package's checker.

Usage:
    onnx_check.py [--by-path] [--summary] MODEL.onnx

By default the model is loaded with onnx.load, which also reads external-data
files into memory, and then checked with
onnx.checker.check_model(model, full_check=True). full_check adds strict shape
inference on top of the structural checks.

--by-path  checks the file by its path instead, so external data is only
           looked up on disk, not loaded. Use it for models whose weights do
           not fit in memory twice.
--summary  prints a JSON description of the model as written (graph inputs
           and outputs, node op types, initializers with their external-data
           entries) to stdout after a successful check.

Exit status: 0 when the model is valid, 1 when the checker rejects it or the
file cannot be read (the reason goes to stderr), 2 for a usage error or when
the onnx package is not installed.

Run it with Debian's /usr/bin/python3, which has python3-onnx once
scripts/setup.sh has run.
"""

import argparse
import json
import sys

try:
    import onnx
except ImportError as exc:
    print(
        f"onnx_check: cannot import onnx ({exc}); install it with "
        "`bash scripts/setup.sh` (Debian package python3-onnx) and run this "
        "script with /usr/bin/python3",
        file=sys.stderr,
    )
    sys.exit(2)


def describe_value(value_info):
    """Return the name, element type and dimensions of a graph input or output."""
    tensor_type = value_info.type.tensor_type
    dims = []
    for dim in tensor_type.shape.dim:
        kind = dim.WhichOneof("value")
        if kind == "dim_value":
            dims.append(dim.dim_value)
        elif kind == "dim_param":
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return {
        "name": value_info.name,
        "elem_type": tensor_type.elem_type,
        "dims": dims if tensor_type.HasField("shape") else None,
    }


def describe_initializer(tensor):
    """Return the fields of an initializer that tell where its bytes are."""
    return {
        "name": tensor.name,
        "data_type": tensor.data_type,
        "dims": list(tensor.dims),
        "data_location": tensor.data_location,
        "raw_data_bytes": len(tensor.raw_data),
        "external_data": {entry.key: entry.value for entry in tensor.external_data},
    }


def summarize(model):
    """Return a JSON-ready description of the model as stored in the file."""
    graph = model.graph
    return {
        "ir_version": model.ir_version,
        "producer_name": model.producer_name,
        "opset_import": [{"domain": o.domain, "version": o.version} for o in model.opset_import],
        "graph_name": graph.name,
        "inputs": [describe_value(v) for v in graph.input],
        "outputs": [describe_value(v) for v in graph.output],
        "nodes": [node.op_type for node in graph.node],
        "initializers": [describe_initializer(t) for t in graph.initializer],
    }


def main():
    parser = argparse.ArgumentParser(description="Validate an ONNX model with onnx.checker (full_check=True).")
    parser.add_argument("model", help="path of the .onnx file")
    parser.add_argument("--by-path", action="store_true", help="check by path without loading external data")
    parser.add_argument("--summary", action="store_true", help="print a JSON description of the model")
    args = parser.parse_args()

    try:
        if args.by_path:
            onnx.checker.check_model(args.model, full_check=True)
        else:
            onnx.checker.check_model(onnx.load(args.model), full_check=True)
    except Exception as exc:  # the checker raises several exception types
        print(f"onnx_check: {args.model} is not a valid ONNX model: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    if args.summary:
        try:
            as_written = onnx.load(args.model, load_external_data=False)
        except Exception as exc:
            print(f"onnx_check: cannot read {args.model}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        json.dump(summarize(as_written), sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
