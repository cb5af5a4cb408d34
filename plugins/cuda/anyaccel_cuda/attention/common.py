"""What the attention kernels share: one FlashInfer workspace per device, the CSR page description built
from block tables, per-tensor host scales, and the window conversion."""

from __future__ import annotations

import torch

from ..per_tensor import PerTensor

# FlashInfer's recommended float workspace (its examples and vLLM use 128 MiB); one per device, shared by
# every FlashInfer kernel of the process, which run one after another on the same stream. Zeroed: trtllm-gen
# keeps counters in it that must start at zero.
WORKSPACE_BYTES = 128 << 20
_WORKSPACES: dict[str, torch.Tensor] = {}


def workspace(device: str) -> torch.Tensor:
    if device not in _WORKSPACES:
        _WORKSPACES[device] = torch.zeros(WORKSPACE_BYTES, dtype=torch.uint8, device=device)
    return _WORKSPACES[device]


def window_left(sliding_window: int) -> int:
    """FlashInfer/FlashAttention's window_left (keys strictly left of the query) for our W (W keys including
    the query's own), -1 for no window."""
    return sliding_window - 1 if sliding_window > 0 else -1


def csr_pages(
    block_tables: torch.Tensor, seq_lens: torch.Tensor, block_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(indptr [B + 1], indices [sum pages], last_page_len [B]), int32, from block tables and lengths.
    Selecting the used pages syncs with the host once: call it when planning, not per layer."""
    pages = (seq_lens + block_size - 1) // block_size
    indptr = torch.zeros(seq_lens.numel() + 1, dtype=torch.int32, device=seq_lens.device)
    torch.cumsum(pages, 0, out=indptr[1:])
    used = torch.arange(block_tables.shape[1], device=block_tables.device) < pages.unsqueeze(1)
    indices = block_tables[used].to(torch.int32)
    last = torch.where(pages > 0, seq_lens - (pages - 1) * block_size, torch.zeros_like(seq_lens))
    return indptr, indices, last.to(torch.int32)


class HostScales:
    """k_scale/v_scale as host floats, read once per tensor (they are per-layer constants), for libraries
    that take floats."""

    def __init__(self) -> None:
        self._floats = PerTensor(lambda scale: float(scale.reshape(())))

    def __call__(self, scale: torch.Tensor | None) -> float | None:
        return None if scale is None else self._floats(scale)


def zero_empty_rows(out: torch.Tensor, seq_lens: torch.Tensor) -> torch.Tensor:
    """Decode rows of padded sequences (seq_lens == 0) return zeros, whatever the library wrote."""
    return out.masked_fill_((seq_lens == 0).view(-1, 1, 1), 0.0)
