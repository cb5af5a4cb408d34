"""An emulator of torch_npu's operator API in plain torch, installed as `torch_npu` on an emulated npu
platform (ANYACCEL_EMULATE=npu:<soc>) and never otherwise.

It implements the functions anyaccel-ascend's kernels call, with torch_npu's signatures (the registered
schemas: Ascend/op-plugin @ 517f2e7 op_plugin/config/op_plugin_functions.yaml, and op_plugin/ops/atb/
PagedAttentionAtb.cpp / ReshapeAndCachAtb.cpp for the ATB ops; the same in the torch_npu 2.14 wheel's
meta registrations), the semantics their documentation gives (the wheel's _op_plugin_docs.py, op-plugin's
and CANN's operator docs), return tuples and argument limits: an unsupported layout, dtype, block size or
head dim raises NpuError (a RuntimeError) as torch_npu does, and a documented feature the emulator does not
implement raises NotEmulated rather than computing something else. The SoC-specific limits (no bfloat16
and NZ caches on the 310P, functions absent there) follow the emulated platform's SoC.

This proves anyaccel-ascend's glue (argument mapping, layouts, weight preparation, gates) against the
conformance kit's oracles; it says nothing about the NPU kernels' own numerics or speed.
"""

from __future__ import annotations

from ._cache import _npu_reshape_and_cache, npu_scatter_pa_kv_cache
from ._checks import NotEmulated, NpuError
from ._elementwise import npu_add_rms_norm, npu_apply_rotary_pos_emb, npu_mrope, npu_rms_norm, npu_swiglu
from ._fia import npu_fused_infer_attention_score, npu_fused_infer_attention_score_v2
from ._format import get_npu_format, npu_format_cast
from ._geglu import npu_geglu
from ._moe import (
    npu_grouped_matmul,
    npu_moe_gating_top_k,
    npu_moe_gating_top_k_softmax,
    npu_moe_init_routing_v2,
    npu_moe_token_unpermute,
)
from ._paged import _npu_paged_attention
from ._quant import (
    npu_convert_weight_to_int4pack,
    npu_dynamic_quant,
    npu_quant_matmul,
    npu_weight_quant_batchmatmul,
)

__version__ = "2.14.0+anyaccel.emulated"

__all__ = [
    "NotEmulated",
    "NpuError",
    "_npu_paged_attention",
    "_npu_reshape_and_cache",
    "get_npu_format",
    "npu_add_rms_norm",
    "npu_apply_rotary_pos_emb",
    "npu_convert_weight_to_int4pack",
    "npu_dynamic_quant",
    "npu_format_cast",
    "npu_fused_infer_attention_score",
    "npu_fused_infer_attention_score_v2",
    "npu_geglu",
    "npu_grouped_matmul",
    "npu_moe_gating_top_k",
    "npu_moe_gating_top_k_softmax",
    "npu_moe_init_routing_v2",
    "npu_moe_token_unpermute",
    "npu_mrope",
    "npu_quant_matmul",
    "npu_rms_norm",
    "npu_scatter_pa_kv_cache",
    "npu_swiglu",
    "npu_weight_quant_batchmatmul",
]
