"""Plain-torch emulators of the vendor functions the plugin's kernels call, installed only on an emulated
musa platform (ANYACCEL_EMULATE=musa:<mp_xx>).

- `mate` and `mate.deep_gemm`: MATE's FlashAttention-3-compatible attention (flash_attn_varlen_func,
  flash_attn_with_kvcache, get_scheduler_metadata) and its DeepGEMM-style fp8 GEMMs (fp8_gemm_nt,
  m_grouped_fp8_gemm_nt_contiguous), from MooreThreads/mate @ 3f58cc3.
- `anyaccel_musa.musa_ops`: torch_musa's fused RMSNorm, SwiGLU and rope aten ops, which stock torch does not
  have (the kernels reach them through that module).

Each function keeps the vendor's signature, computes the documented result in float32 on the host, and
raises the vendor's kind of error for what the vendor rejects: dtypes, shapes, layouts, index dtypes, head
dims, scale shapes, and the architectures it does not ship kernels for (read from the emulated capability).
Arguments the vendor accepts but the emulator does not implement raise NotImplementedError. Device placement
("inputs must be on MUSA device") is not checked: emulated tensors live on the host. They prove the plugin's
glue (argument mapping, layouts, planning, gating), never the vendor kernels' numerics or speed.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator

EMULATORS = (
    Emulator(
        modules={
            "mate": "anyaccel_musa.emulators.mate",
            "mate.deep_gemm": "anyaccel_musa.emulators.mate.deep_gemm",
        },
        platforms=frozenset({"musa"}),
        provides=("mate",),
    ),
    Emulator(
        modules={"anyaccel_musa.musa_ops": "anyaccel_musa.emulators.musa_ops"},
        platforms=frozenset({"musa"}),
        provides=("torch_musa",),
    ),
)
