"""Cases for moe.topk and moe.experts.

topk: Mixtral-, Qwen-, Llama-4- and DeepSeek-V2/V3-like routers. Logits are built so that every choice
score (and every group score) differs from the next by at least ~0.01, far above what rounding the logits
to fp16/bf16 moves them, so the chosen sets are unambiguous; rows are compared as sets of (id, weight) pairs
because the contract leaves their order free. With a correction bias the bias, not the score, decides the
choice, so a kernel that ignores it (or returns biased weights) fails.

experts: the block-scaled formats (mxfp8, mxfp4, nvfp4) get random codes and scales (cases/mx.py) and the
fp8 pass rule below, because vendor kernels quantize activations on the fly to mxfp8 or nvfp4; the GPT-OSS
configurations add per-expert biases (the gate's large enough, here and there, to reach the clamp of
"swiglu_oai"). Tolerances are otherwise the dtype table widened 4x, because kernels may round the gate/up
product, each expert's output and the weighted sum to the compute dtype (three roundings beyond the
output's). fp8 modes
also allow on-the-fly e4m3 activation quantization per 1x128 group (documented in the contract): each of the
two GEMMs then sees inputs rounded by up to 2^-4 relative. An emulated kernel doing exactly that (x and the
gate/up product quantized per 1x128 group, bf16/fp16 intermediates) lands at an RMS error of 4-5% of the
output's RMS, and at most 0.31 x (|expected| + RMS) on any element (heavy-tailed outputs); fp8 cases pass
below 10% RMS error and 0.5 x (|expected| + RMS) per element. A wrong scale, tile or gate/up order costs
30-100% RMS error.
"""

from __future__ import annotations

from typing import Any

import torch

from anyaccel.ops.moe import MoESpec, TopKSpec

from ..case import Case, Comparison, Tolerance, generator, randn
from ..compare import errors
from ..oracles import moe as oracle
from ..tolerance import BY_DTYPE, for_dtype
from .mx import random_operand
from .quant import name, pack_nibbles, quantize_tiles

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
FP8_RMS_ERROR, FP8_ELEMENT_ERROR = 0.10, 0.5


# --- topk -----------------------------------------------------------------------------------------------

# (label, E, top_k, scoring, renormalize, n_group, topk_group, bias, routed_scaling_factor)
ROUTERS = (
    ("mixtral", 8, 2, "softmax", True, 1, 1, False, 1.0),
    ("qwen-moe", 60, 4, "softmax", False, 1, 1, False, 1.0),
    ("softmax-64", 64, 8, "softmax", True, 1, 1, False, 1.0),
    ("llama4", 16, 1, "sigmoid", False, 1, 1, False, 1.0),
    ("sigmoid-bias", 60, 4, "sigmoid", True, 1, 1, True, 1.0),
    ("deepseek-v2", 64, 6, "softmax", False, 8, 3, False, 16.0),
    ("deepseek-v3", 64, 8, "sigmoid", True, 8, 4, True, 2.5),
)


def _distinct_logits(g: torch.Generator, t: int, e: int) -> torch.Tensor:
    """Each row a permutation of evenly spaced logits (0.1 apart): no ties, in any dtype."""
    return torch.stack([(torch.randperm(e, generator=g) - e / 2) * 0.1 for _ in range(t)])


def _biased_logits(g: torch.Generator, t: int, e: int, n_group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, bias) whose choice scores sigmoid(logit) + bias lie on a grid ordered by (group level, rank
    in group): consecutive choice scores differ by 0.7 / (E + n_group + 1) and group top-2 sums by more. The
    bias spans [-0.1, 0.1], so the unbiased scores rank the experts differently."""
    size = e // n_group
    bias = torch.rand(e, generator=g) * 0.2 - 0.1
    rows = []
    for _ in range(t):
        level = torch.randperm(n_group, generator=g).repeat_interleave(size)
        rank = torch.cat([torch.randperm(size, generator=g) for _ in range(n_group)])
        grid = (level * (size + 1) + rank + 1).float() / (n_group * (size + 1) + 1)
        score = 0.15 + 0.7 * grid - bias  # in [0.05, 0.95]
        rows.append(torch.log(score / (1 - score)))
    return torch.stack(rows), bias


Compared = dict[str, Comparison]


def _as_sets(got: dict[str, Any], want: dict[str, Any], tol: Tolerance) -> Compared:
    """Compare (weights, ids) row by row after sorting each row by expert id."""

    def by_id(weights: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        order = ids.cpu().long().argsort(dim=1)
        return weights.cpu().gather(1, order), ids.cpu().long().gather(1, order)

    if got["out1"].dtype != torch.int32 or got["out0"].dtype != torch.float32:
        sample = f"weights {got['out0'].dtype}, ids {got['out1'].dtype}; expected float32, int32"
        return {"dtypes": Comparison(False, float("inf"), float("inf"), sample)}
    gw, gi = by_id(got["out0"], got["out1"])
    ww, wi = by_id(want["out0"], want["out1"])
    return {"out1": errors(gi, wi, Tolerance(0, 0)), "out0": errors(gw, ww, tol)}


def _topk_cases() -> list[Case]:
    cases = []
    for label, e, k, scoring, renorm, n_group, topk_group, bias, scaling in ROUTERS:
        for dtype in DTYPES:
            for t in (1, 37, 257):

                def make(
                    seed: int,
                    t=t,
                    e=e,
                    k=k,
                    s=scoring,
                    r=renorm,
                    ng=n_group,
                    tg=topk_group,
                    b=bias,
                    sc=scaling,
                    d=dtype,
                ):
                    g = generator(seed)
                    logits, corr = _biased_logits(g, t, e, ng) if b else (_distinct_logits(g, t, e), None)
                    return (logits.to(d), k, s, r, ng, tg, corr, sc), {}

                cases.append(
                    Case(
                        "moe.topk",
                        f"{label} T={t} E={e} k={k} {name(dtype)}",
                        TopKSpec(dtype, e, k, scoring, n_group > 1, bias),
                        make,
                        oracle.topk,
                        {},
                        compare=lambda got, want: _as_sets(got, want, BY_DTYPE[torch.float32]),
                    )
                )
    return cases


# --- experts --------------------------------------------------------------------------------------------

# (E_local, E_global (!= E_local: expert parallel), top_k, H, I, activation, quant, group_size)
EXPERT_CONFIGS = (
    (8, 8, 2, 128, 64, "silu", "none", 0),
    (60, 60, 4, 96, 40, "gelu", "none", 0),
    (64, 64, 8, 64, 32, "silu", "none", 0),
    (16, 64, 8, 64, 48, "silu", "none", 0),
    (8, 8, 2, 128, 64, "silu", "fp8_tensor", 0),
    (16, 64, 4, 256, 192, "silu", "fp8_block", 0),
    (8, 8, 2, 200, 100, "gelu", "fp8_block", 0),
    (8, 8, 2, 256, 128, "silu", "int4_group", 128),
    (16, 16, 4, 128, 64, "silu", "int4_group", 32),
    (8, 32, 2, 128, 64, "gelu", "int4_group", 64),
)


# (E_local, E_global, top_k, H, I, activation, quant, group_size); swiglu_oai configurations carry biases
MX_EXPERT_CONFIGS = (
    (8, 8, 2, 96, 64, "swiglu_oai", "none", 0),
    (8, 8, 2, 128, 64, "swiglu_oai", "mxfp4", 0),
    (16, 32, 4, 96, 160, "swiglu_oai", "mxfp4", 0),
    (8, 8, 2, 64, 96, "silu", "mxfp8", 0),
    (16, 16, 4, 80, 48, "silu", "nvfp4", 0),
    (8, 16, 2, 64, 32, "swiglu_oai", "nvfp4", 0),
)


def _within_fp8_noise(got: dict[str, Any], want: dict[str, Any]) -> Compared:
    """The fp8 pass rule of the module docstring: RMS error and per-element error, relative to the RMS."""
    out, expected = got["out"], want["out"]
    if tuple(out.shape) != tuple(expected.shape):
        shapes = f"shape {list(out.shape)}, expected {list(expected.shape)}"
        return {"out": Comparison(False, float("inf"), float("inf"), shapes)}
    diff = (out.detach().cpu().double() - expected).abs()
    rms = float(expected.pow(2).mean().sqrt()) or 1e-6
    rms_error = float(diff.pow(2).mean().sqrt()) / rms
    ok = rms_error <= FP8_RMS_ERROR and bool((diff <= FP8_ELEMENT_ERROR * (expected.abs() + rms)).all())
    sample = "" if ok else f"RMS error {rms_error:.3g} of the output's RMS (limit {FP8_RMS_ERROR:g})"
    return {"out": Comparison(ok, float(diff.max()), rms_error, sample)}


def _fp8_experts(g: torch.Generator, e: int, n: int, k: int, quant: str, fp8: torch.dtype):
    """[E, N, K] fp8 weights ~ N(0, 1/K) with 128x128 tile magnitudes varying 4x, and their scales."""
    tile = (1 << 30, 1 << 30) if quant == "fp8_tensor" else (128, 128)
    qs, scales = [], []
    for _ in range(e):
        w = torch.randn(n, k, generator=g) / k**0.5
        w = (
            w
            * torch.pow(2.0, torch.randint(-1, 2, (-(-n // 128), -(-k // 128)), generator=g).float())
            .repeat_interleave(128, 0)[:n]
            .repeat_interleave(128, 1)[:, :k]
        )
        q, s = quantize_tiles(w, fp8, min(tile[0], n), min(tile[1], k))
        qs.append(q)
        scales.append(s.reshape(1) if quant == "fp8_tensor" else s)
    return torch.stack(qs), torch.cat(scales) if quant == "fp8_tensor" else torch.stack(scales)


def _int4_experts(g: torch.Generator, e: int, n: int, k: int, group: int, zeros: bool, dtype: torch.dtype):
    q = torch.randint(0, 16, (e, n, k), generator=g)
    scales = ((torch.rand(e, n, k // group, generator=g) + 0.5) / (4 * k**0.5)).to(dtype)
    z = torch.randint(0, 16, (e, n, k // group), generator=g).to(torch.uint8) if zeros else None
    return pack_nibbles(q), scales, z


def _mx_experts(
    g: torch.Generator, e: int, n: int, k: int, fmt: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """[E, N, K] block-scaled expert weights ~ 1/sqrt(K): (elements, scales, global [E] or None)."""
    parts = [random_operand(g, fmt, n, k, magnitude=k**-0.5) for _ in range(e)]
    glob = torch.cat([p["global"] for p in parts]) if fmt == "nvfp4" else None
    return torch.stack([p["q"] for p in parts]), torch.stack([p["scale"] for p in parts]), glob


MX_QUANTS = ("mxfp8", "mxfp4", "nvfp4")


def _expert_case(
    t: int,
    config: tuple,
    dtype: torch.dtype,
    fp8: torch.dtype = torch.float8_e4m3fn,
    zeros: bool = True,
    large: bool = False,
    bias: bool = False,
) -> Case:
    e, e_global, k, h, i, act, quant, group = config

    def make(seed: int):
        g = generator(seed)
        hidden = randn(g, t, h, dtype=dtype)
        ids = torch.stack([torch.randperm(e_global, generator=g)[:k] for _ in range(t)]).to(torch.int32)
        weights = torch.rand(t, k, generator=g) + 0.1
        weights = weights / weights.sum(dim=1, keepdim=True)
        kwargs: dict[str, Any] = {"activation": act}
        if e_global != e:
            expert_map = torch.full((e_global,), -1, dtype=torch.int32)
            expert_map[torch.randperm(e_global, generator=g)[:e]] = torch.arange(e, dtype=torch.int32)
            kwargs["expert_map"] = expert_map
        if quant == "none":
            w13 = randn(g, e, 2 * i, h, dtype=dtype, scale=h**-0.5)
            w2 = randn(g, e, h, i, dtype=dtype, scale=i**-0.5)
        elif quant == "int4_group":
            w13, kwargs["w13_scale"], kwargs["w13_zeros"] = _int4_experts(g, e, 2 * i, h, group, zeros, dtype)
            w2, kwargs["w2_scale"], kwargs["w2_zeros"] = _int4_experts(g, e, h, i, group, zeros, dtype)
        elif quant in MX_QUANTS:
            w13, kwargs["w13_scale"], w13_global = _mx_experts(g, e, 2 * i, h, quant)
            w2, kwargs["w2_scale"], w2_global = _mx_experts(g, e, h, i, quant)
            if quant == "nvfp4":
                kwargs["w13_global_scale"], kwargs["w2_global_scale"] = w13_global, w2_global
        else:
            w13, kwargs["w13_scale"] = _fp8_experts(g, e, 2 * i, h, quant, fp8)
            w2, kwargs["w2_scale"] = _fp8_experts(g, e, h, i, quant, fp8)
        if bias:
            kwargs["w13_bias"] = randn(g, e, 2 * i, dtype=dtype, scale=4.0)
            kwargs["w2_bias"] = randn(g, e, h, dtype=dtype, scale=0.5)
        return (hidden, w13, w2, weights, ids), kwargs

    label = (
        f"T={t} E={e}"
        + (f"/{e_global} EP" if e_global != e else "")
        + f" k={k} H={h} I={i} {act}"
        + f" {quant}"
        + (f" {name(fp8)}" if quant.startswith("fp8") else "")
        + (f" G={group} {'zeros' if zeros else 'sym'}" if quant == "int4_group" else "")
        + (" bias" if bias else "")
        + f" {name(dtype)}"
    )
    spec = MoESpec(dtype, e, k, h, i, act, quant, group or 128, e_global != e, has_bias=bias)
    return Case(
        "moe.experts",
        label,
        spec,
        make,
        oracle.experts,
        for_dtype(dtype, 4.0),
        compare=_within_fp8_noise if quant.startswith("fp8") or quant in MX_QUANTS else None,
        large=large,
    )


def _experts_cases() -> list[Case]:
    cases = []
    for n, config in enumerate(EXPERT_CONFIGS):
        quant = config[6]
        dtypes = DTYPES if quant == "none" else (torch.bfloat16, torch.float16)
        for m, dtype in enumerate(dtypes):
            t = (1, 37, 133)[(n + m) % 3]
            fp8 = (torch.float8_e4m3fn, torch.float8_e4m3fnuz)[m % 2]
            cases.append(_expert_case(t, config, dtype, fp8=fp8, zeros=(m % 2 == 0)))
    # decode-sized batches: most experts hold a few rows each (batched and dense kernels take this path)
    cases.append(_expert_case(8, (8, 8, 2, 128, 64, "gelu", "none", 0), torch.float32))
    cases.append(_expert_case(19, EXPERT_CONFIGS[3], torch.float32))
    # block-scaled weights and GPT-OSS's biases and clamped SwiGLU (H, I multiples of the block only)
    for n, config in enumerate(MX_EXPERT_CONFIGS):
        for m, dtype in enumerate((torch.bfloat16, torch.float16, torch.float32)):
            t = (1, 37, 133)[(n + m) % 3]
            cases.append(_expert_case(t, config, dtype, bias=config[5] == "swiglu_oai"))
    cases.append(_expert_case(65, (64, 64, 8, 1024, 512, "silu", "none", 0), torch.bfloat16, large=True))
    cases.append(_expert_case(33, (16, 64, 8, 1024, 512, "silu", "fp8_block", 0), torch.bfloat16, large=True))
    return cases


CASES = {"moe.topk": _topk_cases, "moe.experts": _experts_cases}
