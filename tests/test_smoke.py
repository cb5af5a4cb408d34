"""End-to-end smoke test of the foundation: platform, plugins, binding and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

import anyaccel
from anyaccel.ops.norm import NormSpec


def test_cpu_platform_and_reference_binding():
    assert anyaccel.get_platform().name == "cpu"
    rms = anyaccel.bind("norm.rms_norm", NormSpec(torch.float32, 8))
    x, w = torch.randn(3, 8), torch.ones(8)
    expected = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(rms(x, w, 1e-6), expected)


def test_info_json_has_design_keys():
    out = subprocess.run(
        [sys.executable, "-m", "anyaccel.cli.main", "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"ANYACCEL_PLUGINS": "none"},  # the built-in providers only: the reference wins
    )
    data = json.loads(out.stdout)
    assert {"anyaccel_version", "platform", "plugins", "ops"} <= data.keys()
    assert {
        "name",
        "vendor",
        "device_type",
        "device_name",
        "capability",
        "dist_backend",
        "simulated",
    } <= data["platform"].keys()
    assert data["ops"]["norm.rms_norm"]["selected"] == "reference.rms_norm"
