"""Registration and availability: the plugin is data until a kernel is selected, inactive with a reason
where rocm is not in question, and plans AITER kernels for gfx942/gfx950."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from anyaccel.cli.main import main as cli


def _info(capsys, *argv: str) -> dict:
    assert cli(["info", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def _plugin(data: dict) -> dict:
    return next(p for p in data["plugins"] if p["name"] == "anyaccel-rocm")


def test_inactive_with_a_reason_without_rocm(capsys):
    plugin = _plugin(_info(capsys))
    assert plugin["status"] == "inactive"
    assert "no ROCm" in plugin["reason"] and "--emulate rocm:" in plugin["reason"]


def test_simulated_gfx942_plans_aiter_and_e4m3fnuz(capsys):
    data = _info(capsys, "--simulate", "rocm:gfx942", "--with", "all")
    assert _plugin(data)["status"] == "active"
    assert data["platform"]["fp8_dtype"] == "float8_e4m3fnuz"
    for op in (
        "attention.prefill",
        "attention.decode",
        "moe.topk",
        "moe.experts",
        "norm.rms_norm",
        "quant.fp8_gemm",
    ):
        assert data["ops"][op]["provider"] == "aiter", op


def test_simulated_without_aiter_falls_back_with_the_reason(capsys):
    data = _info(capsys, "--simulate", "rocm:gfx950")
    assert data["platform"]["fp8_dtype"] == "float8_e4m3fn"
    rejected = [c for c in data["ops"]["norm.rms_norm"]["candidates"] if c["name"] == "aiter.rms_norm"]
    assert rejected and "amd-aiter" in rejected[0]["reason"]


def test_gfx90a_is_not_claimed(capsys):
    data = _info(capsys, "--simulate", "rocm:gfx90a", "--with", "all")
    rejected = next(c for c in data["ops"]["norm.rms_norm"]["candidates"] if c["name"] == "aiter.rms_norm")
    assert "gfx942" in rejected["reason"]


def test_importing_the_plugin_and_planning_import_no_aiter():
    """Registration and planning (even on a simulated gfx942 with AITER assumed) never import aiter."""
    code = (
        "import os, sys; import anyaccel_rocm, anyaccel\n"
        "os.environ.update(ANYACCEL_SIMULATE='rocm:gfx942', ANYACCEL_SIMULATE_WITH='all')\n"
        "anyaccel.reset(); from anyaccel import context; ctx = context.get(); ctx.platform\n"
        "[anyaccel.resolve(op) for op in ('attention.decode', 'moe.experts', 'norm.rms_norm')]\n"
        "assert not [m for m in sys.modules if m == 'aiter' or m.startswith('aiter.')], 'aiter imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYACCEL_")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
