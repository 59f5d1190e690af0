"""MMaDA / LLaDA transformer and text sampler in PyTorch eager, float32.

This module is the "PyTorch eager" peer for mmadac's benchmarks. It is written
from the architecture facts of the upstream model (Gen-Verse/MMaDA,
models/modeling_llada.py and generate.py) and must reproduce the upstream
forward logits (bench/test_mmada_torch.py checks them against the golden
vectors in testdata/upstream-tiny).

The model:
    x = wte[input_ids]
    per block:  x += attn_out(attention(RoPE(q_proj(h)), RoPE(k_proj(h)), v_proj(h)))
                     with h = RMSNorm(x, attn_norm)
                x += ff_out(silu(ff_proj(h)) * up_proj(h)) with h = RMSNorm(x, ff_norm)
    logits = ff_out_head(RMSNorm(x, ln_f))
Attention is bidirectional. With a padding mask m, position i attends to j
only when m[i] and m[j] are both 1. The additive bias is +1.0 on allowed pairs
and float32's minimum on the others, as upstream builds it, so a padding row
gets uniform attention instead of NaN.

By default everything runs in float32, also for bfloat16 checkpoints (their
weights are widened on load). load_model(..., dtype=torch.bfloat16) runs the
model in bfloat16 instead, as upstream deploys it. Then, as upstream does,
the RMSNorm statistics, the rotary embedding and the attention softmax are
computed in float32 and rounded back. The sampler's softmax stays float64.
In float32 these casts do nothing. Run with Debian's /usr/bin/python3
and python3-torch 1.13.
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from safetensors_io import read_checkpoint_tensors

class ModelConfig:
    """The config.json fields the forward pass reads, checked against the
    LLaDA-8B architecture this module implements."""

    def __init__(self, raw):
        def need(key):
            if key not in raw:
                raise ValueError(f"config.json: missing field {key!r}")
            return raw[key]

        self.d_model = int(need("d_model"))
        self.n_heads = int(need("n_heads"))
        self.n_kv_heads = int(raw.get("n_kv_heads") or self.n_heads)
        self.n_layers = int(need("n_layers"))
        self.mlp_hidden_size = int(need("mlp_hidden_size"))
        self.vocab_size = int(raw.get("embedding_size") or need("vocab_size"))
        self.rms_norm_eps = float(raw.get("rms_norm_eps", 1e-5))
        self.rope_theta = float(raw.get("rope_theta", 10000.0))
        self.weight_tying = bool(raw.get("weight_tying", False))
        self.mask_token_id = raw.get("mask_token_id")

        # Reject the configurations whose forward differs from the one below
        # instead of silently computing something else.
        expected = {
            "block_type": "llama",
            "activation_type": "silu",
            "layer_norm_type": "rms",
            "rope": True,
            "alibi": False,
            "include_bias": False,
            "include_qkv_bias": False,
            "attention_layer_norm": False,
            "scale_logits": False,
            "input_emb_norm": False,
        }
        for key, want in expected.items():
            if key in raw and raw[key] != want:
                raise ValueError(
                    f"config.json: {key}={raw[key]!r} is not supported; this model implements {key}={want!r}"
                )
        if raw.get("block_group_size", 1) != 1:
            raise ValueError(f"config.json: block_group_size={raw['block_group_size']} is not supported; use 1")
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"config.json: d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads != 0:
            raise ValueError(f"config.json: n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        self.head_dim = self.d_model // self.n_heads
        if self.head_dim % 2 != 0:
            raise ValueError(f"config.json: head dimension {self.head_dim} is odd; RoPE needs an even one")


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, x):
        h = x.float()
        variance = h.pow(2).mean(-1, keepdim=True)
        return self.weight * (h * torch.rsqrt(variance + self.eps)).to(x.dtype)


def rotate_half(t):
    half = t.shape[-1] // 2
    return torch.cat((-t[..., half:], t[..., :half]), dim=-1)


def rope_tables(seq_len, head_dim, theta, device):
    """Return cos and sin tables [seq_len, head_dim] for positions 0..seq_len-1.

    inv_freq[j] = theta ** (-2j / head_dim), angles = position * inv_freq, and
    each table repeats its head_dim/2 columns twice, matching the
    rotate-half convention. Padding positions count as positions.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    positions = torch.arange(seq_len, device=device, dtype=torch.float32)
    angles = torch.outer(positions, inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


class Block(nn.Module):
    """One LLaDA llama block: pre-norm attention and a SiLU-gated MLP whose gate is ff_proj."""

    def __init__(self, config):
        super().__init__()
        d, kv = config.d_model, config.n_kv_heads * config.head_dim
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        self.attn_norm = RMSNorm(d, config.rms_norm_eps)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, kv, bias=False)
        self.v_proj = nn.Linear(d, kv, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = RMSNorm(d, config.rms_norm_eps)
        self.ff_proj = nn.Linear(d, config.mlp_hidden_size, bias=False)
        self.up_proj = nn.Linear(d, config.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(config.mlp_hidden_size, d, bias=False)

    def forward(self, x, cos, sin, bias):
        batch, seq, _ = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(batch, seq, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(batch, seq, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q = (q.float() * cos + rotate_half(q.float()) * sin).to(x.dtype)
        k = (k.float() * cos + rotate_half(k.float()) * sin).to(x.dtype)
        if self.n_kv_heads != self.n_heads:
            repeat = self.n_heads // self.n_kv_heads
            k = k.repeat_interleave(repeat, dim=1)
            v = v.repeat_interleave(repeat, dim=1)

        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        if bias is not None:
            scores = scores + bias
        attention = torch.matmul(scores.float().softmax(dim=-1).to(v.dtype), v)
        attention = attention.transpose(1, 2).reshape(batch, seq, -1)
        x = x + self.attn_out(attention)

        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))


def padding_bias(attention_mask, dtype):
    """Build the additive attention bias [B,1,L,L] of a 0/1 padding mask.

    Pairs where both positions are real tokens get +1.0 and every other pair
    gets the dtype's minimum, as upstream converts its boolean bias. The +1.0
    cancels in the softmax. The finite minimum keeps a padding row (all pairs
    disallowed) at uniform attention instead of NaN.
    """
    keep = attention_mask != 0
    allowed = keep[:, None, :, None] & keep[:, None, None, :]
    allowed_value = torch.ones((), dtype=dtype, device=attention_mask.device)
    lowest = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=attention_mask.device)
    return torch.where(allowed, allowed_value, lowest)


class Transformer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = RMSNorm(config.d_model, config.rms_norm_eps)
        if not config.weight_tying:
            self.ff_out = nn.Linear(config.d_model, config.vocab_size, bias=False)


class MMaDAModel(nn.Module):
    """The LLaDA/MMaDA language model. Parameter names match the Hugging Face
    checkpoint without its leading "model." (transformer.blocks.0.q_proj.weight, ...)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)

    def forward(self, input_ids, attention_mask=None):
        """Return logits [B,L,V], in the model's dtype, for input_ids [B,L] int64.

        attention_mask [B,L] (1 = real token, 0 = padding) is optional. When it
        is given, a padding bias is added even if it is all ones, which leaves
        the logits unchanged up to rounding.
        """
        x = self.transformer.wte(input_ids)
        cos, sin = rope_tables(input_ids.shape[1], self.config.head_dim, self.config.rope_theta, x.device)
        bias = None if attention_mask is None else padding_bias(attention_mask, x.dtype)
        for block in self.transformer.blocks:
            x = block(x, cos, sin, bias)
        x = self.transformer.ln_f(x)
        if self.config.weight_tying:
            return F.linear(x, self.transformer.wte.weight)
        return self.transformer.ff_out(x)


def load_model(folder, dtype=torch.float32):
    """Build an MMaDAModel from a checkpoint folder (config.json plus
    model.safetensors or a sharded index), in dtype (float32 or bfloat16)
    and eval mode."""
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"dtype {dtype} is not supported; use torch.float32 or torch.bfloat16")
    config_path = os.path.join(folder, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{folder}: config.json not found; pass a checkpoint folder")
    with open(config_path) as f:
        config = ModelConfig(json.load(f))

    tensors = read_checkpoint_tensors(folder)
    state = {}
    for name, array in tensors.items():
        key = name[len("model."):] if name.startswith("model.") else name
        state[key] = torch.from_numpy(np.array(array, dtype=np.float32))

    model = MMaDAModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{folder}: checkpoint tensors do not match config.json: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{folder}: tensor {key} has shape {tuple(tensor.shape)} but config.json implies "
                f"{tuple(expected[key].shape)}"
            )
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval()


# ---------------------------------------------------------------------------
# Text sampler (LLaDA semi-autoregressive masked diffusion, upstream generate.py)


class TorchNoise:
    """Uniform draws from a torch.Generator, in the dtypes upstream uses:
    float64 for the Gumbel noise and float32 for random re-masking."""

    def __init__(self, seed=0):
        self.generator = torch.Generator().manual_seed(seed)

    def gumbel_uniform(self, shape):
        return torch.rand(shape, dtype=torch.float64, generator=self.generator)

    def remask_uniform(self, shape):
        return torch.rand(shape, dtype=torch.float32, generator=self.generator)


class ReplayNoise:
    """Uniform draws replayed from a recorded list, in the recorded order.

    draws is a list of (kind, tensor) with kind "gumbel_uniform" or
    "remask_uniform". A request whose kind or shape differs from the next
    recorded draw raises, because the replay would no longer match.
    """

    def __init__(self, draws):
        self.draws = list(draws)
        self.position = 0

    def _next(self, kind, shape):
        if self.position >= len(self.draws):
            raise ValueError(f"replay noise exhausted after {len(self.draws)} draws; the sampler asked for {kind}")
        recorded_kind, tensor = self.draws[self.position]
        if recorded_kind != kind or tuple(tensor.shape) != tuple(shape):
            raise ValueError(
                f"replay noise draw {self.position}: recorded {recorded_kind} {tuple(tensor.shape)}, "
                f"sampler asked for {kind} {tuple(shape)}"
            )
        self.position += 1
        return tensor

    def gumbel_uniform(self, shape):
        return self._next("gumbel_uniform", shape)

    def remask_uniform(self, shape):
        return self._next("remask_uniform", shape)


def num_transfer_tokens(mask_count, steps):
    """Split each row's masked-token count over the steps of a block.

    Returns int64 [B, steps]: every step unmasks count // steps tokens and the
    first count % steps steps unmask one more.
    """
    base = mask_count // steps
    remainder = mask_count % steps
    counts = base[:, None].repeat(1, steps)
    step_index = torch.arange(steps)[None, :]
    return counts + (step_index < remainder[:, None]).to(counts.dtype)


def gumbel_scores(logits, temperature, noise):
    """Return the scores whose argmax is the sampled token.

    At temperature 0 these are the logits themselves. Otherwise, in float64,
    exp(logits) / (-ln u) ** temperature with u uniform in [0, 1), the
    Gumbel-max form of sampling from softmax(logits / temperature).
    """
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    u = noise.gumbel_uniform(tuple(logits.shape))
    return logits.exp() / (-torch.log(u)) ** temperature


@torch.no_grad()
def generate_text(
    model,
    prompt,
    *,
    mask_id,
    steps=128,
    gen_length=128,
    block_length=128,
    temperature=0.0,
    cfg_scale=0.0,
    remasking="low_confidence",
    attention_mask=None,
    noise=None,
    on_step=None,
):
    """Fill gen_length mask tokens after prompt [B, Lp] and return the whole
    sequence [B, Lp + gen_length] int64.

    The generated span is split into blocks filled left to right. Each block
    gets steps / number_of_blocks steps. Per step, every masked position
    predicts a token, and the num_transfer_tokens highest-confidence
    predictions of each row are kept. Confidence is the float64 softmax
    probability of the predicted token ("low_confidence") or a float32
    uniform draw ("random"). Positions right of the current block never
    qualify.

    model(input_ids, attention_mask) returns logits [B, L, V].
    attention_mask [B, Lp + gen_length] (0 = padding) is passed to the
    conditional forward. The unconditional forward of classifier-free
    guidance (cfg_scale > 0, prompt replaced by mask tokens) gets none, as
    upstream does. noise supplies the uniforms (TorchNoise(0) if None).
    on_step(block, step) is called after each step, for timing.
    """
    if remasking not in ("low_confidence", "random"):
        raise ValueError(f"remasking={remasking!r} is not supported; use 'low_confidence' or 'random'")
    if gen_length <= 0 or block_length <= 0 or gen_length % block_length != 0:
        raise ValueError(
            f"gen_length {gen_length} must be a positive multiple of block_length {block_length}"
        )
    num_blocks = gen_length // block_length
    if steps <= 0 or steps % num_blocks != 0:
        raise ValueError(
            f"steps {steps} must be a positive multiple of the number of blocks "
            f"{num_blocks} (gen_length / block_length)"
        )
    steps_per_block = steps // num_blocks
    if noise is None:
        noise = TorchNoise(0)

    prompt = torch.as_tensor(prompt, dtype=torch.int64)
    batch, prompt_len = prompt.shape
    total = prompt_len + gen_length
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask, dtype=torch.int64)
        if tuple(attention_mask.shape) != (batch, total):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}; it must cover prompt and "
                f"generated tokens, ({batch}, {total})"
            )

    x = torch.full((batch, total), mask_id, dtype=torch.int64)
    x[:, :prompt_len] = prompt
    prompt_index = x != mask_id

    for block in range(num_blocks):
        block_start = prompt_len + block * block_length
        block_end = block_start + block_length
        block_masks = (x[:, block_start:block_end] == mask_id).sum(dim=1)
        transfer_counts = num_transfer_tokens(block_masks, steps_per_block)

        for step in range(steps_per_block):
            masked = x == mask_id
            if cfg_scale > 0:
                unconditional = x.clone()
                unconditional[prompt_index] = mask_id
                both = model(torch.cat([x, unconditional], dim=0))
                conditional_logits, unconditional_logits = torch.chunk(both, 2, dim=0)
                logits = unconditional_logits + (cfg_scale + 1) * (conditional_logits - unconditional_logits)
            else:
                logits = model(x, attention_mask)

            predicted = torch.argmax(gumbel_scores(logits, temperature, noise), dim=-1)
            if remasking == "low_confidence":
                probabilities = F.softmax(logits.to(torch.float64), dim=-1)
                confidence = torch.gather(probabilities, -1, predicted[..., None]).squeeze(-1)
            else:
                confidence = noise.remask_uniform((batch, total))
            confidence[:, block_end:] = -math.inf

            predicted = torch.where(masked, predicted, x)
            confidence = torch.where(masked, confidence, torch.full_like(confidence, -math.inf))
            transfer = torch.zeros_like(masked)
            for row in range(batch):
                count = int(transfer_counts[row, step])
                if count > 0:
                    _, chosen = torch.topk(confidence[row], k=count)
                    transfer[row, chosen] = True
            x[transfer] = predicted[transfer]

            if on_step is not None:
                on_step(block, step)
    return x
