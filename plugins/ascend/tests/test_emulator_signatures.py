"""The emulated torch_npu functions take exactly torch_npu's registered signatures, so a kernel that passes
a wrong name, a keyword torch_npu does not have, or a keyword-only argument by position fails here as it
would on the device; and npu_geglu computes what its documentation says.

SCHEMAS lists each function's parameters as registered in Ascend/op-plugin @ 517f2e7
(op_plugin/config/op_plugin_functions.yaml; the ATB ops in op_plugin/ops/atb/PagedAttentionAtb.cpp and
ReshapeAndCachAtb.cpp): the positional ones in order, then the keyword-only ones.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from anyaccel_ascend.emulators import torch_npu as npu

import anyaccel

SCHEMAS: dict[str, tuple[str, str]] = {
    "_npu_paged_attention": (
        ("query key_cache value_cache num_kv_heads num_heads scale_value block_table context_lens out"),
        "workspace",
    ),
    "_npu_reshape_and_cache": (
        "key value key_cache value_cache slot_indices",
        "",
    ),
    "npu_add_rms_norm": (
        "x1 x2 gamma epsilon",
        "",
    ),
    "npu_apply_rotary_pos_emb": (
        "query key cos sin layout rotary_mode",
        "",
    ),
    "npu_convert_weight_to_int4pack": (
        "weight inner_k_tiles",
        "",
    ),
    "npu_dynamic_quant": (
        "input",
        "smooth_scales group_index dst_type quant_mode dst_type_max",
    ),
    "npu_fused_infer_attention_score": (
        "query key value",
        (
            "pse_shift atten_mask actual_seq_lengths actual_seq_lengths_kv dequant_scale1 quant_scale1 "
            "dequant_scale2 quant_scale2 quant_offset2 antiquant_scale antiquant_offset "
            "key_antiquant_scale key_antiquant_offset value_antiquant_scale value_antiquant_offset "
            "block_table query_padding_size kv_padding_size key_shared_prefix value_shared_prefix "
            "actual_shared_prefix_len query_rope key_rope key_rope_antiquant_scale num_heads scale "
            "pre_tokens next_tokens input_layout num_key_value_heads sparse_mode inner_precise "
            "block_size antiquant_mode key_antiquant_mode value_antiquant_mode softmax_lse_flag"
        ),
    ),
    "npu_fused_infer_attention_score_v2": (
        "query key value",
        (
            "query_rope key_rope pse_shift atten_mask actual_seq_qlen actual_seq_kvlen block_table "
            "dequant_scale_query dequant_scale_key dequant_offset_key dequant_scale_value "
            "dequant_offset_value dequant_scale_key_rope quant_scale_out quant_offset_out quant_scale_p "
            "learnable_sink num_query_heads num_key_value_heads softmax_scale pre_tokens next_tokens "
            "input_layout sparse_mode block_size query_quant_mode key_quant_mode value_quant_mode "
            "inner_precise return_softmax_lse query_dtype key_dtype value_dtype query_rope_dtype "
            "key_rope_dtype key_shared_prefix_dtype value_shared_prefix_dtype dequant_scale_query_dtype "
            "dequant_scale_key_dtype dequant_scale_value_dtype dequant_scale_key_rope_dtype out_dtype"
        ),
    ),
    "npu_geglu": (
        "self dim approximate activate_left",
        "",
    ),
    "npu_grouped_matmul": (
        "x weight",
        (
            "bias scale offset antiquant_scale antiquant_offset per_token_scale group_list "
            "activation_input activation_quant_scale activation_quant_offset split_item group_type "
            "group_list_type act_type tuning_config output_dtype x_dtype weight_dtype scale_dtype "
            "per_token_scale_dtype"
        ),
    ),
    "npu_moe_gating_top_k": (
        "x k",
        (
            "bias input_ids tid2eid k_group group_count group_select_mode renorm norm_type out_flag "
            "routed_scaling_factor eps"
        ),
    ),
    "npu_moe_gating_top_k_softmax": (
        "x finished k",
        "",
    ),
    "npu_moe_init_routing_v2": (
        "x expert_idx",
        (
            "scale offset active_num expert_capacity expert_num drop_pad_mode expert_tokens_num_type "
            "expert_tokens_num_flag quant_mode active_expert_range row_idx_type x_dtype"
        ),
    ),
    "npu_moe_token_unpermute": (
        "permuted_tokens sorted_indices probs padded_mode restore_shape",
        "",
    ),
    "npu_mrope": (
        "positions query key cos_sin_cache head_size",
        "mrope_section rotary_mode cache_mode",
    ),
    "npu_quant_matmul": (
        "x1 x2 scale",
        (
            "offset pertoken_scale bias output_dtype x1_dtype x2_dtype pertoken_scale_dtype scale_dtype "
            "group_sizes y_scale"
        ),
    ),
    "npu_rms_norm": (
        "self gamma epsilon",
        "",
    ),
    "npu_scatter_pa_kv_cache": (
        "key value key_cache value_cache slot_mapping",
        "compress_lens compress_seq_offsets seq_lens cache_mode",
    ),
    "npu_swiglu": (
        "self dim",
        "",
    ),
    "npu_weight_quant_batchmatmul": (
        (
            "x weight antiquant_scale antiquant_offset quant_scale quant_offset bias "
            "antiquant_group_size inner_precise weight_dtype"
        ),
        "",
    ),
}


def _split(fn) -> tuple[list[str], set[str]]:
    params = inspect.signature(fn).parameters.values()
    positional = [p.name for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    return positional, {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_emulated_signature_is_the_registered_one(name):
    positional, keyword_only = SCHEMAS[name]
    assert _split(getattr(npu, name)) == (positional.split(), set(keyword_only.split()))


def test_every_emulated_function_has_its_schema_listed():
    functions = {n for n in npu.__all__ if n.startswith(("npu_", "_npu_"))} - {"npu_format_cast"}
    assert functions == set(SCHEMAS)


def test_unknown_keyword_fails_as_on_the_device():
    x = torch.randn(2, 8)
    with pytest.raises(TypeError):
        npu.npu_geglu(x, dim=-1, approximate=0, activate_right=True)
    with pytest.raises(TypeError):  # keyword-only on the device
        npu.npu_moe_gating_top_k(torch.randn(2, 8), 2, torch.zeros(8))


@pytest.mark.parametrize("approximate", [0, 1])
@pytest.mark.parametrize("activate_left", [True, False])
def test_geglu_gates_the_documented_half(approximate, activate_left):
    x = torch.randn(3, 2, 64, dtype=torch.float64).float()
    out, gelu = npu.npu_geglu(x, dim=-1, approximate=approximate, activate_left=activate_left)
    a, b = x.double().chunk(2, dim=-1)
    gated, other = (a, b) if activate_left else (b, a)
    want_gelu = torch.nn.functional.gelu(gated, approximate=("none", "tanh")[approximate])
    torch.testing.assert_close(gelu.double(), want_gelu, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out.double(), want_gelu * other, rtol=1e-6, atol=1e-6)
    assert out.shape == gelu.shape == (3, 2, 32)


def test_geglu_defaults_gate_the_second_half_with_tanh():
    x = torch.randn(4, 16)
    a, b = x.chunk(2, dim=-1)
    torch.testing.assert_close(npu.npu_geglu(x)[0], a * torch.nn.functional.gelu(b, approximate="tanh"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((torch.randn(2, 7),), "cannot be halved"),
        ((torch.randn(2, 8), 2), "out of range"),
        ((torch.randn(2, 8), -1, 2), "approximate 2"),
        ((torch.randn(2, 8).to(torch.int32),), "dtype"),
        ((torch.randn(()),), "1-8 dims"),
    ],
)
def test_geglu_refuses_what_its_documentation_rules_out(args, message):
    with pytest.raises(npu.NpuError, match=message):
        npu.npu_geglu(*args)


def test_geglu_has_no_bfloat16_on_the_310p(monkeypatch):
    monkeypatch.setenv("ANYACCEL_EMULATE", "npu:ascend310p")
    anyaccel.reset()
    try:
        with pytest.raises(npu.NpuError, match="bfloat16"):
            npu.npu_geglu(torch.randn(2, 8, dtype=torch.bfloat16), activate_left=True)
        assert npu.npu_geglu(torch.randn(2, 8, dtype=torch.float16), activate_left=True)[0].shape == (2, 4)
    finally:
        anyaccel.reset()
