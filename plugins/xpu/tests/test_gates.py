"""The gate tables that decide selection, against the facts gates.py cites: the architectures
vllm-xpu-kernels gates on and builds for, and the page sizes its flash attention takes (the supports
predicate and the emulator agree on every size the contract allows)."""

from __future__ import annotations

import pytest
import torch
from anyaccel_xpu import gates
from anyaccel_xpu.kernels import supports

from anyaccel.ops.attention import AttentionSpec
from anyaccel.platforms.xpu import describe, parse_capability


def _names(caps) -> set[str]:
    return {c.name for c in caps}


def test_architecture_tables():
    assert _names(gates.PREBUILT) == {"pvc", "bmg"}  # CMakeLists AOT devices
    assert _names(gates.XE2_XE3) == {"pvc", "bmg", "lnl", "ptl"}  # is_xe2_arch / is_xe3_arch
    assert gates.PREBUILT < gates.XE2_XE3 < gates.TORCH_XPU
    assert "dg2" not in _names(gates.XE2_XE3)


@pytest.mark.parametrize("block", [8, 16, 32, 64, 128, 256])
def test_page_sizes_agree_with_the_library(block):
    bmg = describe(parse_capability("bmg"), device_name="Intel(R) Arc(TM) B580 Graphics")
    spec = AttentionSpec(dtype=torch.bfloat16, num_q_heads=8, num_kv_heads=2, head_dim=128, block_size=block)
    library_takes = block in (16, 32) or block % 64 == 0  # paged_decode_utils.hpp dispatch_by_page_size
    assert (supports.flash_attention(spec, bmg) is None) == library_takes
