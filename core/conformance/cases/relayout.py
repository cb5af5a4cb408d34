"""Attention cases in plugin KV layouts.

A plugin layout with NHD converters (KVLayout.from_nhd / to_nhd) gets every small NHD case of the attention
grid again, its caches re-laid out: the kernel reads and writes the plugin layout, the oracle reads NHD
copies (and for write_kv its result is laid out back, so both sides are compared in the plugin layout).
Vendor layouts usually serve narrow shapes (AITER's assembly decode: head dim 128, 16-token blocks, GQA
up to 16), so a few NHD shapes of that kind are added for them.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import torch

from anyaccel.ops.kv_cache import BUILTIN_LAYOUTS, KVLayout, layouts

from ..case import Case, Inputs
from ..oracles import attention as oracle
from ..tolerance import for_dtype
from . import attention as grid

# Where each op's caches sit among its arguments.
CACHE_ARGS = {"attention.decode": (1, 2), "attention.prefill": (3, 4), "attention.write_kv": (2, 3)}
BF16, F16 = torch.bfloat16, torch.float16
# GQA 8 and 16, head dim 128, 16-token blocks of 16-bit keys: added (in NHD and in each plugin layout) only
# where a plugin layout is registered
VENDOR_SHAPES = {
    "attention.decode": lambda: [
        Case(
            "attention.decode",
            f"B=4 lens=40/0/17/3 {s.label}",
            s.spec(),
            grid._make_decode(s, (40, 0, 17, 3)),
            functools.partial(oracle.decode, "NHD"),
            s.tolerance(),
        )
        for s in (grid.Shape(BF16, 16, 2, 128, 16), grid.Shape(F16, 32, 2, 128, 16))
    ],
    "attention.prefill": lambda: [
        Case(
            "attention.prefill",
            f"new=9/20 cached=0/33 {s.label}",
            s.spec(True),
            grid._make_prefill(s, (9, 20), (0, 33)),
            functools.partial(oracle.prefill, "NHD"),
            s.tolerance(),
        )
        for s in (grid.Shape(F16, 16, 2, 128, 16),)
    ],
    "attention.write_kv": lambda: [
        Case(
            "attention.write_kv",
            f"T=23 padded=2 blocks=3 {s.label}",
            s.spec(),
            grid._make_write_kv(s, 23, 3, 2),
            functools.partial(oracle.write_kv, "NHD"),
            for_dtype(s.dtype),
        )
        for s in (grid.Shape(BF16, 8, 1, 128, 16),)
    ],
}


def relaid(case: Case, kv: KVLayout) -> Case:
    """`case` (NHD) with its caches in `kv`'s layout."""
    ki, vi = CACHE_ARGS[case.op]
    from_nhd, to_nhd = kv.from_nhd, kv.to_nhd
    assert from_nhd is not None and to_nhd is not None

    def make(seed: int) -> Inputs:
        args, kwargs = case.make(seed)
        moved = list(args)
        moved[ki], moved[vi] = from_nhd(args[ki], args[vi])
        return tuple(moved), kwargs

    def layout_oracle(*args, **kwargs):
        nhd = list(args)
        nhd[ki], nhd[vi] = to_nhd(args[ki], args[vi])
        result = case.oracle(*nhd, **kwargs)
        if case.op == "attention.write_kv":
            k, v = from_nhd(nhd[ki], nhd[vi])
            args[ki].copy_(k)
            args[vi].copy_(v)
        return result

    spec = replace(case.spec, kv_layout=kv.name)
    return replace(case, id=f"{case.id} as {kv.name}", spec=spec, make=make, oracle=layout_oracle)


def plugin_layout_cases(op: str, base: list[Case]) -> list[Case]:
    """The cases `base` (the op's grid) adds in every convertible plugin layout known here, and the vendor
    shapes in NHD too."""
    if op not in CACHE_ARGS:
        return []
    plugin = [
        kv for name, kv in layouts().items() if name not in BUILTIN_LAYOUTS and kv.from_nhd and kv.to_nhd
    ]
    if not plugin:
        return []
    extra = VENDOR_SHAPES[op]()
    nhd = [c for c in base if c.spec.kv_layout == "NHD" and not c.large] + extra
    return extra + [relaid(c, kv) for kv in plugin for c in nhd]
