"""Every kernel record of anyaccel-cuda: data only (targets are imported when selected).

Ranking among this plugin's kernels (higher wins; Triton and the reference always come after):
    attention: trtllm-gen 30 > FA4 prefill 25 > FlashInfer paged wrappers 20 > FA4 decode 15 > torch varlen 5
    moe.experts: FlashInfer trtllm-gen fp8 block 30 > FlashInfer CUTLASS 20 > torch._grouped_mm 10
    quant.fp8_gemm: DeepGEMM 30 > FlashInfer groupwise 25 > torch._scaled_mm 20
    quant.mx_gemm: FlashInfer mm_fp4 (nvfp4), mm_mxfp8 (mxfp8), the mxfp8 x mxfp4 group GEMM, 30 each;
    quant.quantize_mx: fp4_quantize 30
Where a library is gated by capability, the set comes from gates.py (with its source); hardware needs are
`features` from platforms/cuda.py. Nothing here has run on a GPU yet: every record says verified="emulator".
"""

from __future__ import annotations

import torch

from anyaccel.registry import Kernel

from .. import gates
from . import supports as s

CUDA = frozenset({"cuda"})
HALF = frozenset({torch.float16, torch.bfloat16})
BF16 = frozenset({torch.bfloat16})
FI, FA4, DG = ("flashinfer-python",), ("flash-attn-4",), ("deep-gemm",)
A = "anyaccel_cuda."


def _k(op: str, name: str, target: str, **kw) -> Kernel:
    return Kernel(op, name, A + target, CUDA, verified="emulator", **kw)


def _attention() -> list[Kernel]:
    out = [
        # FlashInfer trtllm-gen (sm_100 family), HND cache
        _k(
            "attention.decode",
            "flashinfer.trtllm_decode",
            "attention.trtllm:decode",
            factory=True,
            capability=gates.FLASHINFER_TRTLLM_ATTENTION,
            features=frozenset({"tcgen05"}),
            requires=FI,
            dtypes=HALF,
            supports=s.trtllm,
            kv_layout="HND",
            kv_block_sizes=frozenset({16, 32, 64}),
            priority=30,
        ),
        _k(
            "attention.prefill",
            "flashinfer.trtllm_prefill",
            "attention.trtllm:prefill",
            factory=True,
            capability=gates.FLASHINFER_TRTLLM_ATTENTION,
            features=frozenset({"tcgen05"}),
            requires=FI,
            dtypes=HALF,
            supports=s.trtllm,
            kv_layout="HND",
            kv_block_sizes=frozenset({16, 32, 64}),
            priority=30,
        ),
        # FlashAttention-4: NHD cache (its paged layout)
        _k(
            "attention.prefill",
            "fa4.prefill",
            "attention.fa4:prefill",
            factory=True,
            capability=gates.FA4,
            requires=FA4,
            dtypes=HALF,
            supports=s.fa4_prefill,
            kv_layout="NHD",
            priority=25,
        ),
        _k(
            "attention.decode",
            "fa4.decode",
            "attention.fa4:decode",
            factory=True,
            capability=gates.FA4,
            requires=FA4,
            dtypes=HALF,
            supports=s.fa4_decode,
            kv_layout="NHD",
            priority=15,
        ),
        # torch's own varlen attention (FlashAttention-2 inside torch): prefill without a prefix
        _k(
            "attention.prefill",
            "torchcuda.varlen_prefill",
            "attention.torch_varlen:prefill",
            factory=True,
            capability=gates.TORCH_VARLEN,
            dtypes=HALF,
            supports=s.torch_varlen,
            priority=5,
        ),
    ]
    # FlashInfer's paged wrappers and KV append read either layout: one record per layout
    for layout, suffix in (("NHD", ""), ("HND", "_hnd")):
        out += [
            _k(
                "attention.decode",
                f"flashinfer.decode{suffix}",
                "attention.flashinfer_paged:decode",
                factory=True,
                capability=gates.FLASHINFER_PAGED,
                requires=FI,
                dtypes=HALF,
                supports=s.flashinfer_paged,
                kv_layout=layout,
                priority=20,
            ),
            _k(
                "attention.prefill",
                f"flashinfer.prefill{suffix}",
                "attention.flashinfer_paged:prefill",
                factory=True,
                capability=gates.FLASHINFER_PAGED,
                requires=FI,
                dtypes=HALF,
                supports=s.flashinfer_paged,
                kv_layout=layout,
                priority=20,
            ),
            _k(
                "attention.write_kv",
                f"flashinfer.write_kv{suffix}",
                "kv_write:write_kv",
                factory=True,
                capability=gates.FLASHINFER_PAGED,
                requires=FI,
                dtypes=HALF,
                supports=s.flashinfer_write_kv,
                kv_layout=layout,
                priority=20,
            ),
        ]
    return out


def _elementwise() -> list[Kernel]:
    common = {"capability": gates.FLASHINFER_ELEMENTWISE, "requires": FI, "dtypes": HALF, "priority": 20}
    return [
        _k("norm.rms_norm", "flashinfer.rms_norm", "elementwise:rms_norm", **common),
        _k("norm.add_rms_norm", "flashinfer.add_rms_norm", "elementwise:add_rms_norm", **common),
        _k("rope.apply", "flashinfer.rope", "elementwise:rope", supports=s.rope_cache, **common),
        _k("activation.silu_and_mul", "flashinfer.silu_and_mul", "elementwise:silu_and_mul", **common),
        _k("activation.gelu_and_mul", "flashinfer.gelu_and_mul", "elementwise:gelu_and_mul", **common),
    ]


def _moe() -> list[Kernel]:
    return [
        _k(
            "moe.topk",
            "flashinfer.topk_deepseek",
            "moe_flashinfer:topk",
            factory=True,
            capability=gates.FLASHINFER_DSV3_ROUTING,
            requires=FI,
            supports=s.deepseek_routing,
            priority=20,
        ),
        _k(
            "moe.experts",
            "flashinfer.cutlass_moe",
            "moe_flashinfer:experts",
            factory=True,
            capability=gates.FLASHINFER_CUTLASS_MOE,
            requires=FI,
            dtypes=HALF,
            supports=s.cutlass_moe,
            prepare=A + "moe_flashinfer:prepare",
            priority=20,
        ),
        # trtllm-gen fused MoE: gen_trtllm_gen_fused_moe_sm100_module, the sm_100 family
        _k(
            "moe.experts",
            "flashinfer.trtllm_fp8_block_moe",
            "moe_trtllm:experts",
            factory=True,
            capability=gates.FLASHINFER_TRTLLM_ATTENTION,
            features=frozenset({"tcgen05"}),
            requires=FI,
            dtypes=BF16,
            supports=s.trtllm_fp8_block_moe,
            prepare=A + "moe_trtllm:prepare",
            priority=30,
        ),
        _k(
            "moe.experts",
            "torchcuda.grouped_mm",
            "moe_torch:experts",
            factory=True,
            capability=gates.TORCH_GROUPED_MM,
            dtypes=BF16,
            supports=s.grouped_mm_shapes,
            priority=10,
        ),
    ]


def _gemm() -> list[Kernel]:
    return [
        _k(
            "quant.fp8_gemm",
            "deepgemm.fp8_gemm",
            "gemm_deepgemm:fp8_gemm",
            factory=True,
            capability=gates.DEEPGEMM,
            features=frozenset({"tma"}),
            requires=DG,
            supports=s.deepgemm,
            priority=30,
        ),
        _k(
            "quant.fp8_gemm",
            "flashinfer.fp8_gemm_groupwise",
            "gemm_flashinfer:fp8_gemm",
            factory=True,
            capability=gates.FLASHINFER_FP8_GROUPWISE,
            requires=FI,
            supports=s.flashinfer_groupwise,
            prepare=A + "gemm_flashinfer:prepare",
            priority=25,
        ),
        _k(
            "quant.fp8_gemm",
            "torchcuda.scaled_mm",
            "gemm_torch:fp8_gemm",
            factory=True,
            features=frozenset({"fp8_mma"}),
            supports=s.scaled_mm,
            prepare=A + "gemm_torch:prepare_scaled",
            priority=20,
        ),
        _k(
            "quant.int8_gemm",
            "torchcuda.int_mm",
            "gemm_torch:int8_gemm",
            factory=True,
            features=frozenset({"mma_sync"}),
            supports=s.int_mm,
            priority=20,
        ),
    ]


def _microscaling() -> list[Kernel]:
    return [
        _k(
            "quant.mx_gemm",
            "flashinfer.mm_fp4",
            "gemm_mx:mx_gemm",
            factory=True,
            capability=gates.FLASHINFER_MM_FP4_CUTLASS,
            features=frozenset({"fp4_block_scaled_mma"}),
            requires=FI,
            dtypes=HALF,
            supports=s.all_of(s.flashinfer_mx_gemm, _only("nvfp4")),
            prepare=A + "gemm_mx:prepare",
            priority=30,
        ),
        _k(
            "quant.mx_gemm",
            "flashinfer.mm_mxfp8",
            "gemm_mx:mx_gemm",
            factory=True,
            capability=gates.FLASHINFER_MM_MXFP8_CUTLASS,
            features=frozenset({"mxfp8_mma"}),
            requires=FI,
            dtypes=HALF,
            supports=s.all_of(s.flashinfer_mx_gemm, _only("mxfp8")),
            prepare=A + "gemm_mx:prepare",
            priority=30,
        ),
        _k(
            "quant.mx_gemm",
            "flashinfer.group_gemm_mxfp8_mxfp4",
            "gemm_mx:mx_gemm",
            factory=True,
            capability=gates.FLASHINFER_GROUP_GEMM_MXFP8_MXFP4,
            features=frozenset({"mxfp8_mma", "fp4_block_scaled_mma"}),
            requires=FI,
            dtypes=HALF,
            supports=s.all_of(s.flashinfer_mx_gemm, _only("mxfp4")),
            prepare=A + "gemm_mx:prepare",
            priority=30,
        ),
        _k(
            "quant.quantize_mx",
            "flashinfer.fp4_quantize",
            "gemm_mx:quantize_mx",
            factory=True,
            capability=gates.FLASHINFER_FP4_QUANTIZE,
            requires=FI,
            dtypes=HALF,
            supports=s.flashinfer_fp4_quantize,
            priority=30,
        ),
    ]


def _only(weight_format: str) -> s.Predicate:
    def check(spec, platform) -> str | None:
        if spec.weight_format != weight_format:
            return f"weights {spec.weight_format!r}: this record serves {weight_format} weights"
        return None

    return check


def _comm() -> list[Kernel]:
    return [
        _k(
            "comm.all_reduce",
            "torchcuda.symm_all_reduce",
            "comm_symm:all_reduce",
            factory=True,
            capability=gates.SYMM_MEM,
            dtypes=frozenset({torch.float32, torch.bfloat16}),
            supports=s.symm_mem_all_reduce,
            priority=20,
        ),
    ]


KERNELS: tuple[Kernel, ...] = (
    *_attention(),
    *_elementwise(),
    *_moe(),
    *_gemm(),
    *_microscaling(),
    *_comm(),
)
