"""The conformance kit against every kernel of the plugin through the torch_npu emulator: one item per
(kernel, case). Atlas A2 runs everything, the 310P everything it has, Atlas A3 (the same kernels as A2) its
decode; `anyaccel check --emulate npu:<soc> --plugin anyaccel-ascend` covers the rest.

Cases a kernel rejects at bind time (float32 attention, fp8 caches, 16-token pages, other layouts) are
skipped with the rejection reason, as the kit does for every plugin.
"""

from __future__ import annotations

import pytest

CONFORMANCE = pytest.mark.anyaccel_conformance


@CONFORMANCE(plugin="anyaccel-ascend", emulate="npu:ascend910b")
def test_ascend910b(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(plugin="anyaccel-ascend", op="attention.decode", emulate="npu:ascend910_93")
def test_ascend910_93_decode(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(plugin="anyaccel-ascend", emulate="npu:ascend310p")
def test_ascend310p(anyaccel_case):
    anyaccel_case.assert_passes()
