"""The distribution's contract: entry point, plugin-API range, availability without importing the vendor
runtime, lazy kernel targets, the emulators only in emulation, and MATE's scheduler metadata prepared once
per forward (not per layer)."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import torch

import anyaccel
from anyaccel import context
from anyaccel.env import override
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.testing import tiny_checkpoint

VENDOR = ("mate", "torch_musa", "pymtml")


def test_entry_point_and_api_range():
    (ep,) = [e for e in md.entry_points(group="anyaccel.plugins") if e.value == "anyaccel_musa"]
    assert ep.dist.name == "anyaccel-musa"
    import anyaccel_musa

    assert anyaccel_musa.ANYACCEL_PLUGIN_API == ">=1,<2"


def test_inactive_with_the_reason_off_musa():
    plugins = {p.name: p for p in context.get().plugins.infos}
    musa = plugins["anyaccel-musa"]
    assert musa.status == "inactive" and "torch_musa is not installed" in musa.reason


def test_planning_imports_no_vendor_package():
    """`info --simulate musa:mp_31 --with all` in a fresh interpreter: every kernel planned, nothing of
    MATE, torch_musa or pymtml imported, and the plugin's kernel modules not imported either."""
    code = (
        "import sys, json, anyaccel.cli.main as m;"
        "m.main(['info', '--simulate', 'musa:mp_31', '--with', 'all', '--json']);"
        "print('IMPORTED', [n for n in sys.modules if n.split('.')[0] in ('mate', 'torch_musa', 'pymtml')"
        " or n.startswith('anyaccel_musa.kernels.') and n != 'anyaccel_musa.kernels.supports'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("IMPORTED []"), out[-500:]
    assert '"provider": "musa"' in out


def test_emulators_only_while_emulating():
    with override({"ANYACCEL_EMULATE": "musa:mp_31"}):
        ctx = context.get()
        assert ctx.platform.emulated and ctx.emulators is not None
        assert {"mate", "mate.deep_gemm", "anyaccel_musa.musa_ops"} <= set(ctx.emulators.modules)
        assert sys.modules["mate"].__name__ == "anyaccel_musa.emulators.mate"
    assert "mate" not in sys.modules


def test_scheduler_metadata_is_prepared_once_per_forward(tmp_path, monkeypatch):
    """Every layer's MATE call reuses the forward's planned metadata: get_scheduler_metadata runs once per
    forward and bound kernel (the prompt forward plans both prefill bindings, with and without a cached
    prefix), never per layer, and each attention call receives metadata."""
    model_dir = tiny_checkpoint("LlamaForCausalLM", tmp_path / "m", dtype=torch.bfloat16, num_hidden_layers=3)
    calls = {"schedule": 0, "attention": 0, "with_metadata": 0}
    with override({"ANYACCEL_EMULATE": "musa:mp_31"}):
        assert context.get().platform.emulated
        emulated = sys.modules["mate"]

        def counted(fn, key):
            def wrapper(*args, **kwargs):
                calls[key] += 1
                if key == "attention" and kwargs.get("scheduler_metadata") is not None:
                    calls["with_metadata"] += 1
                return fn(*args, **kwargs)

            return wrapper

        for name, key in (
            ("get_scheduler_metadata", "schedule"),
            ("flash_attn_varlen_func", "attention"),
            ("flash_attn_with_kvcache", "attention"),
        ):
            monkeypatch.setattr(emulated, name, counted(getattr(emulated, name), key))
        llm = LLM(model_dir, dtype=torch.bfloat16, progress=False)
        llm.generate([[3, 14, 15, 92, 65], [2, 71]], SamplingParams(max_tokens=3, ignore_eos=True))
    anyaccel.reset()
    forwards, layers = 3, 3  # one prompt forward, two decode steps
    assert calls["attention"] == forwards * layers
    assert 0 < calls["schedule"] <= forwards + 1
    assert calls["with_metadata"] == calls["attention"]
