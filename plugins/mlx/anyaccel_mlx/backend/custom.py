"""anyaccel's custom ops (`anyaccel::<kernel>`, see core/compile.py) in MLX.

A compiled graph names the KERNEL that was bound eagerly (on Linux a reference kernel, on Apple an MLX one);
whichever it is, the node is lowered to the MLX implementation of its OP CONTRACT, called with the
contract's arguments by name. Ops the contract defines as in place return the new values of their
mutated arguments, in OpDef.mutates order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from anyaccel import context
from anyaccel.compile import LIBRARY, custom_op_for, custom_op_name

from ..ops import activation, attention, moe, norm, rope

Lowering = Callable[[dict[str, Any], str], Any]  # (contract arguments by name, kv layout) -> MLX result


class Unsupported(ValueError):
    """An op or an argument value the MLX lowering cannot express."""


def _no_softcap(a: dict[str, Any]) -> None:
    if a.get("softcap", 0.0) > 0:
        raise Unsupported("attention soft-capping has no MLX equivalent")


def _prefill(a: dict[str, Any], layout: str) -> mx.array:
    _no_softcap(a)
    return attention.prefill(
        a["q"],
        a["k"],
        a["v"],
        a["k_cache"],
        a["v_cache"],
        a["block_tables"],
        a["cu_seqlens_q"],
        a["seq_lens"],
        a["scale"],
        a.get("causal", True),
        a.get("sliding_window", -1),
        a.get("sinks"),
        a.get("k_scale"),
        a.get("v_scale"),
        layout=layout,
    )


def _decode(a: dict[str, Any], layout: str) -> mx.array:
    _no_softcap(a)
    return attention.decode(
        a["q"],
        a["k_cache"],
        a["v_cache"],
        a["block_tables"],
        a["seq_lens"],
        a["max_seq_len"],
        a["scale"],
        a.get("sliding_window", -1),
        a.get("sinks"),
        a.get("k_scale"),
        a.get("v_scale"),
        layout=layout,
    )


def _topk(a: dict[str, Any], layout: str) -> tuple[mx.array, mx.array]:
    """moe.topk without grouped selection (n_group == 1), the routing of Qwen/Mixtral-style models."""
    if a.get("n_group", 1) > 1:
        raise Unsupported("grouped top-k routing (n_group > 1) is not lowered to MLX")
    logits = a["router_logits"].astype(mx.float32)
    scores = (
        mx.softmax(logits, axis=-1, precise=True)
        if a.get("scoring", "softmax") == "softmax"
        else mx.sigmoid(logits)
    )
    bias = a.get("correction_bias")
    choice = scores if bias is None else scores + bias.astype(mx.float32)
    ids = mx.argsort(-choice, axis=-1)[:, : a["top_k"]]
    weights = mx.take_along_axis(scores, ids, axis=-1)
    if a.get("renormalize", True):
        weights = weights / weights.sum(axis=-1, keepdims=True)
    return weights * a.get("routed_scaling_factor", 1.0), ids.astype(mx.int32)


def _gemm(a: dict[str, Any], layout: str) -> mx.array:
    out = a["x"] @ a["weight"].T
    return out if a.get("bias") is None else out + a["bias"]


CONTRACTS: dict[str, Lowering] = {
    "attention.prefill": _prefill,
    "attention.decode": _decode,
    "attention.write_kv": lambda a, layout: attention.write_kv(
        a["k"],
        a["v"],
        a["k_cache"],
        a["v_cache"],
        a["slot_mapping"],
        a.get("k_scale"),
        a.get("v_scale"),
        layout=layout,
    ),
    "linear.gemm": _gemm,
    "norm.rms_norm": lambda a, layout: norm.rms_norm(a["x"], a["weight"], a["eps"]),
    "norm.add_rms_norm": lambda a, layout: norm.add_rms_norm(a["x"], a["residual"], a["weight"], a["eps"]),
    "rope.apply": lambda a, layout: rope.apply(
        a["q"], a["k"], a["positions"], a["cos_sin_cache"], a["is_neox"]
    ),
    "activation.silu_and_mul": lambda a, layout: activation.silu_and_mul(a["x"]),
    "activation.gelu_and_mul": lambda a, layout: activation.gelu_and_mul(
        a["x"], a.get("approximate", "none")
    ),
    "moe.topk": _topk,
    "moe.experts": lambda a, layout: moe.experts(**a),
}


def contract_of(op: Any) -> str | None:
    """The op contract behind a custom op overload of the `anyaccel` library (None for other ops)."""
    if getattr(op, "namespace", None) != LIBRARY:
        return None
    name = op._schema.name.split("::", 1)[1]
    kernels = {
        custom_op_name(k.name).split("::", 1)[1]: k.op for ks in context.get().kernels.values() for k in ks
    }
    # a factory kernel bound for several specs gets "<name>_<n>" (core/compile.py)
    return kernels.get(name) or kernels.get(re.sub(r"_\d+$", "", name))


def kv_layout(op: Any) -> str:
    """The KV-cache layout an attention custom op was bound for: the spec of the resolution whose bound
    kernel is this custom op (a factory kernel gets one custom op per layout, so it is unambiguous)."""
    name = op._schema.name
    for key, res in context.get().resolutions.items():
        if (
            not key[0].startswith("attention.")
            or res.selected is None
            or not name.startswith(custom_op_name(res.selected.name))
        ):
            continue
        bound = custom_op_for(res.fn)
        if bound is not None and bound._qualname == name:
            return res.spec.kv_layout
    raise Unsupported(f"cannot tell which KV layout {name} was bound for (no resolution binds it)")
