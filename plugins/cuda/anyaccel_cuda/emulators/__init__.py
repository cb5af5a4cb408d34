"""Plain-torch emulators of the vendor APIs the plugin's kernels call, installed only on an emulated cuda
platform (ANYACCEL_EMULATE=cuda:<sm>).

Each function keeps the vendor's signature (checked against the version named in its module), computes the
documented result in float32 on the host, and raises the vendor's kind of error for what the vendor rejects:
dtypes, layouts, shapes, page sizes, head dims and the architectures it does not build for (read from the
emulated capability). Arguments the vendor accepts but we do not emulate raise NotImplementedError. They
prove the plugin's glue (argument mapping, layouts, weight preparation, planning, gating), never the vendor
kernels' numerics or speed.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator

_FI = "anyaccel_cuda.emulators.flashinfer"

EMULATORS = (
    Emulator(
        modules={
            "flashinfer": _FI,
            "flashinfer.decode": f"{_FI}.decode",
            "flashinfer.prefill": f"{_FI}.prefill",
            "flashinfer.page": f"{_FI}.page",
            "flashinfer.norm": f"{_FI}.norm",
            "flashinfer.rope": f"{_FI}.rope",
            "flashinfer.activation": f"{_FI}.activation",
            "flashinfer.fused_moe": f"{_FI}.fused_moe",
            "flashinfer.gemm": f"{_FI}.gemm",
        },
        platforms=frozenset({"cuda"}),
        provides=("flashinfer-python",),
    ),
    Emulator(
        modules={
            "flash_attn": "anyaccel_cuda.emulators.flash_attn",
            "flash_attn.cute": "anyaccel_cuda.emulators.flash_attn.cute",
        },
        platforms=frozenset({"cuda"}),
        provides=("flash-attn-4",),
    ),
    Emulator(
        modules={"deep_gemm": "anyaccel_cuda.emulators.deep_gemm"},
        platforms=frozenset({"cuda"}),
        provides=("deep-gemm",),
    ),
    # torch's CUDA-only entry points (_scaled_mm, _grouped_mm, _int_mm, varlen_attn) do not run on host
    # tensors; the kernels reach them through anyaccel_cuda.torch_ops, which this emulates.
    Emulator(
        modules={"anyaccel_cuda.torch_ops": "anyaccel_cuda.emulators.torch_ops"},
        platforms=frozenset({"cuda"}),
    ),
)
