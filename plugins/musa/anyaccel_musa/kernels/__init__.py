"""Kernel records of the musa provider: data only. Targets live in the modules beside this one and import
MATE or torch_musa's ops (or, emulated, their stand-ins) only when selected.

Each record names the architectures it runs on (gates.py: MATE ships kernels for MP31 only; torch_musa's
fused ops per its tests' gates), the dtypes, and a `supports` predicate with the rest of the vendor limits.
All are verified against the emulators only (`verified="emulator"`). Not served here, so Triton on MUSA or
the reference binds: KV writes (torch_musa has no fused paged-cache write; vLLM-musa's is in its own
extension), add_rms_norm and gelu_and_mul (no torch_musa fused op), top-k routing, unquantized and
non-block MoE, per-token-group fp8 quantization (a Triton kernel on MUSA, as in vLLM-musa), communication
(the reference collectives over mccl).
"""

from __future__ import annotations

from anyaccel.platforms.base import Capability
from anyaccel.registry import Kernel

from .. import gates
from . import supports

PRIORITY = 20
HERE = __name__
MATE = ("mate",)
TORCH_MUSA = ("torch_musa",)


def _kernel(
    op: str, name: str, target: str, arches: frozenset[Capability], requires: tuple[str, ...], **kwargs
) -> Kernel:
    return Kernel(
        op=op,
        name=f"musa.{name}",
        target=f"{HERE}.{target}",
        platforms=frozenset({"musa"}),
        capability=arches,
        requires=requires,
        priority=PRIORITY,
        verified="emulator",
        **kwargs,
    )


KERNELS: list[Kernel] = [
    # MATE FlashAttention-3 over the NHD paged cache, any page size, scheduler metadata planned per forward
    _kernel(
        "attention.prefill",
        "mate_prefill",
        "attention:prefill",
        gates.MATE_ARCHES,
        MATE,
        dtypes=gates.ATTN_DTYPES,
        factory=True,
        supports=supports.mate_attention,
        kv_layout=gates.ATTN_LAYOUT,
    ),
    _kernel(
        "attention.decode",
        "mate_decode",
        "attention:decode",
        gates.MATE_ARCHES,
        MATE,
        dtypes=gates.ATTN_DTYPES,
        factory=True,
        supports=supports.mate_attention,
        kv_layout=gates.ATTN_LAYOUT,
    ),
    # MATE DeepGEMM-style fp8 GEMMs
    _kernel(
        "quant.fp8_gemm",
        "mate_fp8_gemm_nt",
        "fp8:fp8_gemm",
        gates.MATE_ARCHES,
        MATE,
        factory=True,
        supports=supports.deepgemm_fp8,
        prepare=f"{HERE}.fp8:prepare",
    ),
    _kernel(
        "moe.experts",
        "mate_grouped_fp8_experts",
        "moe:experts",
        gates.MATE_ARCHES,
        MATE,
        dtypes=gates.GROUPED_DTYPES,
        supports=supports.grouped_fp8_experts,
        prepare=f"{HERE}.moe:prepare",
    ),
    # torch_musa fused ops
    _kernel(
        "norm.rms_norm",
        "fused_rms_norm",
        "elementwise:rms_norm",
        gates.RMSNORM_ARCHES,
        TORCH_MUSA,
        dtypes=gates.RMSNORM_DTYPES,
        factory=True,
    ),
    _kernel(
        "activation.silu_and_mul",
        "fused_swiglu",
        "elementwise:silu_and_mul",
        gates.SWIGLU_ARCHES,
        TORCH_MUSA,
        dtypes=gates.SWIGLU_DTYPES,
    ),
    _kernel(
        "rope.apply",
        "fused_rope",
        "elementwise:rope",
        gates.ROPE_ARCHES,
        TORCH_MUSA,
        dtypes=gates.ROPE_DTYPES,
        factory=True,
        supports=supports.fused_rope,
    ),
]
