"""rope_cached_positions_2c_fwd_inplace (aiter/ops/rope.py, ROCm/aiter e404860): rotate two tensors in
place from cos/sin caches indexed by position."""

from __future__ import annotations

import torch


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, neox: bool) -> torch.Tensor:
    """x [..., R] with cos/sin [..., R/2] (fp32 math)."""
    if neox:
        x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)


def rope_cached_positions_2c_fwd_inplace(
    input_x, input_y, cos, sin, positions, rotate_style, reuse_freqs_front_part, nope_first
):
    """input_x/input_y [s, b, h, R] (aiter/rotary_embedding.py passes the rotary slice of each head, a
    strided view, and the kernel writes through it); cos/sin [max_pos, 1, 1, R/2] in the inputs' dtype
    (reuse_freqs_front_part: one half serves both halves); positions [s, b] int64; rotate_style 0 = NeoX
    halves, 1 = GPT-J pairs."""
    assert input_x.dim() == 4 and input_y.dim() == 4, "inputs must be [s, b, h, d]"
    assert cos.dtype == input_x.dtype and sin.dtype == input_x.dtype, "cos/sin must match the input dtype"
    assert positions.shape == input_x.shape[:2], "positions must be [s, b]"
    assert rotate_style in (0, 1), f"rotate_style {rotate_style}"
    if not reuse_freqs_front_part or nope_first:
        raise NotImplementedError("emulated rope: reuse_freqs_front_part=True, nope_first=False only")
    half = cos.shape[-1]
    for t in (input_x, input_y):
        assert t.shape[-1] == 2 * half, f"rotary width {t.shape[-1]} != 2 * cos width {half}"
    c = cos[positions].float().view(*positions.shape, 1, half)
    s = sin[positions].float().view(*positions.shape, 1, half)
    for t in (input_x, input_y):
        t.copy_(_rotate(t.float(), c, s, rotate_style == 0).to(t.dtype))
