"""Kernel records of the npu provider: data only. Targets live in the modules beside this one and import
torch_npu (or, emulated, its stand-in) only when selected.

Each record names the SoCs it runs on (gates.py: the products torch_npu documents each function for, and
the path vllm-ascend takes per SoC), the dtypes, and a `supports` predicate with the rest of torch_npu's
limits. All are verified against the torch_npu emulator only (`verified="emulator"`). The calls' argument
names and order are torch_npu's registered schemas (gates.py: OP_PLUGIN @ 517f2e7), which the emulator
takes exactly (tests/test_emulator_signatures.py).
"""

from __future__ import annotations

import torch

from anyaccel.platforms.base import Capability
from anyaccel.registry import Kernel

from .. import gates
from ..layouts import NAME as NZ
from . import supports

HALF = frozenset({torch.float16, torch.bfloat16})
FLOATS = HALF | {torch.float32}
PRIORITY = 20
HERE = __name__


def _kernel(
    op: str, name: str, target: str, socs: frozenset[Capability], priority: int = PRIORITY, **kwargs
) -> Kernel:
    kwargs["supports"] = supports.with_bf16_gate(kwargs.get("supports"))
    return Kernel(
        op=op,
        name=f"npu.{name}",
        target=f"{HERE}.{target}",
        platforms=frozenset({"npu"}),
        capability=socs,
        requires=("torch-npu",),
        priority=priority,
        verified="emulator",
        **kwargs,
    )


def _attention(op: str, name: str, target: str, socs, supports_fn, layout, **kwargs) -> Kernel:
    return _kernel(
        op,
        name,
        target,
        socs,
        factory=True,
        supports=supports_fn,
        kv_layout=layout,
        kv_block_sizes=kwargs.pop("block_sizes", gates.FIA_BLOCK_SIZES),
        **kwargs,
    )


KERNELS: list[Kernel] = [
    # attention on A2/A3: FIA on TND queries over 128-token pages (NHD or HND caches), sinks through _v2
    _attention(
        "attention.prefill",
        "fused_infer_attention_prefill",
        "attention:prefill",
        gates.A2_A3,
        supports.fia_prefill,
        None,
        dtypes=HALF,
    ),
    _attention(
        "attention.decode",
        "fused_infer_attention_decode",
        "attention:decode",
        gates.A2_A3,
        supports.fia_decode,
        None,
        dtypes=HALF,
    ),
    _attention(
        "attention.write_kv",
        "scatter_pa_kv_cache",
        "attention:write_kv",
        gates.A2_A3,
        supports.scatter_kv,
        "NHD",
        dtypes=FLOATS,
        block_sizes=frozenset(),
    ),
    # head dim 512 on A2/A3: the ATB paged attention, ranked above FIA (vllm-ascend attention/utils.py)
    _attention(
        "attention.decode",
        "paged_attention_hd512",
        "paged:decode",
        gates.A2_A3,
        supports.paged_hd512,
        "NHD",
        dtypes=HALF,
        priority=PRIORITY + 5,
    ),
    # 310P: the ATB paged attention and reshape_and_cache on NZ caches
    _attention(
        "attention.decode",
        "paged_attention_310p",
        "paged:decode",
        gates.INFERENCE_310P,
        supports.paged_310p,
        NZ,
        dtypes=frozenset({torch.float16}),
        block_sizes=gates.NZ_BLOCK_SIZES,
    ),
    _attention(
        "attention.prefill",
        "paged_prefill_310p",
        "paged:prefill",
        gates.INFERENCE_310P,
        supports.paged_prefill_310p,
        NZ,
        dtypes=frozenset({torch.float16}),
        block_sizes=gates.NZ_BLOCK_SIZES,
    ),
    _attention(
        "attention.write_kv",
        "reshape_and_cache_310p",
        "paged:write_kv_nz",
        gates.INFERENCE_310P,
        supports.write_kv_nz,
        NZ,
        dtypes=frozenset({torch.float16}),
        block_sizes=gates.NZ_BLOCK_SIZES,
    ),
    # norms and activation (every served SoC; bfloat16 only where the platform has it)
    _kernel("norm.rms_norm", "rms_norm", "elementwise:rms_norm", gates.ALL_SERVED, dtypes=FLOATS),
    _kernel("norm.add_rms_norm", "add_rms_norm", "elementwise:add_rms_norm", gates.ALL_SERVED, dtypes=FLOATS),
    _kernel("activation.silu_and_mul", "swiglu", "elementwise:silu_and_mul", gates.ALL_SERVED, dtypes=FLOATS),
    _kernel("activation.gelu_and_mul", "geglu", "elementwise:gelu_and_mul", gates.GEGLU_SOCS, dtypes=FLOATS),
    # rope: npu_mrope on A2/A3, npu_apply_rotary_pos_emb on the 310P
    _kernel(
        "rope.apply",
        "mrope",
        "elementwise:mrope",
        gates.A2_A3,
        dtypes=FLOATS,
        factory=True,
        supports=supports.mrope,
    ),
    _kernel(
        "rope.apply",
        "apply_rotary_pos_emb",
        "elementwise:apply_rotary",
        gates.INFERENCE_310P,
        dtypes=FLOATS,
        factory=True,
        supports=supports.apply_rotary,
    ),
    # MoE
    _kernel(
        "moe.topk",
        "gating_top_k_softmax",
        "moe:topk_softmax",
        gates.A2_A3,
        dtypes=FLOATS,
        supports=supports.topk_softmax,
    ),
    _kernel(
        "moe.topk",
        "gating_top_k_softmax_310p",
        "moe:topk_softmax_310p",
        gates.INFERENCE_310P,
        dtypes=frozenset({gates.TOPK_SOFTMAX_310P_DTYPE}),
        supports=supports.topk_softmax,
    ),
    _kernel(
        "moe.topk",
        "gating_top_k",
        "moe:gating_top_k",
        gates.A2_A3,
        dtypes=FLOATS,
        supports=supports.gating_top_k,
    ),
    _kernel(
        "moe.experts",
        "grouped_matmul_experts",
        "moe:experts",
        gates.A2_A3,
        dtypes=frozenset({gates.UNPERMUTE_DTYPE}),
        supports=supports.experts,
        prepare=f"{HERE}.moe:prepare",
    ),
    # dense GEMM on FRACTAL_NZ weights (prepared once)
    _kernel(
        "linear.gemm",
        "linear_nz",
        "linear:gemm",
        gates.ALL_SERVED,
        dtypes=FLOATS,
        prepare=f"{HERE}.linear:prepare",
    ),
    # fp8 checkpoints: dequantized at load when asked (ANYACCEL_ASCEND_FP8=dequantize), else a reason
    _kernel(
        "quant.fp8_gemm",
        "fp8_dequantized_gemm",
        "fp8:dequantized_gemm",
        gates.A2_A3,
        supports=supports.fp8_dequantized,
        prepare=f"{HERE}.fp8:prepare",
    ),
    # quantization: W8A8 dynamic, weight-only int8 and int4
    _kernel("quant.quantize_int8", "dynamic_quant", "quant:quantize_int8", gates.A2_A3, dtypes=HALF),
    _kernel(
        "quant.int8_gemm",
        "quant_matmul",
        "quant:int8_gemm",
        gates.A2_A3,
        supports=supports.int8_gemm,
        prepare=f"{HERE}.quant:prepare_int8",
    ),
    _kernel(
        "quant.w8a16_gemm",
        "weight_quant_batchmatmul_w8",
        "quant:w8a16_gemm",
        gates.A2_A3,
        dtypes=HALF,
        supports=supports.w8a16,
        prepare=f"{HERE}.quant:prepare_w8",
    ),
    _kernel(
        "quant.w4a16_gemm",
        "weight_quant_batchmatmul_w4",
        "quant:w4a16_gemm",
        gates.A2_A3,
        dtypes=HALF,
        supports=supports.w4a16,
        prepare=f"{HERE}.quant:prepare_w4",
    ),
    # no torch_npu call computes these contracts on A2/A3/310P: records that always decline, with the reason
    *(
        _kernel(
            op,
            f"{op.split('.')[1]}_unserved",
            f"unserved:{op.split('.')[1]}",
            gates.ALL_SERVED,
            supports=supports.unserved(op),
        )
        for op in gates.UNSERVED
    ),
]
