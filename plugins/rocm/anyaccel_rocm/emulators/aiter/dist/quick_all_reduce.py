"""aiter.dist.device_communicators.quick_all_reduce (ROCm/aiter e404860) over torch.distributed.

QuickAllReduce as AITER builds it: off unless AITER_QUICK_REDUCE_QUANTIZATION names a level (not NONE)
when a communicator is built (AITER also reads it when its module is imported); gfx94*/gfx95* only; a non-NCCL
group; world sizes 2/4/8; INT3 on two ranks only. should_quick_allreduce applies AITER's size rule
(_QR_MIN_SIZE per dtype, world size and level; at most the 2 GiB buffer; a multiple of 16 bytes) and
quick_all_reduce raises where qr_all_reduce does (dtypes, mismatched or oversized output).

The FP level computes what the two-shot kernel (csrc/include/quick_all_reduce.cuh) does: every element's
owner adds the ranks' values in rank order, rounding each partial sum to the dtype (packed_assign_add), with
fp16 overflow clamped to +-65504 on gfx942 (set_fp16_ovfl); bf16 inputs cast to fp16 when
AITER_QUICK_REDUCE_CAST_BF16_TO_FP16 is 1 (its default), and back after. The quantized codecs (FP8, INT6,
INT4, INT3) are not emulated: building a communicator for one raises NotImplementedError. This proves the
plugin's glue (the level it asks for, gating, fallback), not AITER's kernel."""

from __future__ import annotations

import os
from enum import Enum
from typing import Any, ClassVar

import torch
import torch.distributed as dist

from .._device import gfx

calls = 0  # inputs this process reduced through the emulated quick kernel (tests read it)


class QuickReduceRegime(Enum):
    FP = 0
    FP8 = 1
    INT6 = 2
    INT4 = 3
    INT3 = 4
    NONE = 5


MB = 1024 * 1024
QR_MAX_SIZE = 2**31  # qr_max_size(): int32 max + 1
FP16_MAX = 65504.0


def qr_rocm_arch_available() -> bool:
    return any(arch in gfx() for arch in ("gfx94", "gfx95"))


def is_weak_contiguous(inp: torch.Tensor) -> bool:
    return inp.is_contiguous() or (
        inp.untyped_storage().nbytes() - inp.storage_offset() * inp.element_size()
        == inp.numel() * inp.element_size()
    )


class QuickAllReduce:
    _SUPPORTED_WORLD_SIZES: ClassVar[list[Any]] = [2, 4, 8]
    _SUPPORTED_DTYPES: ClassVar[list[Any]] = [torch.float16, torch.bfloat16]
    # [FP, FP8, INT6, INT4, INT3] per (dtype, world size), as AITER lists them
    _QR_MIN_SIZE: ClassVar[dict[Any, list[int]]] = {
        (torch.float16, 2): [1 * MB, 2 * MB, 2 * MB, 1 * MB, 1 * MB],
        (torch.float16, 4): [1 * MB, 16 * MB, 4 * MB, 2 * MB, 2 * MB],
        (torch.float16, 8): [16 * MB, 4 * MB, 4 * MB, 8 * MB, 8 * MB],
        (torch.bfloat16, 2): [2 * MB, 8 * MB, 8 * MB, 8 * MB, 8 * MB],
        (torch.bfloat16, 4): [8 * MB, 64 * MB, 64 * MB, 16 * MB, 16 * MB],
        (torch.bfloat16, 8): [16 * MB, 2048 * MB, 2048 * MB, 2048 * MB, 2048 * MB],
    }

    def __init__(self, group, device) -> None:
        self.disabled = True
        # AITER reads the level on import too (`quick_ar`); this module is installed with the emulated
        # platform, before the plugin imports it, so both reads happen here
        if not qr_rocm_arch_available():
            return
        self.group = group
        assert dist.get_backend(group) != dist.Backend.NCCL, (
            "Custom quick allreduce should be attached to a non-NCCL group."
        )
        # one host: every emulated rank is on the same node (in_the_same_node_as holds)
        self.rank = dist.get_rank(group=group)
        self.world_size = dist.get_world_size(group=group)
        if self.world_size == 1 or self.world_size not in self._SUPPORTED_WORLD_SIZES:
            return  # AITER logs a warning and stays disabled
        self.use_fp16_kernels = int(os.environ.get("AITER_QUICK_REDUCE_CAST_BF16_TO_FP16", "1"))
        regime = os.environ.get("AITER_QUICK_REDUCE_QUANTIZATION", "NONE")
        if regime not in QuickReduceRegime.__members__ or regime == "NONE":
            return
        self.qr_quant_level = QuickReduceRegime[regime]
        if self.qr_quant_level == QuickReduceRegime.INT3 and self.world_size != 2:
            return
        if self.qr_quant_level != QuickReduceRegime.FP:
            raise NotImplementedError(
                f"emulated QuickAllReduce: the {regime} codec is not emulated (only the FP level is)"
            )
        max_mb = int(os.environ.get("AITER_QUICK_REDUCE_MAX_SIZE_BYTES_MB", "0"))
        self.qr_max_size = max_mb * MB if max_mb > 0 else QR_MAX_SIZE
        self.disabled = False

    def should_quick_allreduce(self, inp: torch.Tensor) -> bool:
        if self.disabled or inp.dtype not in self._SUPPORTED_DTYPES:
            return False
        size = inp.numel() * inp.element_size()
        if size % 16 != 0 or not is_weak_contiguous(inp):
            return False
        dtype = torch.float16 if self.use_fp16_kernels else inp.dtype
        return self._QR_MIN_SIZE[(dtype, self.world_size)][self.qr_quant_level.value] <= size <= self.qr_max_size

    def quick_all_reduce(self, inp: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
        global calls
        if out is None:
            out = torch.empty_like(inp)
        if inp.dtype != out.dtype:
            raise ValueError("qr_all_reduce: inp/out dtype mismatch")
        if inp.numel() != out.numel():
            raise ValueError("qr_all_reduce: inp/out numel mismatch")
        if inp.numel() > self.qr_max_size:
            raise ValueError("qr_all_reduce: numel exceeds kMaxProblemSize")
        if inp.dtype not in self._SUPPORTED_DTYPES:
            raise RuntimeError("quick allreduce only supports float16 and bfloat16")
        cast = inp.dtype == torch.bfloat16 and bool(self.use_fp16_kernels)
        x = inp.reshape(-1).to(torch.float16) if cast else inp.reshape(-1)
        parts = [torch.empty_like(x) for _ in range(self.world_size)]
        dist.all_gather(parts, x.contiguous(), group=self.group)
        total = torch.zeros_like(x)
        for part in parts:  # the segment owner's order: rank 0 first
            total = self._add(total, part)
        out.copy_(total.to(inp.dtype).view(inp.shape))
        calls += 1
        return out

    @staticmethod
    def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        s = (a.double() + b.double()).to(a.dtype)  # one rounding to the dtype, as v_pk_add_f16 / __hadd2
        if s.dtype == torch.float16 and gfx() == "gfx942":
            over = s.isinf() & a.isfinite() & b.isfinite()
            s = torch.where(over, s.sign() * FP16_MAX, s)
        return s
