"""The compute capability the emulators stand for: the emulated platform's (ANYACCEL_EMULATE=cuda:sm_100),
as the vendor libraries read it from the device (FlashInfer's get_compute_capability, FA4's
_get_device_arch, DeepGEMM's get_arch_major)."""

from __future__ import annotations

from anyaccel.env import Settings
from anyaccel.platforms.cuda import parse_capability


def sm_version() -> int:
    """major * 10 + minor of the emulated device (100 for sm_100)."""
    target = Settings.from_environ().emulate or ""
    family, _, name = target.partition(":")
    if family.strip().lower() != "cuda":
        raise RuntimeError(
            f"CUDA emulators used outside an emulated cuda platform (ANYACCEL_EMULATE={target!r})"
        )
    return parse_capability(name).rank


def major() -> int:
    return sm_version() // 10
