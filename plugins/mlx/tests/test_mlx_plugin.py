"""The plugin as anyaccel sees it: `anyaccel info` status, platform detection, selection on Apple silicon."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import anyaccel
from anyaccel import context
from anyaccel.dispatch import resolve
from anyaccel_mlx.kernels import KERNELS

PLUGIN = "anyaccel-mlx"
MLX_OPS = sorted({k.op for k in KERNELS})


def _info(prelude: str = "") -> dict:
    """`anyaccel info --json` in a fresh interpreter, after running `prelude` there."""
    code = f"{prelude}\nimport sys\nfrom anyaccel.cli.main import main\nsys.exit(main(['info', '--json']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _plugin(data: dict) -> dict:
    return next(p for p in data["plugins"] if p["name"] == PLUGIN)


def test_active_on_linux_but_never_selected_for_real_work():
    data = _info()
    assert _plugin(data)["status"] == "active"
    assert data["platform"]["name"] == "cpu"
    for op in MLX_OPS:
        mlx = [c for c in data["ops"][op]["candidates"] if c["provider"] == "mlx"]
        assert mlx and not mlx[0]["accepted"] and "runs on mps" in mlx[0]["reason"], op


def test_inactive_with_a_reason_when_mlx_is_missing():
    hide = (
        "import importlib.metadata as md\n_version = md.version\n"
        "def version(name):\n    if name == 'mlx':\n        raise md.PackageNotFoundError(name)\n"
        "    return _version(name)\nmd.version = version"
    )
    plugin = _plugin(_info(hide))
    assert plugin["status"] == "inactive"
    assert "mlx is not installed" in plugin["reason"]


def test_simulated_apple_silicon_selects_mlx_kernels(monkeypatch):
    monkeypatch.setenv("ANYACCEL_SIMULATE", "mps:m3")
    anyaccel.reset()
    platform = context.get().platform
    assert (platform.name, platform.capability.name, platform.simulated) == ("mps", "m3", True)
    for op in MLX_OPS:
        assert resolve(op).selected.provider == "mlx", op


def test_mps_family_comes_from_the_plugin_and_probes_without_mlx_off_apple():
    code = (
        "import sys\nfrom anyaccel import context\nctx = context.get()\n"
        "print(ctx.family_owner['mps'].name, ctx.families['mps'].probe(), 'mlx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [PLUGIN, "None", "False"]


@pytest.mark.parametrize(
    ("softcap", "kv_dtype", "reason"),
    [
        (30.0, None, "soft-capping"),
        (0.0, "float8_e4m3fnuz", "e4m3fn only"),
    ],
)
def test_attention_rejects_what_mlx_cannot_do(monkeypatch, softcap, kv_dtype, reason):
    import torch

    from anyaccel.ops.attention import AttentionSpec

    monkeypatch.setenv("ANYACCEL_SIMULATE", "mps:m2")
    anyaccel.reset()
    spec = AttentionSpec(torch.float16, softcap=softcap, kv_dtype=kv_dtype and getattr(torch, kv_dtype))
    res = resolve("attention.decode", spec)
    mlx = next(c for c in res.candidates if c.kernel.provider == "mlx")
    assert not mlx.accepted and reason in mlx.reason
    assert res.selected.provider == "reference"
