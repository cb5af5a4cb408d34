"""`anyaccel bench`: the structure of its JSON and chart (no timing assertions: CI machines are noisy)."""

from __future__ import annotations

import json

import pytest
import torch

import anyaccel
from anyaccel.bench import measure_overhead, sweeps
from anyaccel.cli.main import main
from anyaccel.ops.norm import NormSpec

SMALL_SWEEP = (1, 8)


@pytest.fixture(autouse=True)
def small_sweep(monkeypatch):
    """Two token counts instead of the full sweep: these tests check structure, not speed."""
    monkeypatch.setattr(sweeps, "TOKENS", SMALL_SWEEP)


def bench_json(capsys, *argv: str) -> dict:
    code = main(["bench", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_bench_one_op_reports_every_kernel_with_times_and_ratios(capsys, tmp_path):
    chart = tmp_path / "bench.png"
    data = bench_json(capsys, "--op", "norm.rms_norm", "--plot", str(chart))
    assert data["platform"]["name"] == "cpu"
    assert {"date", "commit", "platform", "versions"} <= data["header"].keys()  # as check's results
    assert "overhead" not in data and "startup" not in data
    rows = data["kernels"]
    assert {r["op"] for r in rows} == {"norm.rms_norm"}
    assert len({r["shape"] for r in rows}) == len(SMALL_SWEEP)
    assert {"reference.rms_norm"} <= {r["kernel"] for r in rows}
    for r in rows:
        assert set(r) == {
            "op",
            "shape",
            "kernel",
            "provider",
            "median_us",
            "bytes",
            "gb_per_s",
            "tflop_per_s",
            "speedup_vs_reference",
            "error",
        }
        assert r["error"] == "" and r["median_us"] > 0 and r["bytes"] > 0 and r["gb_per_s"] > 0
    assert all(r["speedup_vs_reference"] == 1.0 for r in rows if r["provider"] == "reference")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_counts_in_place_outputs(capsys):
    """add_rms_norm returns nothing: its bytes are x, residual and weight read plus x and residual written."""
    rows = bench_json(capsys, "--op", "norm.add_rms_norm")["kernels"]
    first = next(r for r in rows if r["shape"] == f"T={SMALL_SWEEP[0]} H=4096")
    assert first["bytes"] == 4 * (4 * 4096 * SMALL_SWEEP[0] + 4096)  # float32 on the CPU


def test_bench_startup_reports_medians(capsys):
    s = bench_json(capsys, "--op", "startup", "--runs", "1")["startup"]
    assert set(s) == {"total_ms", "import_ms", "plugins_and_detection_ms", "resolve_ms", "runs_ms", "goal_ms"}
    assert len(s["runs_ms"]) == 1 and s["total_ms"] > 0 and s["goal_ms"] == 150.0


def test_overhead_compares_the_bound_call_with_the_same_function():
    o = measure_overhead(calls=50, rounds=3).to_json()
    selected = anyaccel.resolve("norm.rms_norm", NormSpec(torch.float32, 64)).selected
    assert o["op"] == "norm.rms_norm" and o["kernel"] == selected.name
    assert (
        o["bound_ns"] > 0
        and o["direct_ns"] > 0
        and o["ratio"] == pytest.approx(o["bound_ns"] / o["direct_ns"])
    )
    assert (o["calls_per_round"], o["rounds"], o["goal"]) == (50, 3, 1.05)


@pytest.mark.parametrize(
    ("argv", "simulate", "message"),
    [
        (
            ["--op", "overhead", "--plot", "x.png"],
            "",
            "--plot charts kernel timings; it does not apply to --op overhead",
        ),
        (["--op", "norm.rms_norm"], "cuda:sm_90", "cannot use a simulated platform"),
        (["--op", "norm.rmsnorm"], "", "unknown op 'norm.rmsnorm'"),
    ],
)
def test_bench_usage_errors_exit_2(capsys, monkeypatch, argv, simulate, message):
    if simulate:
        monkeypatch.setenv("ANYACCEL_SIMULATE", simulate)
    assert main(["bench", *argv]) == 2
    assert message in capsys.readouterr().err


def test_bench_model_interleaves_the_engines_and_reports_ratios(tmp_path):
    from anyaccel.models.bench import bench_model, format_report
    from anyaccel.models.testing import tiny_checkpoint

    model_dir = tiny_checkpoint("Qwen3MoeForCausalLM", tmp_path)
    result = bench_model(model_dir, batch_sizes=(2,), input_len=8, output_len=4, repeats=1)
    [run] = result["runs"]
    ours, theirs = run["ours"], run["transformers"]
    assert run["batch"] == 2 and run["speedup"] == ours["tokens_per_s"] / theirs["tokens_per_s"]
    assert ours["peak_memory_bytes"] > 0 and theirs["peak_memory_bytes"] > 0
    assert "best of 1 interleaved runs" in format_report(result)
