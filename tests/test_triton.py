"""The portable Triton provider: every kernel through the conformance kit under the Triton interpreter,
selection on Triton platforms only, lazy registration, and the tuning tables / autotune cache."""

from __future__ import annotations

import os

# Kernel modules decorate with triton.jit when first selected; the interpreter flag must be set before, and
# already at collection, where the kit's parametrisation asks which off-platform kernels can execute.
os.environ["TRITON_INTERPRET"] = "1"

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import pytest  # noqa: E402

from anyaccel import context  # noqa: E402
from anyaccel.cli.main import main  # noqa: E402
from anyaccel.hookspecs import hookimpl  # noqa: E402
from anyaccel.plugins import PluginInfo  # noqa: E402
from anyaccel.providers.triton import KERNELS  # noqa: E402
from anyaccel.providers.triton.tuning import Tuning, cache_path  # noqa: E402


@pytest.mark.anyaccel_conformance(provider="triton")
def test_conformance(anyaccel_case):
    """Large cases are skipped by the kit under the interpreter; the GPU lane (ci/lanes/gpu.sh) runs them."""
    anyaccel_case.assert_passes()


def test_every_op_family_has_a_triton_kernel():
    ops = {k.op for k in KERNELS}
    # no Triton GEMM for linear.gemm: torch's matmul is the vendor BLAS everywhere, and a portable kernel
    # would rank above it
    untouched = {op for op in context.get().ops if op.startswith("comm.")} | {"linear.gemm"}
    assert ops == set(context.get().ops) - untouched
    assert all(k.needs_triton and k.requires == ("triton",) and k.factory for k in KERNELS)
    assert {k.kv_layout for k in KERNELS if k.op.startswith("attention.")} == {"NHD", "HND"}


def _explain(capsys, monkeypatch, simulate: str) -> dict:
    monkeypatch.setenv("ANYACCEL_PLUGINS", "none")  # no vendor plugin offers attention.decode
    assert main(["explain", "attention.decode", "--simulate", simulate, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_explain_selects_triton_decode_on_cuda(capsys, monkeypatch):
    assert _explain(capsys, monkeypatch, "cuda:sm_90")["selected"] == "triton.paged_decode"


@pytest.mark.parametrize("simulate", ["cpu", "npu:ascend910b"])
def test_explain_never_selects_triton_where_it_does_not_run(capsys, monkeypatch, simulate):
    result = _explain(capsys, monkeypatch, simulate)
    assert result["selected"] == "reference.decode"
    triton = [c for c in result["candidates"] if c["provider"] == "triton"]
    assert triton and all("where Triton runs" in c["reason"] for c in triton)


def test_fp8_kernels_need_the_devices_fp8_type(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setenv("ANYACCEL_PLUGINS", "none")
    from anyaccel.dispatch import resolve
    from anyaccel.ops.quant import GemmSpec

    families = context.get().families
    mi300 = families["rocm"].simulate("gfx942")
    res = resolve("quant.fp8_gemm", GemmSpec(scales="block", fp8_dtype="float8_e4m3fn"), mi300)
    assert "float8_e4m3fn is not computed by this device" in res.candidates[0].reason
    res = resolve("quant.fp8_gemm", GemmSpec(scales="block", fp8_dtype="float8_e4m3fnuz"), mi300)
    assert res.selected.name == "triton.fp8_gemm"


def test_registration_does_not_import_triton():
    code = (
        "import sys, anyaccel; from anyaccel import context; context.get(); "
        "assert 'triton' not in sys.modules, 'registration imported triton'"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def _cuda_h100():
    return context.get().families["cuda"].simulate("sm_90")


def test_tuning_buckets_and_capability_ranges(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    tuning = Tuning("triton.varlen_prefill", _cuda_h100())
    assert tuning.pick(4096)["num_stages"] == 3  # the sm_90..sm_121 entry, narrower than "*"
    sm80 = Tuning("triton.varlen_prefill", context.get().families["cuda"].simulate("sm_80"))
    assert sm80.pick(4096)["num_stages"] == 2
    gemm = Tuning("triton.fp8_gemm", _cuda_h100())
    assert [gemm.bucket(m) for m in (1, 16, 17, 128, 129)] == ["16", "16", "128", "128", "*"]


def test_a_plugin_overrides_tuning_for_its_hardware(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    plugin = types.ModuleType("tuning_plugin")

    @hookimpl
    def anyaccel_tuning(platform):
        return {
            "triton.paged_decode": {
                "*": {"BLOCK_N": 32, "MIN_SPLIT": 128, "TARGET_PROGRAMS": 512, "MERGE_HEADS": 4}
            }
        }

    plugin.anyaccel_tuning = anyaccel_tuning
    plugins = context.get().plugins
    plugins.manager.register(plugin, name="tuning_plugin")
    plugins.infos.append(PluginInfo("tuning_plugin", "1", module=plugin))
    assert Tuning("triton.paged_decode", _cuda_h100()).pick(4096)["TARGET_PROGRAMS"] == 512


def test_autotune_result_is_cached_on_disk_per_device(monkeypatch, tmp_path):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    platform = _cuda_h100()
    timed = []

    def bench(config):
        timed.append(config)
        return config["BLOCK_N"]  # the narrower tile "wins"

    first = Tuning("triton.fp8_gemm", platform).pick(8, bench)
    assert len(timed) == 2 and first["BLOCK_N"] == 64
    assert Tuning("triton.fp8_gemm", platform).pick(8, bench) == first and len(timed) == 2  # read from disk
    assert json.loads(cache_path(platform).read_text())["triton.fp8_gemm|16"] == first
