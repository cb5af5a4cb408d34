"""Registration is data: importing the plugin imports no vendor library and touches no device; the plugin
says when it is inactive and why; every target imports and matches its contract under emulation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from anyaccel import context
from anyaccel.env import override

PY = sys.executable
VENDORS = ("flashinfer", "flash_attn", "deep_gemm")


def test_import_and_registration_import_no_vendor_module_and_no_cuda():
    code = (
        "import sys, anyaccel_cuda, torch\n"
        "kernels = anyaccel_cuda.anyaccel_kernels(); emulators = anyaccel_cuda.anyaccel_emulators()\n"
        "anyaccel_cuda.anyaccel_available()\n"
        f"vendors = sorted(m for m in sys.modules if m.split('.')[0] in {VENDORS!r})\n"
        "mine = sorted(m for m in sys.modules if m.startswith('anyaccel_cuda.') and 'emulators.' in m)\n"
        "print(len(kernels), len(emulators), vendors, mine, torch.cuda.is_initialized())\n"
    )
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, check=True).stdout.split(
        maxsplit=2
    )
    assert int(out[0]) > 20 and int(out[1]) == 4
    assert out[2].strip() == "[] [] False"


def _status(env: dict) -> dict:
    with override({"ANYACCEL_SIMULATE": None, "ANYACCEL_EMULATE": None, "ANYACCEL_PLATFORM": None, **env}):
        info = next(i for i in context.get().plugins.infos if i.name == "anyaccel-cuda")
        return {"status": info.status, "reason": info.reason}


def test_inactive_without_cuda_with_the_reason():
    import torch

    if torch.version.cuda is not None:
        pytest.skip("a CUDA build of torch: the plugin is active")
    got = _status({})
    assert got == {"status": "inactive", "reason": "no CUDA: torch.version.cuda is None (CPU build of torch)"}
    assert _status({"ANYACCEL_SIMULATE": "rocm:gfx942"})["status"] == "inactive"


@pytest.mark.parametrize(
    "env",
    [
        {"ANYACCEL_SIMULATE": "cuda:sm_110"},
        {"ANYACCEL_EMULATE": "cuda:sm_121"},
        {"ANYACCEL_PLATFORM": "cuda"},
    ],
)
def test_active_whenever_cuda_is_the_platform_asked_for(env):
    assert _status(env)["status"] == "active"


def test_every_target_imports_and_matches_its_contract_under_emulation():
    """What `anyaccel check --targets --plugin anyaccel-cuda --emulate cuda:sm_100` reports."""
    from anyaccel.conformance.selection import Selection
    from anyaccel.conformance.targets import target_report

    with override({"ANYACCEL_EMULATE": "cuda:sm_100"}):
        rows = target_report(Selection(plugin="anyaccel-cuda"))
    assert len(rows) >= 23 and all(r["status"] == "ok" for r in rows), rows
