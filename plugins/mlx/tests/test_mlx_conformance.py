"""The conformance kit against every MLX kernel, on MLX's CPU build (one test item per kernel and case)."""

from __future__ import annotations

import pytest


@pytest.mark.anyaccel_conformance(provider="mlx")
def test_mlx_kernel_conforms(anyaccel_case):
    anyaccel_case.assert_passes()
