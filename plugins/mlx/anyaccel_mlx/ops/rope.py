"""rope.apply from the contract's cos/sin cache.

mx.fast.rope is not used: it derives angles itself from a base or a frequency vector and a start `offset`,
so it cannot honour the contract's precomputed cache (which carries any rope scaling: YaRN's attention
factor multiplies cos and sin, for instance), and its fp32 angles pos * freq lose ~pos * 2^-24 radians
(2e-3 at position 40,000, far above the fp32 tolerance of the kit). Gathering cache[positions] also handles
arbitrary per-token positions of a packed batch, where mx.fast.rope only takes one offset per sequence.
"""

from __future__ import annotations

import mlx.core as mx


def _rotate(x: mx.array, cos: mx.array, sin: mx.array, is_neox: bool) -> mx.array:
    """x [T, H, D]; cos/sin [T, 1, R/2] fp32. Rotates the first R channels in fp32; the rest pass through."""
    half = cos.shape[-1]
    rot = x[..., : 2 * half].astype(mx.float32)
    if is_neox:
        x1, x2 = rot[..., :half], rot[..., half:]
    else:
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    o1, o2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    rotated = mx.concatenate([o1, o2], axis=-1) if is_neox else mx.stack([o1, o2], axis=-1).reshape(rot.shape)
    return mx.concatenate([rotated.astype(x.dtype), x[..., 2 * half :]], axis=-1)


def apply(
    q: mx.array, k: mx.array, positions: mx.array, cos_sin_cache: mx.array, is_neox: bool
) -> tuple[mx.array, mx.array]:
    cos_sin = cos_sin_cache[positions][:, None, :]  # [T, 1, R]
    cos, sin = mx.split(cos_sin, 2, axis=-1)
    return _rotate(q, cos, sin, is_neox), _rotate(k, cos, sin, is_neox)
