"""Microscaling formats (anyaccel.ops.microscaling, anyaccel.ops.mx_swizzle) and the quant.quantize_mx /
quant.mx_gemm contracts: encodings checked against the OCP MX v1.0 and NVFP4 definitions, spec and argument
validation, the reference through the kit, and the kit failing kernels that get the layout wrong."""

from __future__ import annotations

import pytest
import torch

from anyaccel.conformance.cases import cases_for
from anyaccel.ops.base import ContractError
from anyaccel.ops.microscaling import (
    FORMATS,
    MXFP4,
    MXFP8,
    NVFP4,
    dequantize,
    e2m1_decode,
    e2m1_encode,
    e8m0_decode,
    pack_e2m1,
    quantize,
    unpack_e2m1,
)
from anyaccel.ops.mx import MX_GEMM, QUANTIZE_MX, MXGemmSpec, MXQuantSpec
from anyaccel.ops.mx_swizzle import swizzle_128x4, unswizzle_128x4
from anyaccel.providers.reference import mx as ref

E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]


@pytest.mark.anyaccel_conformance(provider="reference", op="quant.quantize_mx")
def test_quantize_mx_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="reference", op="quant.mx_gemm")
def test_mx_gemm_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


def test_e2m1_codes_are_the_ocp_values():
    codes = torch.arange(16, dtype=torch.uint8)
    values = e2m1_decode(pack_e2m1(codes))
    assert values.tolist() == E2M1 + [-v for v in E2M1]


def test_element_2i_is_the_low_nibble():
    assert pack_e2m1(torch.tensor([1, 2, 3, 4])).tolist() == [0x21, 0x43]
    assert unpack_e2m1(torch.tensor([0x21], dtype=torch.uint8)).tolist() == [1, 2]


@pytest.mark.parametrize(
    ("x", "want"),
    [
        (0.25, 0.0),  # ties go to the even code: 0 (code 0) against 0.5 (code 1)
        (0.75, 1.0),
        (1.25, 1.0),
        (1.75, 2.0),
        (2.5, 2.0),
        (3.5, 4.0),
        (5.0, 4.0),
        (5.1, 6.0),
        (1e9, 6.0),  # saturation
        (-2.6, -3.0),
    ],
)
def test_e2m1_rounds_to_nearest_even_and_saturates(x, want):
    assert e2m1_decode(pack_e2m1(e2m1_encode(torch.tensor([x, 0.0])))).tolist()[0] == want


def test_e8m0_is_a_biased_power_of_two_with_255_nan():
    values = e8m0_decode(torch.tensor([127, 128, 0, 254, 255], dtype=torch.uint8))
    assert values[[0, 1, 3]].tolist() == [1.0, 2.0, 2.0**127]
    # 2^-127 is a float32 subnormal: 0 where the process flushes subnormals (torch.set_flush_denormal)
    assert values[2].item() in (2.0**-127, 0.0)
    assert values[4].isnan()


def test_mx_scale_is_ocp_floor_log2_amax_minus_emax():
    x = torch.zeros(1, 32)
    x[0, 0] = 100.0  # floor(log2(100)) = 6
    _, s4 = quantize(MXFP4, x)
    _, s8 = quantize(MXFP8, x)
    assert s4.item() == 127 + 6 - 2 and s8.item() == 127 + 6 - 8
    q, s = quantize(MXFP4, x)
    assert dequantize(MXFP4, q, s)[0, 0].item() == 96.0  # 100 / 16 = 6.25 saturates to 6
    assert quantize(MXFP8, torch.zeros(2, 64))[1].tolist() == [[0, 0], [0, 0]]  # zero blocks: 2^-127


def test_nvfp4_scale_is_e4m3_of_amax_over_six_globals_and_round_trips():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 64, generator=g)
    glob = (x.abs().amax() / (6 * 448)).reshape(1)
    q, s = quantize(NVFP4, x, glob)
    assert s.dtype == torch.float8_e4m3fn and s.shape == (5, 4) and q.shape == (5, 32)
    amax = x.reshape(5, 4, 16).abs().amax(-1)
    assert torch.equal(s.float(), (amax / (6 * glob)).to(torch.float8_e4m3fn).float())
    real = dequantize(NVFP4, q, s, glob)
    step = (s.float() * glob).repeat_interleave(16, 1)  # e2m1 spacing is at most 2 x the scale
    assert ((real - x).abs() <= step + 1e-7).all()


def test_swizzle_places_each_scale_at_its_128x4_offset():
    s = torch.randint(0, 255, (200, 9), dtype=torch.uint8)
    out = swizzle_128x4(s)
    assert out.shape == (256, 12)
    flat = out.flatten()
    for r, c in ((0, 0), (31, 3), (32, 0), (127, 8), (128, 4), (199, 5)):
        tile = (r // 128) * 3 + c // 4
        i, j = (r % 128) // 32, r % 32
        assert flat[tile * 512 + 16 * j + 4 * i + c % 4] == s[r, c]
    assert torch.equal(unswizzle_128x4(out, 200, 9), s)
    e4m3 = torch.rand(2, 130, 5).to(torch.float8_e4m3fn)
    assert torch.equal(unswizzle_128x4(swizzle_128x4(e4m3), 130, 5).float(), e4m3.float())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (MXQuantSpec(torch.float32, "mxfp8", 48), "multiple of 32"),
        (MXQuantSpec(torch.float32, "nvfp4", 40), "multiple of 16"),
        (MXQuantSpec(torch.float32, "fp4", 64), "format must be one of"),
    ],
)
def test_quantize_spec_is_rejected_with_the_reason(spec, message):
    with pytest.raises(ContractError, match=f"quant.quantize_mx: .*{message}"):
        QUANTIZE_MX.check_spec(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (MXGemmSpec(torch.bfloat16, "mxfp4", "nvfp4", 64, 64), "is not one of"),
        (MXGemmSpec(torch.bfloat16, "nvfp4", "mxfp8", 64, 64), "is not one of"),
        (MXGemmSpec(torch.bfloat16, "mxfp4", "none", 64, 80), "multiple of 32"),
        (MXGemmSpec(torch.int8, "mxfp4", "none", 64, 64), "dtype must be"),
    ],
)
def test_gemm_spec_is_rejected_with_the_reason(spec, message):
    with pytest.raises(ContractError, match=f"quant.mx_gemm: .*{message}"):
        MX_GEMM.check_spec(spec)


def test_gemm_arguments_are_checked():
    spec = MXGemmSpec(torch.float32, "nvfp4", "none", 8, 32)
    a = torch.randn(3, 32)
    w = torch.zeros(8, 16, dtype=torch.uint8)
    scale = torch.ones(8, 2).to(torch.float8_e4m3fn)
    MX_GEMM.check_args(spec, a, w, scale, torch.float32, None, torch.ones(1))
    with pytest.raises(ContractError, match="w_global_scale is required for nvfp4"):
        MX_GEMM.check_args(spec, a, w, scale, torch.float32)
    with pytest.raises(ContractError, match=r"w_scale must have shape \[8, 2\]"):
        MX_GEMM.check_args(spec, a, w, scale[:, :1], torch.float32, None, torch.ones(1))


def _kit_fails(op: str, kernel) -> bool:
    """Whether some case of `op` fails with `kernel` in place of the reference."""
    for case in cases_for(op)[:12]:
        args, kwargs = case.make(case.seed)
        got = kernel(*args, **kwargs)
        got = got if isinstance(got, tuple) else (got,)
        want = case.oracle(*args, **kwargs)
        want = want if isinstance(want, tuple) else (want,)
        names = ["out"] if len(got) == 1 else [f"out{i}" for i in range(len(got))]
        result = case.compare_outputs(dict(zip(names, got, strict=True)), dict(zip(names, want, strict=True)))
        if not all(c.ok for c in result.values()):
            return True
    return False


def _swap_nibbles(t: torch.Tensor) -> torch.Tensor:
    return (t << 4) | (t >> 4) if t.dtype == torch.uint8 else t


def test_the_kit_catches_a_swapped_nibble_order():
    def swapped_quantize(x, fmt, global_scale=None):
        q, s = ref.quantize_mx(x, fmt, global_scale)
        return _swap_nibbles(q), s

    def swapped_gemm(a, w, w_scale, *args, **kwargs):
        return ref.mx_gemm(a, _swap_nibbles(w), w_scale, *args, **kwargs)

    assert _kit_fails("quant.quantize_mx", swapped_quantize)
    assert _kit_fails("quant.mx_gemm", swapped_gemm)
    assert not _kit_fails("quant.mx_gemm", ref.mx_gemm)


def test_the_kit_catches_a_rounded_up_scale():
    def ceil_scales(x, fmt, global_scale=None):
        if FORMATS[fmt].has_global:
            return ref.quantize_mx(x, fmt, global_scale)
        q, s = ref.quantize_mx(x * 0.5, fmt)  # the next exponent up: elements half as large
        return q, s + 1

    assert _kit_fails("quant.quantize_mx", ceil_scales)


@pytest.mark.parametrize("op", ["quant.quantize_mx", "quant.mx_gemm", "moe.experts"])
def test_every_case_passes_the_argument_checks(op):
    """What ANYACCEL_VALIDATE=1 checks on each call accepts every case of the kit (block-scaled ones too)."""
    from anyaccel import context

    opdef = context.get().op(op)
    for case in cases_for(op):
        if case.large:
            continue
        args, kwargs = case.make(case.seed)
        opdef.check_args(case.spec, *args, **kwargs)
