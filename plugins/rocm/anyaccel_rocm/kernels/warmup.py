"""Warm-up hooks (`fn.anyaccel_warmup(spec)`, called by `anyaccel warmup`): each runs its kernel once on
small inputs shaped by the spec, on the platform's device, so that the AITER modules the kernel calls are
JIT-built now (a cold build can take minutes) rather than inside the first request. Values are random;
nothing is checked."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch

import anyaccel
from anyaccel.ops.kv_cache import layout

Fn = Callable[..., Any]


def _device() -> torch.device:
    return torch.device(anyaccel.get_platform().torch_device_type)


def _randn(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, device=_device()).to(dtype)


def attach(fn: Fn, warm: Callable[[Fn, Any], None]) -> Fn:
    """fn with its hook: fn.anyaccel_warmup(spec) runs warm(fn, spec)."""
    fn.anyaccel_warmup = partial(warm, fn)  # type: ignore[attr-defined]
    return fn


def rms_norm(fn: Fn, spec: Any) -> None:
    fn(_randn(4, spec.hidden_size, dtype=spec.dtype), _randn(spec.hidden_size, dtype=spec.dtype), 1e-6)


def add_rms_norm(fn: Fn, spec: Any) -> None:
    h = spec.hidden_size
    fn(_randn(4, h, dtype=spec.dtype), _randn(4, h, dtype=spec.dtype), _randn(h, dtype=spec.dtype), 1e-6)


def gated(fn: Fn, spec: Any) -> None:
    fn(_randn(4, 2 * spec.intermediate_size, dtype=spec.dtype))


def rope(fn: Fn, spec: Any) -> None:
    q = _randn(4, spec.num_q_heads, spec.head_dim, dtype=spec.dtype)
    k = _randn(4, spec.num_kv_heads, spec.head_dim, dtype=spec.dtype)
    positions = torch.arange(4, device=q.device)
    fn(q, k, positions, _randn(16, spec.rotary_dim), spec.is_neox)


def topk(fn: Fn, spec: Any) -> None:
    bias = _randn(spec.num_experts) if spec.has_bias else None
    fn(_randn(4, spec.num_experts, dtype=spec.dtype), spec.top_k, spec.scoring, True, 1, 1, bias)


def quantize_fp8(fn: Fn, spec: Any) -> None:
    fn(_randn(4, 256, dtype=spec.dtype), getattr(torch, spec.fp8_dtype), spec.granularity)


def fp8_gemm(fn: Fn, spec: Any) -> None:
    fp8, n, k = getattr(torch, spec.fp8_dtype), 256, 256
    a, b = _randn(4, k).to(fp8), _randn(n, k).to(fp8)
    if spec.scales == "block":
        a_scale, b_scale = _randn(4, k // 128).abs(), _randn(n // 128, k // 128).abs()
    else:
        a_scale, b_scale = _randn(4, 1).abs(), _randn(n, 1).abs()
    fn(a, b, a_scale, b_scale, spec.out_dtype)


def _cache(spec: Any, blocks: int = 2):
    k_cache, v_cache = layout(spec.kv_layout).allocate(
        blocks, spec.block_size, spec.num_kv_heads, spec.head_dim, spec.cache_dtype, _device()
    )
    scales = (torch.ones(1, device=k_cache.device),) * 2 if spec.fp8_kv else (None, None)
    return k_cache, v_cache, *scales


def _extras(spec: Any, k_scale, v_scale) -> dict[str, Any]:
    sinks = _randn(spec.num_q_heads) if spec.sinks else None
    return dict(
        sliding_window=spec.sliding_window,
        softcap=spec.softcap,
        sinks=sinks,
        k_scale=k_scale,
        v_scale=v_scale,
    )


def write_kv(fn: Fn, spec: Any) -> None:
    k_cache, v_cache, k_scale, v_scale = _cache(spec)
    k = _randn(3, spec.num_kv_heads, spec.head_dim, dtype=spec.dtype)
    fn(k, k.clone(), k_cache, v_cache, torch.arange(3, device=k.device), k_scale, v_scale)


def decode(fn: Fn, spec: Any) -> None:
    k_cache, v_cache, k_scale, v_scale = _cache(spec)
    q = _randn(1, spec.num_q_heads, spec.head_dim, dtype=spec.dtype)
    table = torch.tensor([[0, 1]], dtype=torch.int32, device=q.device)
    lens = torch.tensor([3], dtype=torch.int32, device=q.device)
    fn(q, k_cache, v_cache, table, lens, 3, spec.softmax_scale, **_extras(spec, k_scale, v_scale))


def prefill(fn: Fn, spec: Any) -> None:
    k_cache, v_cache, k_scale, v_scale = _cache(spec)
    q = _randn(3, spec.num_q_heads, spec.head_dim, dtype=spec.dtype)
    k = _randn(3, spec.num_kv_heads, spec.head_dim, dtype=spec.dtype)
    table = torch.tensor([[0, 1]], dtype=torch.int32, device=q.device)
    cu = torch.tensor([0, 3], dtype=torch.int32, device=q.device)
    lens = torch.tensor([3], dtype=torch.int32, device=q.device)
    extras = _extras(spec, k_scale, v_scale)
    fn(q, k, k.clone(), k_cache, v_cache, table, cu, lens, 3, 3, spec.softmax_scale, spec.causal, **extras)


def experts(fn: Fn, spec: Any, prepare: Callable[[Any, dict], dict]) -> None:
    # a few experts are enough to build the modules; the per-expert shapes are the spec's
    e, h, i, t = min(spec.num_experts, max(spec.top_k, 8)), spec.hidden_size, spec.intermediate_size, 4
    weights: dict[str, Any] = {
        "w13": _randn(e, 2 * i, h, dtype=spec.dtype),
        "w2": _randn(e, h, i, dtype=spec.dtype),
    }
    if spec.quant != "none":
        fp8 = getattr(torch, anyaccel.get_platform().fp8_dtype)
        weights = {name: w.to(fp8) for name, w in weights.items()}
        if spec.quant == "fp8_tensor":
            weights |= {"w13_scale": _randn(e).abs(), "w2_scale": _randn(e).abs()}
        else:
            weights |= {
                "w13_scale": _randn(e, -(-2 * i // 128), -(-h // 128)).abs(),
                "w2_scale": _randn(e, -(-h // 128), -(-i // 128)).abs(),
            }
    weights = prepare(spec, weights)
    ids = torch.randint(0, e, (t, spec.top_k), dtype=torch.int32, device=_device())
    topk_weights = torch.full((t, spec.top_k), 1.0 / spec.top_k, device=ids.device)
    fn(
        _randn(t, h, dtype=spec.dtype),
        weights.pop("w13"),
        weights.pop("w2"),
        topk_weights,
        ids,
        spec.activation,
        None,
        **weights,
    )
