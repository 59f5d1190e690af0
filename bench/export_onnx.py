#!/usr/bin/python3
"""Export the PyTorch peer model to ONNX with torch.onnx.export.

Usage:
    /usr/bin/python3 bench/export_onnx.py CKPT OUT.onnx [--compare-ort]

CKPT is a checkpoint folder (config.json plus model.safetensors or a sharded
index). The graph has inputs input_ids and attention_mask (int64 [batch, seq],
both axes dynamic) and output logits (float32 [batch, seq, vocab]), opset 17.
This is the "naive export": the traced eager model as it is, with no fusion or
graph rewriting, which mmadac's Go sampler then drives on ONNX Runtime.

After writing the file, the script runs onnx.checker on it. With
--compare-ort it also runs a sample batch (two rows of 24 tokens, the second
left-padded by 5) through ONNX Runtime via bench/ort_logits.js and node, and
fails when a logit on a real-token row differs from PyTorch's by more than
1e-4.
"""

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmada_torch  # noqa: E402

log = logging.getLogger("export_onnx")

OPSET = 17


class _LogitsOnly(torch.nn.Module):
    """Wrap the model so that attention_mask is a required graph input."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids, attention_mask)


def export(model, out_path):
    """Trace model into out_path and check the file with onnx.checker."""
    import onnx

    sample_ids = torch.zeros((2, 8), dtype=torch.int64)
    sample_mask = torch.ones((2, 8), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            _LogitsOnly(model),
            (sample_ids, sample_mask),
            out_path,
            opset_version=OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "logits": {0: "batch", 1: "seq"},
            },
        )
    onnx.checker.check_model(out_path, full_check=True)


def run_ort(onnx_path, input_ids, attention_mask):
    """Return ONNX Runtime's logits as a float32 array, via node and bench/ort_logits.js.

    Raises RuntimeError when node is missing or the script fails.
    """
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found on PATH; install nodejs (scripts/setup.sh) to run ONNX Runtime")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ort_logits.js")
    request = {
        "input_ids": {"shape": list(input_ids.shape), "data": input_ids.reshape(-1).tolist()},
        "attention_mask": {"shape": list(attention_mask.shape), "data": attention_mask.reshape(-1).tolist()},
    }
    done = subprocess.run(
        [node, script, onnx_path], input=json.dumps(request), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"ort_logits.js exited with status {done.returncode}: {done.stderr.strip()}")
    response = json.loads(done.stdout)
    return np.asarray(response["data"], dtype=np.float32).reshape(response["shape"])


def sample_batch(vocab_size, seed=0):
    """Return (input_ids, attention_mask): two rows of 24 tokens, the second left-padded by 5."""
    generator = np.random.default_rng(seed)
    input_ids = generator.integers(0, vocab_size, size=(2, 24), dtype=np.int64)
    attention_mask = np.ones((2, 24), dtype=np.int64)
    attention_mask[1, :5] = 0
    return input_ids, attention_mask


def max_error_on_real_rows(a, b, attention_mask):
    keep = attention_mask == 1
    return float(np.abs(a - b)[keep].max())


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export the PyTorch peer model to ONNX (opset 17).")
    parser.add_argument("checkpoint", help="checkpoint folder with config.json and safetensors weights")
    parser.add_argument("output", help="path of the .onnx file to write")
    parser.add_argument(
        "--compare-ort",
        action="store_true",
        help="also run a sample batch under ONNX Runtime (node + onnxruntime-node) and compare with PyTorch",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    model = mmada_torch.load_model(args.checkpoint)
    log.info("exporting %s to %s (opset %d)", args.checkpoint, args.output, OPSET)
    export(model, args.output)
    log.info("onnx.checker accepted %s (%d bytes)", args.output, os.path.getsize(args.output))

    if args.compare_ort:
        input_ids, attention_mask = sample_batch(model.config.vocab_size)
        with torch.no_grad():
            expected = model(torch.from_numpy(input_ids), torch.from_numpy(attention_mask)).numpy()
        got = run_ort(args.output, input_ids, attention_mask)
        error = max_error_on_real_rows(got, expected, attention_mask)
        log.info("ONNX Runtime vs PyTorch: max abs logit difference %.3g on real-token rows", error)
        if error > 1e-4:
            log.error("ONNX Runtime logits differ from PyTorch by %.3g, above the 1e-4 tolerance", error)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
