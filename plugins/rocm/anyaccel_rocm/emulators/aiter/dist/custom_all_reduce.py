"""aiter.dist.device_communicators.custom_all_reduce.CustomAllreduce (ROCm/aiter e404860), over
torch.distributed: the same construction checks (a non-NCCL group, one node, world sizes 2/4/6/8) and the
same size rule (`custom_all_reduce` returns None for inputs it does not take, and the caller runs RCCL)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.distributed as dist

from anyaccel_rocm.gates import CUSTOM_AR_MAX_BYTES

calls = 0  # inputs this process reduced through the emulated custom kernel (tests read it)


class CustomAllreduce:
    _SUPPORTED_WORLD_SIZES: ClassVar[list[Any]] = [2, 4, 6, 8]

    def __init__(self, group, device, max_size=1024 * 1024 * 1024, enable_register_for_capturing=True):
        self.disabled = True
        self.group = group
        assert dist.get_backend(group) != dist.Backend.NCCL, "CustomAllreduce should be attached to a non-NCCL group."
        self.world_size = dist.get_world_size(group=group)
        if self.world_size == 1 or self.world_size not in self._SUPPORTED_WORLD_SIZES:
            return  # AITER logs a warning and stays disabled
        self.max_size = max_size
        self.disabled = False

    def should_custom_ar(self, inp: torch.Tensor, prefill_support: bool = False) -> bool:
        size = inp.numel() * inp.element_size()
        return not self.disabled and size % 16 == 0 and size <= CUSTOM_AR_MAX_BYTES and inp.is_contiguous()

    def custom_all_reduce(self, input, use_new=True, open_fp8_quant=False):
        global calls
        if self.disabled or not self.should_custom_ar(input):
            return None
        if input.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise RuntimeError(f"custom allreduce only supports float32, float16 and bfloat16, got {input.dtype}")
        out = input.clone()
        dist.all_reduce(out, group=self.group)
        calls += 1
        return out
