"""MLX's block-scaled modes read the contract's layouts (anyaccel.ops.microscaling) as they are: what
mx.quantize writes, decoded by the contract's decoder from its bytes, is what mx.dequantize returns (nvfp4
compared without its global: quantized_matmul takes none, the kernel multiplies the contract's global in)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anyaccel.ops.microscaling import FORMATS, dequantize

mx = pytest.importorskip("mlx.core")


@pytest.mark.parametrize("mode", ["mxfp8", "mxfp4", "nvfp4"])
def test_mlx_packing_and_scales_are_the_contracts(mode):
    fmt = FORMATS[mode]
    w = torch.randn(16, 128, generator=torch.Generator().manual_seed(0)) * 3
    glob = (448 * 6 / w.abs().max()).reshape(1) if fmt.has_global else None  # MLX's own global convention
    kwargs = {"global_scale": mx.array(glob.numpy())} if glob is not None else {}
    wq, scales = mx.quantize(mx.array(w.numpy()), mode=mode, **kwargs)[:2]
    q = torch.from_numpy(np.array(wq).view(np.uint8).copy())  # the uint32 words' bytes, in memory order
    if not fmt.packed:
        q = q.view(torch.float8_e4m3fn)
    s = torch.from_numpy(np.array(scales).copy())
    if fmt.scale_dtype == torch.float8_e4m3fn:
        s = s.view(torch.float8_e4m3fn)
    assert q.shape == (16, fmt.element_cols(128)) and s.shape == (16, fmt.scale_cols(128))
    group, bits = {"mxfp8": (32, 8), "mxfp4": (32, 4), "nvfp4": (16, 4)}[mode]
    want = np.array(mx.dequantize(wq, scales, group_size=group, bits=bits, mode=mode).astype(mx.float32))
    got = dequantize(fmt, q, s)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
