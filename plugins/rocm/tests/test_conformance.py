"""Every aiter kernel against the kit's float64 oracles, through the AITER emulator: all of them on gfx942
(fp8 = e4m3fnuz), and the fp8 GEMMs on gfx950 (fp8 = e4m3fn; its KV caches and experts are in
test_extra_cases.py). `anyaccel check --emulate rocm:gfx950 --provider aiter` runs the whole grid there."""

from __future__ import annotations

import pytest


@pytest.mark.anyaccel_conformance(provider="aiter", emulate="rocm:gfx942")
def test_conformance_gfx942(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="aiter", op="quant.fp8_gemm", emulate="rocm:gfx950")
def test_fp8_gemm_gfx950(anyaccel_case):
    anyaccel_case.assert_passes()
