#!/usr/bin/python3
"""Time the PyTorch eager text sampler end to end.

Usage:
    /usr/bin/python3 bench/torch_text_bench.py --model CKPT [--prompt-len 64]
        [--gen-length 256] [--block-length 32] [--steps 256] [--threads N]
        [--batch 1] [--temperature 0] [--cfg-scale 0] [--remasking low_confidence]
        [--dtype float32|bfloat16]

Prints one JSON object to stdout:
    steps, seconds (whole generate call), ms_per_step_median, ms_per_step_p90,
    tokens_per_second (batch * gen_length / seconds),
plus the settings that shape the numbers: threads, the BLAS library torch
loaded, the torch version and the model's size fields.

The prompt is random text ids below the special tokens (seeded), so the
numbers depend on the sizes only. One untimed forward pass runs first, so
one-time setup (thread pools, oneDNN kernels) is not charged to step 1.
OMP_WAIT_POLICY defaults to PASSIVE (see below); the JSON reports it.
"""

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time

# GNU OpenMP reads OMP_WAIT_POLICY when torch loads it, so it must be set
# before the import. With the default (active) policy, torch's threads spin
# while they wait for each other. On cores shared with other work that made
# each small elementwise operation cost milliseconds (2 threads were six times
# slower than 1). Passive waiting avoids that. Set OMP_WAIT_POLICY=ACTIVE to
# measure the default on a dedicated machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mmada_torch  # noqa: E402

log = logging.getLogger("torch_text_bench")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def loaded_blas_libraries():
    """Return the BLAS and LAPACK shared libraries mapped into this process (Linux only)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line or "lapack" in line}
    except OSError:
        return []
    return sorted(path for path in paths if path.startswith("/"))


def percentile(values, fraction):
    """Return the nearest-rank percentile of values (fraction in [0, 1])."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time the PyTorch eager MMaDA text sampler.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder (config.json + safetensors)")
    parser.add_argument("--prompt-len", type=int, default=64, help="prompt tokens per row")
    parser.add_argument("--gen-length", type=int, default=256, help="generated tokens per row")
    parser.add_argument("--block-length", type=int, default=32, help="tokens per semi-autoregressive block")
    parser.add_argument("--steps", type=int, default=256, help="denoising steps in total (a multiple of the block count)")
    parser.add_argument("--batch", type=int, default=1, help="rows generated together")
    parser.add_argument("--temperature", type=float, default=0.0, help="Gumbel sampling temperature (0 = argmax)")
    parser.add_argument("--cfg-scale", type=float, default=0.0, help="classifier-free guidance scale (0 = off)")
    parser.add_argument("--remasking", default="low_confidence", choices=["low_confidence", "random"],
                        help="how to pick the positions kept at each step")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch intra-op threads (default: the CPUs this process may run on)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompt and of the sampler's noise")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES),
                        help="the model's compute dtype. Upstream deploys bfloat16, whose matrix products oneDNN "
                             "runs on AMX where the CPU has it")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    if args.threads < 1:
        parser.error(f"--threads {args.threads} must be at least 1")
    torch.set_num_threads(args.threads)
    model = mmada_torch.load_model(args.model, DTYPES[args.dtype])
    config = model.config
    if config.mask_token_id is None:
        parser.error(f"{args.model}/config.json has no mask_token_id; the sampler needs one")

    generator = torch.Generator().manual_seed(args.seed)
    # Ids below mask_token_id - 16 avoid the mask and the special tokens near it.
    prompt = torch.randint(0, max(1, config.mask_token_id - 16), (args.batch, args.prompt_len), generator=generator)

    with torch.inference_mode():
        model(torch.cat([prompt, prompt], dim=1))  # untimed warm-up forward

        step_times = []
        last = [time.perf_counter()]

        def on_step(block, step):
            now = time.perf_counter()
            step_times.append(now - last[0])
            last[0] = now

        log.info("generating %d tokens in %d steps with %d threads", args.gen_length, args.steps, args.threads)
        start = time.perf_counter()
        last[0] = start
        mmada_torch.generate_text(
            model,
            prompt,
            mask_id=config.mask_token_id,
            steps=args.steps,
            gen_length=args.gen_length,
            block_length=args.block_length,
            temperature=args.temperature,
            cfg_scale=args.cfg_scale,
            remasking=args.remasking,
            noise=mmada_torch.TorchNoise(args.seed),
            on_step=on_step,
        )
        seconds = time.perf_counter() - start

    result = {
        "steps": len(step_times),
        "seconds": round(seconds, 4),
        "ms_per_step_median": round(1000 * statistics.median(step_times), 3),
        "ms_per_step_p90": round(1000 * percentile(step_times, 0.9), 3),
        "tokens_per_second": round(args.batch * args.gen_length / seconds, 3),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "blas": loaded_blas_libraries(),
        "torch_version": torch.__version__,
        "dtype": args.dtype,
        "model": {"d_model": config.d_model, "n_layers": config.n_layers, "n_heads": config.n_heads,
                  "mlp_hidden_size": config.mlp_hidden_size, "vocab_size": config.vocab_size},
        "batch": args.batch,
        "prompt_len": args.prompt_len,
        "gen_length": args.gen_length,
        "block_length": args.block_length,
        "sequence_length": args.prompt_len + args.gen_length,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
