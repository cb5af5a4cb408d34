"""cpu.native_silu_and_mul on the layouts models hand it: rows of a wider projection, N-d, transposed."""

from __future__ import annotations

import pytest
import torch
from anyaccel_cpu.kernels.activation import native_silu_and_mul

from anyaccel.ops.base import ContractError
from anyaccel.providers.reference.activation import silu_and_mul


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.randn(3, 10) * 5,
        lambda: torch.randn(2, 5, 18),
        lambda: torch.randn(4, 30)[:, 4:24],  # strided rows
        lambda: torch.randn(20, 4).t(),  # last dim not contiguous
        lambda: torch.randn(0, 8),
    ],
)
def test_matches_the_reference(make):
    x = make()
    torch.testing.assert_close(native_silu_and_mul(x), silu_and_mul(x), rtol=1e-6, atol=1e-6)


def test_rejects_other_dtypes_and_odd_widths():
    with pytest.raises(ContractError, match="x must be torch.float32"):
        native_silu_and_mul(torch.randn(2, 8, dtype=torch.float64))
    with pytest.raises(ContractError, match="last dim must be even"):
        native_silu_and_mul(torch.randn(2, 7))
