"""The swizzled block-scale layout that block-scaled tensor-core GEMMs read (CUTLASS's Sm1xxBlockScaledConfig,
cuBLAS's "1D block scaling factors layout", FlashInfer's `nvfp4_block_scale_interleave`, torchao's
`to_blocked`): the "128x4" layout.

A scale matrix [rows, cols] (rows = M or N, cols = K / block) is padded with zeros to a multiple of 128 rows
and 4 columns and cut into 128 x 4 tiles, stored one after another: the tiles of row tile 0 left to right,
then those of row tile 1, and so on. Inside a tile (512 bytes) the scale at (r, c), r = 32 * i + j with
i in 0..3 and j in 0..31, sits at byte 16 * j + 4 * i + c, so that the 32 lanes reading rows j, j + 32,
j + 64, j + 96 find their 4 x 4 scales contiguous.

Kernels make this layout once, in their `prepare` (weights) and never per call; the contract layouts are the
plain row-major [rows, cols] ones of anyaccel.ops.microscaling.
"""

from __future__ import annotations

import torch

TILE_ROWS, TILE_COLS = 128, 4


def padded_shape(rows: int, cols: int) -> tuple[int, int]:
    return -(-rows // TILE_ROWS) * TILE_ROWS, -(-cols // TILE_COLS) * TILE_COLS


def swizzle_128x4(scales: torch.Tensor) -> torch.Tensor:
    """[..., rows, cols] row-major scales -> [..., padded_rows, padded_cols] holding the 128x4 byte order
    (read as a flat buffer per leading index; the 2-D shape only keeps the sizes)."""
    *lead, rows, cols = scales.shape
    prow, pcol = padded_shape(rows, cols)
    padded = torch.nn.functional.pad(scales.view(torch.uint8), (0, pcol - cols, 0, prow - rows))
    tiles = padded.reshape(*lead, prow // 128, 4, 32, pcol // 4, 4)  # (tile row, i, j, tile col, c)
    n = len(lead)
    order = (*range(n), n, n + 3, n + 2, n + 1, n + 4)  # -> (tile row, tile col, j, i, c)
    out = tiles.permute(order).reshape(*lead, prow, pcol)
    return out.view(scales.dtype).contiguous()


def unswizzle_128x4(swizzled: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The inverse of swizzle_128x4: [..., padded_rows, padded_cols] -> [..., rows, cols] row-major."""
    *lead, prow, pcol = swizzled.shape
    tiles = swizzled.view(torch.uint8).reshape(*lead, prow // 128, pcol // 4, 32, 4, 4)  # (tr, tc, j, i, c)
    n = len(lead)
    order = (*range(n), n, n + 3, n + 2, n + 1, n + 4)  # -> (tile row, i, j, tile col, c)
    plain = tiles.permute(order).reshape(*lead, prow, pcol)[..., :rows, :cols]
    return plain.view(swizzled.dtype).contiguous()
