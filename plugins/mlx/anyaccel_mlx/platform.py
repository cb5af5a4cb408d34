"""The `mps` platform family as MLX sees it: Apple silicon whose Metal GPU MLX can use.

It replaces the built-in family of the same name (platforms/mps.py), whose capability parsing and platform
description it reuses; what it adds is the Metal check through MLX. MLX is imported only on Darwin/arm64,
never on other systems.
"""

from __future__ import annotations

import platform as host

from anyaccel.platforms import mps
from anyaccel.platforms.base import Platform, PlatformFamily


def metal_available() -> bool:
    import mlx.core as mx

    return bool(mx.metal.is_available())


def probe() -> Platform | None:
    if host.system() != "Darwin" or host.machine() != "arm64" or not metal_available():
        return None
    brand = mps.chip_name()
    found = mps.describe(mps.parse_capability(mps.generation(brand)), device_name=brand)
    return found.replace(notes=("Metal available through MLX",))


FAMILY = PlatformFamily("mps", probe, mps.parse_capability, mps.describe, mps.EXAMPLES)
