"""Whether the plugin can serve this process, decided without touching a device.

Kernel records are data, so the plugin is active whenever cuda is the platform in question: a CUDA build of
torch (its device may still be absent: the dispatcher then rejects every cuda kernel with that reason), or
cuda named by ANYACCEL_PLATFORM, ANYACCEL_SIMULATE (plans) or ANYACCEL_EMULATE (emulators). Anywhere else
(a CPU or ROCm build of torch, no cuda asked for) it is inactive, with the reason `anyaccel info` shows.
"""

from __future__ import annotations

from anyaccel.env import Settings

PLATFORM = "cuda"


def _names_cuda(target: str | None) -> bool:
    return bool(target) and target.split(":", 1)[0].strip().lower() == PLATFORM  # type: ignore[union-attr]


def unavailable_reason() -> str | None:
    settings = Settings.from_environ()
    if settings.platform == PLATFORM or _names_cuda(settings.simulate) or _names_cuda(settings.emulate):
        return None
    import torch

    if getattr(torch.version, "cuda", None) is None:
        build = "ROCm" if getattr(torch.version, "hip", None) else "CPU"
        return f"no CUDA: torch.version.cuda is None ({build} build of torch)"
    return None
