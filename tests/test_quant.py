"""quant.*: the torch reference against the conformance kit, packing formats, fp8 saturation, fnuz."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from anyaccel.providers.reference import quant as ref
from anyaccel.schemes import packing
from anyaccel.schemes.fp8 import to_fnuz

OPS = ("quant.quantize_fp8", "quant.quantize_int8", "quant.fp8_gemm", "quant.int8_gemm", "quant.w4a16_gemm")


@pytest.mark.parametrize("op", OPS)
def test_every_op_has_cases(op):
    from anyaccel.conformance.cases import cases_for

    assert cases_for(op)


@pytest.mark.anyaccel_conformance(provider="reference", op="quant.quantize_fp8")
def test_quantize_fp8_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="reference", op="quant.quantize_int8")
def test_quantize_int8_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="reference", op="quant.fp8_gemm")
def test_fp8_gemm_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="reference", op="quant.int8_gemm")
def test_int8_gemm_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="reference", op="quant.w4a16_gemm")
def test_w4a16_gemm_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


def test_row_packing_is_low_nibble_first():
    assert packing.pack_rows(torch.arange(8)).tolist() == [0x76543210]
    assert packing.pack_rows(torch.full((8,), 15)).tolist() == [-1]  # every bit set, as int32


def test_awq_interleave_order():
    # AutoAWQ packs logical columns [0, 2, 4, 6, 1, 3, 5, 7] into nibbles 0..7
    word = packing.pack_rows(packing.awq_interleave(torch.arange(8)))
    assert word.tolist() == [0x75316420]
    assert packing.awq_deinterleave(packing.awq_interleave(torch.arange(16))).tolist() == list(range(16))


@settings(max_examples=25, deadline=None)
@given(n8=st.integers(1, 6), k8=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_gptq_and_awq_round_trip(n8, k8, seed):
    g = torch.Generator().manual_seed(seed)
    n, k = 8 * n8, 8 * k8
    q = torch.randint(0, 16, (n, k), generator=g, dtype=torch.int32)
    zeros = torch.randint(1, 16, (1, n), generator=g, dtype=torch.int32)
    qweight, qzeros = packing.gptq_pack(q, zeros)
    assert qweight.shape == (k // 8, n) and qzeros.shape == (1, n // 8)
    back_q, back_z = packing.gptq_unpack(qweight, qzeros)
    assert torch.equal(back_q, q) and torch.equal(back_z, zeros)
    qweight, qzeros = packing.awq_pack(q, zeros)
    assert qweight.shape == (k, n // 8)
    back_q, back_z = packing.awq_unpack(qweight, qzeros)
    assert torch.equal(back_q, q) and torch.equal(back_z, zeros)


def test_gptq_v1_cannot_store_zero_point_zero():
    with pytest.raises(ValueError, match="zero - 1"):
        packing.gptq_pack(torch.zeros(8, 8, dtype=torch.int32), torch.zeros(1, 8, dtype=torch.int32))


def test_w4_dequant_uses_v1_plus_one_and_symmetric_eight():
    q = torch.full((8, 8), 9, dtype=torch.int32)
    qweight, qzeros = packing.gptq_pack(q, torch.full((1, 8), 4, dtype=torch.int32))
    scales = torch.full((1, 8), 0.5)
    assert torch.equal(ref.dequantize_w4(qweight, scales, qzeros, None, 8), torch.full((8, 8), 2.5))
    assert torch.equal(ref.dequantize_w4(qweight, scales, None, None, 8), torch.full((8, 8), 0.5))


@pytest.mark.parametrize("fp8, top", [(torch.float8_e4m3fn, 448.0), (torch.float8_e4m3fnuz, 240.0)])
def test_fp8_saturates_instead_of_nan(fp8, top):
    x = torch.tensor([[1e6, -1e6, 100.0, 0.0]])
    q, scale = ref.quantize_fp8(x, fp8, "tensor", torch.tensor([0.5]))
    assert q.float().tolist() == [[top, -top, 192.0, 0.0]]  # 200 ties 192 and 208: nearest even
    assert scale.tolist() == [0.5]


def test_fnuz_conversion_keeps_every_value():
    bits = torch.arange(-128, 128, dtype=torch.int8)
    fn = bits.view(torch.float8_e4m3fn)
    fnuz, scale = to_fnuz(fn, torch.tensor(0.75))
    assert scale.item() == 1.5
    finite = ~fn.float().isnan()
    assert torch.equal(fnuz.float()[finite] * scale, fn.float()[finite] * 0.75)
    assert fnuz.view(torch.int8)[0].item() == 0  # 0x80 (-0 in e4m3fn, NaN in fnuz) became +0
