#!/usr/bin/python3
"""Write a random-weight LLaDA/MMaDA checkpoint for benchmarks.

Usage:
    /usr/bin/python3 bench/make_random_ckpt.py OUT_DIR [--d-model 512] [--n-layers 8]
        [--n-heads 8] [--mlp-hidden-size 1536] [--vocab-size 32768]
        [--mask-token-id 31000] [--codebook-size 1024] [--seed 0]

OUT_DIR receives config.json (the field names of the upstream config, as in
testdata/upstream-tiny/mmada/config.json) and model.safetensors (float32,
Hugging Face tensor names such as model.transformer.blocks.0.q_proj.weight).
Matrices are drawn from N(0, 0.02^2) and norm weights are 1, so the logits
are close to uniform: the checkpoint is meant for timing, not for text.

The defaults are the mid-size benchmark model, about 61 million parameters
(245 MB). The vocabulary is laid out like the real model's: text ids first,
then codebook_size image ids starting at image_token_offset, and special
tokens at fixed offsets around the mask token.
"""

import argparse
import json
import logging
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402

log = logging.getLogger("make_random_ckpt")

# Offsets of the special tokens from the mask token, the same as in the tiny
# golden model's layout (bos 240, mask 250, eot_id 254, ...).
SPECIAL_TOKEN_OFFSETS = {
    "bos": -10, "eos": -9, "soi": -6, "eoi": -5, "t2i": -2, "mmu": -1,
    "mask": 0, "start_header": 1, "end_header": 2, "ipad": 3, "eot_id": 4,
}


def build_config(args):
    text_vocab = args.vocab_size - args.codebook_size
    special = {name: args.mask_token_id + offset for name, offset in SPECIAL_TOKEN_OFFSETS.items()}
    if min(special.values()) < 0 or max(special.values()) >= text_vocab:
        raise ValueError(
            f"mask_token_id {args.mask_token_id} puts special tokens outside the text ids 0..{text_vocab - 1}; "
            "choose a mask id at least 10 above 0 and 5 below vocab_size - codebook_size"
        )
    return {
        "d_model": args.d_model,
        "n_heads": args.n_heads,
        "n_kv_heads": args.n_heads,
        "n_layers": args.n_layers,
        "mlp_ratio": 4,
        "mlp_hidden_size": args.mlp_hidden_size,
        "activation_type": "silu",
        "block_type": "llama",
        "block_group_size": 1,
        "alibi": False,
        "alibi_bias_max": 8.0,
        "rope": True,
        "rope_full_precision": True,
        "flash_attention": False,
        "attention_dropout": 0.0,
        "multi_query_attention": None,
        "attention_layer_norm": False,
        "residual_dropout": 0.0,
        "embedding_dropout": 0.0,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "rms_norm_eps": 1e-05,
        "attention_layer_norm_with_affine": True,
        "max_sequence_length": 4096,
        "rope_theta": 500000.0,
        "include_qkv_bias": False,
        "include_bias": False,
        "bias_for_layer_norm": False,
        "scale_logits": False,
        "vocab_size": args.vocab_size,
        "embedding_size": args.vocab_size,
        "weight_tying": False,
        "eos_token_id": special["eos"],
        "pad_token_id": special["eos"],
        "mask_token_id": args.mask_token_id,
        "init_device": "cpu",
        "init_fn": "normal",
        "init_std": 0.02,
        "init_cutoff_factor": None,
        "precision": "amp_bf16",
        "use_cache": False,
        "architectures": ["MMadaModelLM"],
        "model_type": "mmada",
        "llm_vocab_size": text_vocab,
        "codebook_size": args.codebook_size,
        "num_vq_tokens": 256,
        "new_vocab_size": args.vocab_size,
        "num_new_special_tokens": 0,
        "tie_word_embeddings": False,
        "bos_token_id": special["bos"],
        "torch_dtype": "float32",
        "special_tokens": special,
        "image_token_offset": text_vocab,
    }


def build_weights(config, seed):
    generator = np.random.default_rng(seed)
    d, hidden, vocab = config["d_model"], config["mlp_hidden_size"], config["vocab_size"]

    def matrix(rows, cols):
        return (generator.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.02))

    tensors = {
        "model.transformer.wte.weight": matrix(vocab, d),
        "model.transformer.ln_f.weight": np.ones(d, dtype=np.float32),
        "model.transformer.ff_out.weight": matrix(vocab, d),
    }
    for layer in range(config["n_layers"]):
        prefix = f"model.transformer.blocks.{layer}."
        tensors[prefix + "attn_norm.weight"] = np.ones(d, dtype=np.float32)
        tensors[prefix + "ff_norm.weight"] = np.ones(d, dtype=np.float32)
        for name in ("q_proj", "k_proj", "v_proj", "attn_out"):
            tensors[prefix + name + ".weight"] = matrix(d, d)
        tensors[prefix + "ff_proj.weight"] = matrix(hidden, d)
        tensors[prefix + "up_proj.weight"] = matrix(hidden, d)
        tensors[prefix + "ff_out.weight"] = matrix(d, hidden)
    return tensors


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a random-weight MMaDA checkpoint (config.json + model.safetensors).")
    parser.add_argument("out_dir", help="folder to create or overwrite files in")
    parser.add_argument("--d-model", type=int, default=512, help="hidden width")
    parser.add_argument("--n-layers", type=int, default=8, help="number of transformer blocks")
    parser.add_argument("--n-heads", type=int, default=8, help="attention heads (d_model must divide evenly)")
    parser.add_argument("--mlp-hidden-size", type=int, default=1536, help="MLP inner width")
    parser.add_argument("--vocab-size", type=int, default=32768, help="embedding and logit rows")
    parser.add_argument("--codebook-size", type=int, default=1024, help="image ids at the top of the vocabulary")
    parser.add_argument("--mask-token-id", type=int, default=31000, help="id of the mask token")
    parser.add_argument("--seed", type=int, default=0, help="numpy random seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    if args.d_model % args.n_heads != 0:
        parser.error(f"--d-model {args.d_model} is not divisible by --n-heads {args.n_heads}")
    config = build_config(args)
    tensors = build_weights(config, args.seed)
    parameters = sum(t.size for t in tensors.values())

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(args.out_dir, "model.safetensors"), tensors)
    log.info("wrote %s: %d tensors, %d parameters", args.out_dir, len(tensors), parameters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
