"""The conformance kit against every CPU kernel (one test item per kernel and case)."""

from __future__ import annotations

import pytest


@pytest.mark.anyaccel_conformance(provider="cpu")
def test_cpu_kernel_conforms(anyaccel_case):
    anyaccel_case.assert_passes()
