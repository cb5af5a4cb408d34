"""Kernel records of the aiter provider: data only, targets in the modules beside this one (imported, and
AITER with them, only when selected).

Every record runs on rocm gfx942/gfx950 (gates.AITER_GFX: the targets AITER ships assembly for), needs
MFMA where it computes matrix products, and states the rest of AITER's limits as `supports` reasons
(supports.py, from gates.py). All are verified against the emulators of emulators/aiter only.
"""

from __future__ import annotations

import torch

from anyaccel.registry import Kernel

from .. import gates
from ..layouts import NAME as PA_ASM
from ..layouts import NAME_8BIT as PA_ASM_8BIT
from . import supports

HALF = frozenset({torch.float16, torch.bfloat16})
FLOATS = HALF | {torch.float32}
PRIORITY = 20


def _kernel(
    op: str, name: str, target: str, *, mfma: bool = True, priority: int = PRIORITY, **kwargs
) -> Kernel:
    return Kernel(
        op=op,
        name=f"aiter.{name}",
        target=f"{__name__}.{target}",
        platforms=frozenset({"rocm"}),
        capability=gates.AITER_GFX,
        features=frozenset({"mfma"}) if mfma else frozenset(),
        requires=("amd-aiter",),
        priority=priority,
        verified="emulator",
        **kwargs,
    )


def _attention(op: str, name: str, target: str, layout: str, supports, **kwargs) -> Kernel:
    return _kernel(op, name, target, dtypes=HALF, supports=supports, factory=True, kv_layout=layout, **kwargs)


KERNELS: list[Kernel] = [
    # attention: varlen prefill on every layout; decode by the HIP kernel (NHD) or the assembly kernel
    # (its own layouts: 16-bit and fp8 caches pack differently; preferred where it accepts the spec, so the
    # engine allocates that layout)
    _attention("attention.prefill", "varlen_prefill", "attention:prefill", "NHD", supports.prefill),
    _attention(
        "attention.prefill", "varlen_prefill_pa_asm", "attention:prefill", PA_ASM, supports.prefill_pa_asm
    ),
    _attention(
        "attention.prefill",
        "varlen_prefill_pa_asm_fp8",
        "attention:prefill",
        PA_ASM_8BIT,
        supports.prefill_pa_asm_8bit,
    ),
    _attention(
        "attention.decode",
        "paged_decode",
        "attention:paged_decode",
        "NHD",
        supports.decode_v1,
        kv_block_sizes=gates.PA_V1_BLOCK_SIZES,
    ),
    _attention(
        "attention.decode",
        "pa_asm_decode",
        "attention:pa_asm_decode",
        PA_ASM,
        supports.decode_pa_asm,
        kv_block_sizes=frozenset({gates.PA_ASM_BLOCK_SIZE}),
        priority=PRIORITY + 10,
    ),
    _attention(
        "attention.decode",
        "pa_asm_decode_fp8",
        "attention:pa_asm_decode",
        PA_ASM_8BIT,
        supports.decode_pa_asm_8bit,
        kv_block_sizes=frozenset({gates.PA_ASM_BLOCK_SIZE}),
        priority=PRIORITY + 10,
    ),
    _attention("attention.write_kv", "write_kv", "attention:write_kv", "NHD", supports.write_kv, mfma=False),
    _attention(
        "attention.write_kv",
        "write_kv_pa_asm",
        "attention:write_kv_pa_asm",
        PA_ASM,
        supports.write_kv_pa_asm,
        mfma=False,
    ),
    _attention(
        "attention.write_kv",
        "write_kv_pa_asm_fp8",
        "attention:write_kv_pa_asm",
        PA_ASM_8BIT,
        supports.write_kv_pa_asm_8bit,
        mfma=False,
    ),
    # norms, rope, activations (no matrix units)
    _kernel("norm.rms_norm", "rms_norm", "norm:rms_norm", mfma=False, dtypes=FLOATS),
    _kernel("norm.add_rms_norm", "add_rms_norm", "norm:add_rms_norm", mfma=False, dtypes=HALF),
    _kernel("rope.apply", "rope", "rope:rope", mfma=False, dtypes=HALF, supports=supports.rope, factory=True),
    _kernel("activation.silu_and_mul", "silu_and_mul", "activation:silu_and_mul", mfma=False, dtypes=HALF),
    _kernel("activation.gelu_and_mul", "gelu_and_mul", "activation:gelu_and_mul", mfma=False, dtypes=HALF),
    # MoE
    _kernel(
        "moe.topk",
        "topk_softmax",
        "moe:topk_softmax",
        mfma=False,
        dtypes=FLOATS,
        supports=supports.topk_softmax,
    ),
    _kernel(
        "moe.topk",
        "biased_grouped_topk",
        "moe:biased_grouped_topk",
        mfma=False,
        dtypes=FLOATS,
        supports=supports.biased_grouped_topk,
    ),
    _kernel(
        "moe.topk",
        "grouped_topk",
        "moe:grouped_topk",
        mfma=False,
        dtypes=FLOATS,
        supports=supports.grouped_topk,
    ),
    _kernel(
        "moe.experts",
        "fused_moe",
        "moe:experts",
        dtypes=HALF,
        supports=supports.experts,
        factory=True,
        prepare=f"{__name__}.moe:prepare",
    ),
    # fp8 activations and GEMMs
    _kernel(
        "quant.quantize_fp8",
        "quantize_fp8",
        "quant:quantize_fp8",
        mfma=False,
        dtypes=FLOATS,
        supports=supports.quantize_fp8,
    ),
    _kernel("quant.fp8_gemm", "gemm_a8w8", "gemm:gemm_a8w8", supports=supports.gemm_a8w8),
    _kernel(
        "quant.fp8_gemm",
        "gemm_a8w8_blockscale",
        "gemm:gemm_a8w8_blockscale",
        supports=supports.gemm_a8w8_blockscale,
    ),
    # communication: for the size classes it takes; the reference (RCCL) stays behind it
    _kernel(
        "comm.all_reduce",
        "custom_all_reduce",
        "comm:custom_all_reduce",
        mfma=False,
        dtypes=frozenset(gates.CUSTOM_AR_DTYPES),
        supports=supports.custom_all_reduce,
        factory=True,
    ),
    # large messages: quick reduce first where its size window starts (vLLM's order), custom all-reduce below
    _kernel(
        "comm.all_reduce",
        "quick_all_reduce",
        "comm:quick_all_reduce",
        mfma=False,
        priority=PRIORITY + 1,
        dtypes=frozenset(gates.QR_DTYPES),
        supports=supports.quick_all_reduce,
        factory=True,
    ),
]
