"""Whether the plugin can serve this process, decided without touching a device.

Kernel records are data, so the plugin is active whenever rocm is the platform in question: a ROCm (HIP)
build of torch, or rocm named by ANYACCEL_PLATFORM, ANYACCEL_SIMULATE (plans) or ANYACCEL_EMULATE
(emulators). Anywhere else it is inactive, with the reason `anyaccel info` shows.
"""

from __future__ import annotations

from anyaccel.env import Settings

PLATFORM = "rocm"


def _names_rocm(target: str | None) -> bool:
    return bool(target) and target.split(":", 1)[0].strip().lower() == PLATFORM  # type: ignore[union-attr]


def unavailable_reason() -> str | None:
    settings = Settings.from_environ()
    if settings.platform == PLATFORM or _names_rocm(settings.simulate) or _names_rocm(settings.emulate):
        return None
    import torch

    if getattr(torch.version, "hip", None) is None:
        build = "CUDA" if getattr(torch.version, "cuda", None) else "CPU"
        return (
            f"no ROCm: this torch is a {build} build (torch.version.hip is None); "
            "--simulate rocm:<gfx> plans and --emulate rocm:<gfx> runs the kernels through emulators"
        )
    return None
