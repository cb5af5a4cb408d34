"""Tiny random checkpoints of every supported architecture, saved in Hugging Face format by transformers:
for parity tests here and for plugin authors who want to run their kernels inside a real model.

Weights are re-drawn with a larger spread than transformers' initialisation so that logits, routing and
attention patterns are far from uniform (a comparison of near-constant logits would prove little), and no
tensor keeps the constant transformers gives it (norm weights 1, biases 0): parity then also fails for a model
or kernel that ignores one of them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch

from .random_constants import randomize_constants

COMMON: dict[str, Any] = dict(
    vocab_size=320,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    bos_token_id=None,
    eos_token_id=None,
    pad_token_id=None,
)
MOE: dict[str, Any] = dict(num_experts_per_tok=2, moe_intermediate_size=32)
# GPT-OSS's own rope (openai/gpt-oss-20b's config.json); at head_dim 16 its untruncated ramp differs from a
# truncated one
GPT_OSS_ROPE: dict[str, Any] = {
    "rope_type": "yarn",
    "rope_theta": 150000.0,
    "factor": 32.0,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "truncate": False,
    "original_max_position_embeddings": 4096,
}

# architecture -> (transformers config class name, config overrides)
TINY: dict[str, tuple[str, dict[str, Any]]] = {
    "LlamaForCausalLM": ("LlamaConfig", {}),
    "MistralForCausalLM": ("MistralConfig", {"head_dim": 16, "sliding_window": 8}),
    "Qwen2ForCausalLM": ("Qwen2Config", {}),
    "Qwen3ForCausalLM": ("Qwen3Config", {"head_dim": 16}),
    "Qwen3MoeForCausalLM": (
        "Qwen3MoeConfig",
        {"head_dim": 16, "num_experts": 8, "norm_topk_prob": True, **MOE},
    ),
    "MixtralForCausalLM": ("MixtralConfig", {"num_local_experts": 4, "num_experts_per_tok": 2}),
    # sliding and full layers alternating (prompts exceed the window); H and I multiples of MXFP4's blocks
    "GptOssForCausalLM": (
        "GptOssConfig",
        {
            "head_dim": 16,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "sliding_window": 8,
            "rope_parameters": GPT_OSS_ROPE,
        },
    ),
    "DeepseekV3ForCausalLM": (
        "DeepseekV3Config",
        {
            "num_key_value_heads": 4,
            "n_routed_experts": 8,
            "n_shared_experts": 1,
            "n_group": 4,
            "topk_group": 2,
            "first_k_dense_replace": 1,
            "kv_lora_rank": 32,
            "q_lora_rank": 48,
            "qk_rope_head_dim": 8,
            "qk_nope_head_dim": 16,
            "v_head_dim": 16,
            "routed_scaling_factor": 2.5,
            **MOE,
        },
    ),
}


@torch.no_grad()
def _redraw(model: torch.nn.Module, seed: int) -> None:
    """What transformers initialises to a constant gets random values around it (random_constants); every
    other floating-point tensor is re-drawn as N(0, 1 / fan_in)."""
    gen = torch.Generator().manual_seed(seed)
    randomized = randomize_constants(model, gen)
    for name, t in sorted(model.state_dict().items()):
        if t.is_floating_point() and name not in randomized:
            t.copy_(torch.randn(t.shape, generator=gen) / max(1, t.shape[-1]) ** 0.5)


def tiny_checkpoint(
    architecture: str,
    path: Path | str,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    max_shard_size: str | None = None,
    **overrides: Any,
) -> Path:
    """Save a tiny random `architecture` checkpoint in `path`; keyword overrides go to its config."""
    import transformers

    config_name, specific = TINY[architecture]
    config = getattr(transformers, config_name)(**{**COMMON, **specific, **overrides})
    config.architectures = [architecture]
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    _redraw(model, seed)
    model = model.to(dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(str(path), **kwargs)
    return Path(path)


# A tiny DeepSeek-V3 whose fp8 block version also shards at TP=2: every merged part and every tensor-parallel
# shard of a quantized linear or expert is a multiple of 128 features (no scale tile spans two of them).
FP8_DEEPSEEK_V3: dict[str, Any] = dict(
    hidden_size=256,
    intermediate_size=256,
    moe_intermediate_size=256,
    num_attention_heads=8,
    num_key_value_heads=8,
    q_lora_rank=128,
    kv_lora_rank=128,
    qk_nope_head_dim=32,
    qk_rope_head_dim=32,
    v_head_dim=32,
)
FP8_MAX = 448.0  # float8_e4m3fn
FP8_BLOCK = 128
FP8_BLOCK_CONFIG: dict[str, Any] = {
    "quant_method": "fp8",
    "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
    "activation_scheme": "dynamic",
}


def quantize_fp8_block(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """weight [N, K] -> (float8_e4m3fn [N, K], weight_scale_inv float32 [ceil(N/128), ceil(K/128)]), one
    scale per 128x128 tile (edge tiles partial), real = q * scale_inv: DeepSeek-V3's checkpoint format."""
    n, k = weight.shape
    rows, cols = -(-n // FP8_BLOCK), -(-k // FP8_BLOCK)
    padded = torch.zeros(rows * FP8_BLOCK, cols * FP8_BLOCK)
    padded[:n, :k] = weight.float()
    tiles = padded.view(rows, FP8_BLOCK, cols, FP8_BLOCK)
    scale = tiles.abs().amax(dim=(1, 3)).clamp_min(1e-12) / FP8_MAX
    q = (tiles / scale[:, None, :, None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    return q.view_as(padded)[:n, :k].contiguous(), scale


def dequantize_fp8_block(q: torch.Tensor, scale_inv: torch.Tensor) -> torch.Tensor:
    """Inverse of quantize_fp8_block: float32 [N, K]."""
    n, k = q.shape
    full = scale_inv.repeat_interleave(FP8_BLOCK, 0).repeat_interleave(FP8_BLOCK, 1)
    return q.float() * full[:n, :k]


def _is_quantized_linear(name: str, t: torch.Tensor) -> bool:
    """Linear weights that fp8 checkpoints quantize: not embeddings, LM head, norms or MoE routers."""
    return t.dim() == 2 and not name.endswith(("embed_tokens.weight", "lm_head.weight", ".gate.weight"))


def _spread_tiles(weight: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """weight with each 128x128 tile multiplied by a random power of two in [1/2, 2]: the tiles' scales then
    differ by up to 4x, so a scale applied to the wrong tile shows (powers of two quantize exactly alike)."""
    n, k = weight.shape
    rows, cols = -(-n // FP8_BLOCK), -(-k // FP8_BLOCK)
    factors = 2.0 ** torch.randint(-1, 2, (rows, cols), generator=gen).float()
    full = factors.repeat_interleave(FP8_BLOCK, 0).repeat_interleave(FP8_BLOCK, 1)[:n, :k]
    return (weight.float() * full).to(weight.dtype)


def fp8_block_checkpoint(
    model_dir: Path | str, fp8_dir: Path | str, dequantized_dir: Path | str, *, seed: int = 0
) -> Path:
    """From a checkpoint in `model_dir`, write its DeepSeek-V3 style fp8 block version to `fp8_dir` (every
    linear weight, its 128x128 tiles first spread apart by `_spread_tiles`, as e4m3fn + `weight_scale_inv`;
    quantization_config FP8_BLOCK_CONFIG) and the same weights dequantized, unquantized in the checkpoint's
    dtype, to `dequantized_dir`: two checkpoints of one model, to check the fp8 path against the dense one."""
    import json

    from safetensors.torch import load_file

    model_dir, fp8_dir, dequantized_dir = Path(model_dir), Path(fp8_dir), Path(dequantized_dir)
    config = json.loads((model_dir / "config.json").read_text())
    tensors = load_file(model_dir / "model.safetensors")
    gen = torch.Generator().manual_seed(seed)
    quantized, dense = {}, {}
    for name, t in sorted(tensors.items()):
        if not _is_quantized_linear(name, t):
            quantized[name] = dense[name] = t
            continue
        q, scale = quantize_fp8_block(_spread_tiles(t, gen))
        quantized[name], quantized[name + "_scale_inv"] = q, scale
        dense[name] = dequantize_fp8_block(q, scale).to(t.dtype)
    _save_twins(config, FP8_BLOCK_CONFIG, (fp8_dir, quantized), (dequantized_dir, dense))
    return fp8_dir


def _save_twins(
    config: dict[str, Any],
    quantization_config: dict[str, Any],
    quantized: tuple[Path, dict[str, torch.Tensor]],
    dense: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    """Write a quantized checkpoint (config.json with `quantization_config`) and its dense twin."""
    import json

    from safetensors.torch import save_file

    for (path, weights), extra in ((quantized, {"quantization_config": quantization_config}), (dense, {})):
        path.mkdir(parents=True, exist_ok=True)
        save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
        (path / "config.json").write_text(json.dumps({**config, **extra}, indent=2))


# 4-bit GPTQ / AWQ checkpoints (formats: docs/quantization.md). Packed here from the documented layouts, not
# with anyaccel.schemes.packing, so that the loader and the schemes are checked against the formats.
W4_SEQUENTIAL = (0, 1, 2, 3, 4, 5, 6, 7)
W4_AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble slot i of an AWQ word holds output channel 8c + order[i]
# Projections reading the same activations. GPTQ's act-order ranks input channels by statistics of that
# input, so they share one g_idx (a merged q/k/v or gate/up layer holds a single one).
_SHARED_INPUT = {
    "q_proj": "qkv",
    "k_proj": "qkv",
    "v_proj": "qkv",
    "gate_proj": "gate_up",
    "up_proj": "gate_up",
    "w1": "w13",
    "w3": "w13",
}


@dataclass(frozen=True)
class W4Format:
    """method "gptq" (GPTQModel / AutoGPTQ v1) or "awq" (AutoAWQ GEMM), 4 bits, `group_size` input channels
    per scale. sym: zero point 8 (GPTQ still stores qzeros; AWQ writes zero_point false and none).
    desc_act: GPTQ act-order, g_idx a permuted group map."""

    method: str
    group_size: int
    sym: bool
    desc_act: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("gptq", "awq"):
            raise ValueError(f"w4 checkpoint: method must be 'gptq' or 'awq', got {self.method!r}")
        if self.desc_act and self.method != "gptq":
            raise ValueError("w4 checkpoint: act-order (desc_act) exists only for gptq")
        if self.group_size < 8 or self.group_size % 8:
            raise ValueError(f"w4 checkpoint: group_size must be a multiple of 8, got {self.group_size}")

    @property
    def quantization_config(self) -> dict[str, Any]:
        """What GPTQModel or AutoAWQ write into config.json."""
        if self.method == "gptq":
            return {
                "quant_method": "gptq",
                "bits": 4,
                "group_size": self.group_size,
                "sym": self.sym,
                "desc_act": self.desc_act,
                "checkpoint_format": "gptq",
            }
        return {
            "quant_method": "awq",
            "bits": 4,
            "group_size": self.group_size,
            "zero_point": not self.sym,
            "version": "gemm",
        }


def pack_int4(values: torch.Tensor, dim: int, order: tuple[int, ...] = W4_SEQUENTIAL) -> torch.Tensor:
    """Integers 0..15 -> int32 words of 8 along `dim` (that dim shrinks 8x): bits 4i..4i+3 of word c hold
    value 8c + order[i]. The word's bits are kept (a value >= 8 in slot 7 makes the int32 negative)."""
    moved = values.movedim(dim, -1).to(torch.int64)
    octets = moved.reshape(*moved.shape[:-1], -1, 8)
    words = torch.zeros(octets.shape[:-1], dtype=torch.int64)
    for slot, source in enumerate(order):
        words |= octets[..., source] << (4 * slot)
    signed = words - (words >> 31) * 2**32  # the same 32 bits as a two's complement int32
    return signed.to(torch.int32).movedim(-1, dim).contiguous()


def _coarse_scale(scale: torch.Tensor) -> torch.Tensor:
    """scale rounded UP (every group's range still fits) to a 4-bit significand, and at least float16's
    smallest normal (scales are stored in float16). A dequantized weight, a 4-bit integer times the scale,
    then has at most 8 significant bits: exact in float16 and bfloat16, so the dequantized twin holds the
    very weights the 4-bit kernels compute with."""
    mantissa, exponent = torch.frexp(scale.clamp_min(2.0**-14))
    return torch.ldexp(torch.ceil(mantissa * 16) / 16, exponent)


def quantize_w4(
    grouped: torch.Tensor, *, sym: bool, min_zero: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Round-to-nearest 4-bit quantization of weights grouped [N, K/G, G] -> (q int64 [N, K/G, G] in 0..15,
    scales float32 [N, K/G], zeros int64 [N, K/G]), real = (q - zero) * scale. sym: zero 8 and
    scale = 2 * amax / 15 (GPTQ's symmetric grid); otherwise the range [min(w, 0), max(w, 0)] in 15 steps
    and zero = round(-min / scale), at least `min_zero` (a GPTQ v1 file cannot store a zero of 0)."""
    if sym:
        scale = _coarse_scale(2 * grouped.abs().amax(-1) / 15)
        zero = torch.full(scale.shape, 8, dtype=torch.int64)
    else:
        low, high = grouped.amin(-1).clamp_max(0), grouped.amax(-1).clamp_min(0)
        scale = _coarse_scale((high - low) / 15)
        zero = torch.round(-low / scale).to(torch.int64).clamp(min_zero, 15)
    q = (torch.round(grouped / scale[..., None]).to(torch.int64) + zero[..., None]).clamp(0, 15)
    return q, scale, zero


def dequantize_w4(
    q: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, g_idx: torch.Tensor
) -> torch.Tensor:
    """The documented dequantization: q [N, K], scales / zeros [K/G, N], g_idx [K] ->
    float32 [N, K], w[n, k] = (q[n, k] - zeros[g_idx[k], n]) * scales[g_idx[k], n]."""
    groups = g_idx.long()
    return (q - zeros[groups].T).float() * scales[groups].T


class _GroupMaps:
    """g_idx [K] int32 of each linear weight: k // G, or with act-order the group of each input channel's
    rank in a random channel order (GPTQ's g_idx[perm[j]] = j // G), one order per shared input."""

    def __init__(self, fmt: W4Format, gen: torch.Generator) -> None:
        self.fmt, self.gen = fmt, gen
        self.orders: dict[tuple[str, str, int], torch.Tensor] = {}

    def __call__(self, name: str, k: int) -> torch.Tensor:
        groups = (torch.arange(k) // self.fmt.group_size).to(torch.int32)
        if not self.fmt.desc_act:
            return groups
        owner, _, proj = name.removesuffix(".weight").rpartition(".")
        key = (owner, _SHARED_INPUT.get(proj, proj), k)
        if key not in self.orders:
            self.orders[key] = torch.randperm(k, generator=self.gen)
        g_idx = torch.empty(k, dtype=torch.int32)
        g_idx[self.orders[key]] = groups
        return g_idx


def _w4_tensors(
    name: str, weight: torch.Tensor, g_idx: torch.Tensor, fmt: W4Format, gen: torch.Generator
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One linear weight [N, K] -> (its checkpoint tensors by name, its dequantized float32 weight).

    Before rounding, each (output channel, group) is multiplied by a random power of two in [1/2, 2] (scales
    of neighbouring groups differ by up to 4x, so a scale read from a wrong group shows) and, when
    asymmetric, shifted by up to its largest magnitude (zero points spread over 0..15 instead of near 8)."""
    n, k = weight.shape
    g = fmt.group_size
    if k % g or n % 8:
        raise ValueError(
            f"w4 checkpoint: {name} has shape {[n, k]}; its input features must be a multiple of the "
            f"group size {g} and its output features a multiple of 8"
        )
    order = torch.argsort(g_idx, stable=True)  # input channels group by group
    grouped = weight.float()[:, order].reshape(n, k // g, g)
    grouped = grouped * 2.0 ** torch.randint(-1, 2, (n, k // g, 1), generator=gen)
    if not fmt.sym:
        shift = (2 * torch.rand(n, k // g, 1, generator=gen) - 1) * grouped.abs().amax(-1, keepdim=True)
        grouped = grouped + shift
    q_grouped, scale, zero = quantize_w4(grouped, sym=fmt.sym, min_zero=1 if fmt.method == "gptq" else 0)
    q = torch.empty(n, k, dtype=torch.int64)
    q[:, order] = q_grouped.reshape(n, k)
    scales, zeros = scale.T.contiguous(), zero.T.contiguous()  # [K/G, N]
    if fmt.method == "gptq":
        # qweight [K/8, N] along K; qzeros [K/G, N/8] along N, holding zero - 1 (the v1 convention)
        stored = {"qweight": pack_int4(q.T, 0), "qzeros": pack_int4(zeros - 1, 1), "g_idx": g_idx}
    else:
        # qweight [K, N/8] and qzeros [K/G, N/8] along N, interleaved
        stored = {"qweight": pack_int4(q.T, 1, W4_AWQ_ORDER)}
        if not fmt.sym:
            stored["qzeros"] = pack_int4(zeros, 1, W4_AWQ_ORDER)
    stored["scales"] = scales.to(torch.float16)
    base = name.removesuffix("weight")
    return {base + key: t for key, t in stored.items()}, dequantize_w4(q, scales, zeros, g_idx)


def w4_checkpoint(
    model_dir: Path | str,
    quant_dir: Path | str,
    dequantized_dir: Path | str,
    *,
    method: str,
    group_size: int,
    sym: bool,
    desc_act: bool = False,
    seed: int = 0,
) -> Path:
    """From a checkpoint in `model_dir`, write its 4-bit version (W4Format(method, group_size, sym,
    desc_act)) to `quant_dir` and the same weights dequantized, unquantized in the checkpoint's dtype, to
    `dequantized_dir`: two checkpoints of one model, to check the 4-bit path against the dense one.

    gptq (v1): qweight int32 [K/8, N] packed along K, qzeros int32 [K/G, N/8] packed along N holding
    zero - 1, scales fp16 [K/G, N], g_idx int32 [K]. awq (GEMM): qweight int32 [K, N/8] and qzeros
    [K/G, N/8] packed along N in the order W4_AWQ_ORDER, scales fp16 [K/G, N]. Every linear weight is
    quantized round-to-nearest, experts included (not embeddings, LM head, norms or MoE routers), after the
    spreading described in `_w4_tensors`; the dequantized weights are exact in float16 and bfloat16."""
    import json

    from safetensors.torch import load_file

    fmt = W4Format(method, group_size, sym, desc_act)
    model_dir, quant_dir, dequantized_dir = Path(model_dir), Path(quant_dir), Path(dequantized_dir)
    config = json.loads((model_dir / "config.json").read_text())
    gen = torch.Generator().manual_seed(seed)
    group_map = _GroupMaps(fmt, gen)
    quantized, dense = {}, {}
    for name, t in sorted(load_file(model_dir / "model.safetensors").items()):
        if not _is_quantized_linear(name, t):
            quantized[name] = dense[name] = t
            continue
        stored, weight = _w4_tensors(name, t, group_map(name, t.shape[1]), fmt, gen)
        quantized |= stored
        dense[name] = weight.to(t.dtype)
    _save_twins(config, fmt.quantization_config, (quant_dir, quantized), (dequantized_dir, dense))
    return quant_dir


def exit_rank() -> NoReturn:
    """End a spawned test rank whose results are written and whose process group is shut down, skipping the
    interpreter's finalisation: there, torch's teardown of a finished gloo rank aborts the process now and
    then ("terminate called without an active exception"), after every result is complete. Call it only on
    the success path, so that an error still reaches the launcher."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
