"""GGUF block formats, decoded with numpy from the file's bytes: every supported type as dense float32, and
the quantized ones as the components our kernels read, without rounding anything.

A quantized GGUF row of K values is K / B blocks of B values (B = 32, or 256 for K-quants). `raw` is the
tensor's bytes as uint8 [rows, K / B * bytes_per_block] (GGUFReader's `data` for quantized types).

    affine4(type, raw) -> (q uint8 [rows, K] in 0..15, scale f32 [rows, K/32], offset f32 [rows, K/32])
        w = q * scale + offset: Q4_0 (scale d, offset -8d), Q4_1 (d, m), Q4_K (d * sc, -(dmin * m))
    int8(type, raw) -> (q int8 [rows, K], scale f32 [rows, K/G])
        w = q * scale: Q8_0 (G 32, scale d), Q6_K (G 16, q - 32, scale d * sc)
Each product and sum is the one gguf.quants.dequantize forms in float32, so both decodings agree bit for
bit (tests/models/test_gguf_blocks.py checks every type against it).
"""

from __future__ import annotations

import numpy as np

QK = 32  # values per block of the legacy formats (and per sub-block of Q4_K)
QK_K = 256  # values per K-quant super-block

AFFINE4 = ("Q4_0", "Q4_1", "Q4_K")
# the dtype that holds each 4-bit type's scales and offsets exactly: Q4_0 and Q4_1 store them in 16 bits
# (Q4_0's offset -8d is a power-of-two multiple of its d), Q4_K's are products d * sc of up to 17 bits
AFFINE4_SCALES = {"Q4_0": "float16", "Q4_1": "float16", "Q4_K": "float32"}
INT8 = {"Q8_0": 32, "Q6_K": 16}  # type -> values per scale
DENSE = ("F32", "F16", "BF16")
BLOCK_BYTES = {"Q4_0": 18, "Q4_1": 20, "Q8_0": 34, "Q4_K": 144, "Q6_K": 210}
BLOCK_VALUES = {"Q4_0": QK, "Q4_1": QK, "Q8_0": QK, "Q4_K": QK_K, "Q6_K": QK_K}
SUPPORTED = DENSE + AFFINE4 + tuple(INT8)


def _blocks(raw: np.ndarray, qtype: str) -> tuple[np.ndarray, int]:
    """raw [rows, bytes] -> (blocks [rows * blocks_per_row, bytes_per_block], rows)."""
    rows = raw.shape[0]
    return np.ascontiguousarray(raw).reshape(-1, BLOCK_BYTES[qtype]), rows


def _f16(b: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(b).view(np.float16).astype(np.float32)


def _nibbles32(qs: np.ndarray) -> np.ndarray:
    """[n, 16] bytes of a 32-value block -> [n, 32]: byte j holds value j (low nibble) and j + 16 (high)."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _q4k_scale_min(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 12 packed bytes of a Q4_K super-block -> its 8 six-bit scales and 8 six-bit mins."""
    d, m, m_d = scales[:, 0:4], scales[:, 4:8], scales[:, 8:12]
    sc = np.concatenate([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc, mn


def affine4(qtype: str, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    blocks, rows = _blocks(raw, qtype)
    if qtype == "Q4_0":
        d = _f16(blocks[:, :2])
        q, scale, offset = _nibbles32(blocks[:, 2:]), d, -8 * d
    elif qtype == "Q4_1":
        d, m = _f16(blocks[:, :2]), _f16(blocks[:, 2:4])
        q, scale, offset = _nibbles32(blocks[:, 4:]), d, m
    elif qtype == "Q4_K":
        d, dmin = _f16(blocks[:, :2]), _f16(blocks[:, 2:4])
        sc, mn = _q4k_scale_min(blocks[:, 4:16])
        scale, offset = d * sc.astype(np.float32), -(dmin * mn.astype(np.float32))
        # 4 chunks of 32 bytes; chunk c holds sub-block 2c in its low nibbles and 2c + 1 in its high ones
        qs = blocks[:, 16:].reshape(-1, 4, 1, 32) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
        q = (qs & 0x0F).reshape(-1, QK_K)
    else:
        raise ValueError(f"{qtype} is not a 4-bit affine GGUF type ({', '.join(AFFINE4)})")
    return q.reshape(rows, -1), scale.reshape(rows, -1), offset.reshape(rows, -1)


def int8(qtype: str, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    blocks, rows = _blocks(raw, qtype)
    if qtype == "Q8_0":
        scale, q = _f16(blocks[:, :2]), blocks[:, 2:].view(np.int8)
    elif qtype == "Q6_K":
        ql, qh = blocks[:, :128], blocks[:, 128:192]
        sc, d = blocks[:, 192:208].view(np.int8).astype(np.float32), _f16(blocks[:, 208:210])
        scale = d * sc
        # two halves of 128 values; in each, ql's 64 bytes give 2 x 64 low nibbles, qh's 32 bytes 4 x 32
        # two-bit high parts
        nibbles = ql.reshape(-1, 2, 1, 64) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
        low = (nibbles & 0x0F).reshape(-1, 2, 4, 32)
        pairs = qh.reshape(-1, 2, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
        q = ((low | ((pairs & 0x03) << 4)).astype(np.int16) - 32).astype(np.int8).reshape(-1, QK_K)
    else:
        raise ValueError(f"{qtype} is not an 8-bit GGUF type ({', '.join(INT8)})")
    return q.reshape(rows, -1), scale.reshape(rows, -1)


def dequantize(qtype: str, raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Any supported type -> float32 of `shape` (rows-major, the last dim the row)."""
    if qtype == "F32":
        values = np.asarray(raw, dtype=np.float32)
    elif qtype == "F16":
        values = np.asarray(raw).view(np.float16).astype(np.float32) if raw.dtype == np.uint8 else raw
    elif qtype == "BF16":
        bits = np.ascontiguousarray(raw).view(np.uint16).astype(np.uint32) << 16
        values = bits.view(np.float32)
    elif qtype in AFFINE4:
        q, scale, offset = affine4(qtype, raw.reshape(-1, raw.shape[-1]))
        g = q.shape[1] // scale.shape[1]
        values = q.astype(np.float32) * np.repeat(scale, g, axis=1) + np.repeat(offset, g, axis=1)
    elif qtype in INT8:
        q, scale = int8(qtype, raw.reshape(-1, raw.shape[-1]))
        values = q.astype(np.float32) * np.repeat(scale, q.shape[1] // scale.shape[1], axis=1)
    else:
        raise ValueError(unsupported(qtype))
    return np.asarray(values, dtype=np.float32).reshape(shape)


def unsupported(qtype: str) -> str:
    return f"GGUF tensor type {qtype} is not supported (supported: {', '.join(SUPPORTED)})"
