"""Whether MLX can be imported here, decided from package metadata without importing it."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import sys

LINUX_BACKENDS = ("mlx-cpu", "mlx-cuda")  # on Linux `mlx` ships its compiled library in one of these


def _installed(dist: str) -> bool:
    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def mlx_missing() -> str | None:
    """None when `import mlx.core` can work here, else the reason it cannot."""
    if not _installed("mlx"):
        return 'mlx is not installed (pip install mlx on Apple silicon, "mlx[cpu]" on Linux)'
    if importlib.util.find_spec("mlx") is None:
        return f"the mlx {md.version('mlx')} distribution is installed but its module cannot be found"
    if sys.platform.startswith("linux") and not any(_installed(d) for d in LINUX_BACKENDS):
        return 'mlx is installed without a Linux backend (pip install "mlx[cpu]")'
    return None
