"""4-bit packing formats, defined once: GPTQ (v1), AWQ (GEMM) and the row-packed int4 of moe.experts.

Logical 4-bit tensors are unsigned values 0..15 in int32, oriented like nn.Linear weights ([N, K], out x in)
unless named otherwise; leading batch dims (experts) are allowed everywhere. A packed word is an int32
holding 8 values, value i in bits 4i..4i+3 (low bits first). The formats are documented in
docs/quantization.md.
"""

from __future__ import annotations

import torch

PACK = 8  # 4-bit values per int32 word
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)  # nibble slot i of an AWQ word holds column 8c + AWQ_ORDER[i]
AWQ_REVERSE_ORDER = (0, 4, 1, 5, 2, 6, 3, 7)  # column 8c + j sits in nibble slot AWQ_REVERSE_ORDER[j]
_SHIFTS = torch.arange(0, 32, 4, dtype=torch.int32)


def pack_rows(values: torch.Tensor) -> torch.Tensor:
    """[..., 8m] values in 0..15 -> [..., m] int32 words, value 8c+i of a row in bits 4i of word c."""
    if values.shape[-1] % PACK:
        raise ValueError(f"pack_rows: the last dim must be a multiple of {PACK}, got {tuple(values.shape)}")
    if values.numel() and (int(values.min()) < 0 or int(values.max()) > 15):
        raise ValueError("pack_rows: 4-bit values must lie in 0..15")
    groups = values.to(torch.int64).reshape(*values.shape[:-1], -1, PACK)
    words = (groups << _SHIFTS.to(torch.int64)).sum(-1)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)  # keep the bits, as int32


def unpack_rows(words: torch.Tensor) -> torch.Tensor:
    """Inverse of pack_rows: [..., m] int32 -> [..., 8m] int32 values in 0..15."""
    nibbles = (words.unsqueeze(-1) >> _SHIFTS.to(words.device)) & 0xF
    return nibbles.reshape(*words.shape[:-1], -1)


def awq_interleave(columns: torch.Tensor) -> torch.Tensor:
    """Reorder the last dim (logical output channels) into AWQ storage order before pack_rows."""
    order = torch.tensor(AWQ_ORDER, device=columns.device)
    return columns.reshape(*columns.shape[:-1], -1, PACK)[..., order].reshape(columns.shape)


def awq_deinterleave(columns: torch.Tensor) -> torch.Tensor:
    """Inverse of awq_interleave: storage order -> logical output channel order."""
    order = torch.tensor(AWQ_REVERSE_ORDER, device=columns.device)
    return columns.reshape(*columns.shape[:-1], -1, PACK)[..., order].reshape(columns.shape)


def gptq_pack(q: torch.Tensor, zeros: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logical q [N, K] and true zero points [K/G, N] (1..15; v1 cannot store 0) -> GPTQ v1
    (qweight [K/8, N], qzeros [K/G, N/8]); qzeros stores zero - 1."""
    if zeros.numel() and int(zeros.min()) < 1:
        raise ValueError("gptq_pack: the v1 format stores zero - 1, so zero points must be >= 1")
    return pack_rows(q).transpose(-2, -1).contiguous(), pack_rows(zeros - 1)


def gptq_unpack(
    qweight: torch.Tensor, qzeros: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """GPTQ v1 -> (q [N, K], true zeros [K/G, N] or None)."""
    q = unpack_rows(qweight.transpose(-2, -1))
    return q, None if qzeros is None else unpack_rows(qzeros) + 1


def awq_pack(q: torch.Tensor, zeros: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logical q [N, K] and zeros [K/G, N] -> AWQ GEMM (qweight [K, N/8], qzeros [K/G, N/8])."""
    qzeros = None if zeros is None else pack_rows(awq_interleave(zeros))
    return pack_rows(awq_interleave(q.transpose(-2, -1))), qzeros


def awq_unpack(
    qweight: torch.Tensor, qzeros: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """AWQ GEMM -> (q [N, K], zeros [K/G, N] or None)."""
    q = awq_deinterleave(unpack_rows(qweight)).transpose(-2, -1)
    return q, None if qzeros is None else awq_deinterleave(unpack_rows(qzeros))
