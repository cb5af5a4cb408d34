"""Whether IPEX would import against the installed torch, decided without importing it.

IPEX's __init__ compares its major.minor version with torch's and refuses to load on a mismatch (it prints
"needs to work with PyTorch X.Y.*" and exits), and its last release (2.8.10+xpu) needs torch 2.8. Importing
it to find out could end the process, so its version is read instead: from the module already loaded (an
emulated IPEX declares the version it stands for), else from the installed distribution's metadata. When
neither exists (a plan with IPEX only assumed installed) it is taken to import.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys

import torch

from . import gates

MODULE = "intel_extension_for_pytorch"


def major_minor(version: str) -> str:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match.group(1)}.{match.group(2)}" if match else version


def ipex_version() -> str | None:
    module = sys.modules.get(MODULE)
    if module is not None:
        return getattr(module, "__version__", None)
    try:
        return importlib.metadata.version(gates.IPEX_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def ipex_unusable() -> str | None:
    """None when IPEX imports against this torch (or cannot be checked because it is only assumed), else
    the reason."""
    version = ipex_version()
    if version is None or major_minor(version) == major_minor(torch.__version__):
        return None
    return (
        f"IPEX {version} is built for torch {major_minor(version)}.*, this is torch {torch.__version__}: it "
        "refuses to import (IPEX is archived; vllm-xpu-kernels, torch SDPA or Triton serve instead)"
    )
