"""Plain-torch stand-ins for the AITER Python API our kernels call, installed only on an emulated rocm
platform (`--emulate rocm:gfx942`). They prove the plugin's glue (argument mapping, the shuffled and
x-packed layouts, weight preparation, gating), not AITER's kernels: see README.md."""

from __future__ import annotations

from anyaccel.emulation import Emulator

_E = f"{__name__}.aiter"

EMULATORS = [
    Emulator(
        modules={
            "aiter": _E,
            "aiter.dtypes": f"{_E}.dtypes",
            "aiter.ops": f"{_E}.ops",
            "aiter.ops.shuffle": f"{_E}.ops.shuffle",
            "aiter.fused_moe": f"{_E}.fused_moe",
            "aiter.dist": f"{_E}.dist",
            "aiter.dist.device_communicators": f"{_E}.dist.device_communicators",
            "aiter.dist.device_communicators.custom_all_reduce": f"{_E}.dist.custom_all_reduce",
            "aiter.dist.device_communicators.quick_all_reduce": f"{_E}.dist.quick_all_reduce",
        },
        platforms=frozenset({"rocm"}),
        provides=("amd-aiter",),
    )
]
