"""The NVIDIA GPU lane (ci/lanes/cuda.sh) without a GPU: its syntax, a review of what it may do on a machine
with no network and its own torch, its dry run (every step that needs no GPU, on an emulated device), and
the report it writes for docs/hardware-results.md from a device run's files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LANE = ROOT / "ci" / "lanes" / "cuda.sh"


def _script() -> str:
    return LANE.read_text()


def test_the_lane_is_valid_bash():
    subprocess.run(["bash", "-n", str(LANE)], check=True)
    if shutil.which("shellcheck"):  # where it is installed; the review below covers its main rule here
        subprocess.run(["shellcheck", str(LANE)], check=True)


def test_the_lane_needs_no_network_and_keeps_the_machines_torch():
    body = _script()
    run_part = body.split("--fetch-wheels)", 1)[0] + body.split("exit 0 ;;", 1)[1]
    assert ".venv" not in run_part, "the lane installs into the machine's own Python"
    assert not re.search(r"\b(curl|wget|git clone|pip download)\b", run_part), (
        "no network outside --fetch-wheels"
    )
    assert "--no-index" in run_part and "--no-deps" in run_part, "installs take nothing from an index"
    assert "torch==" not in body and "--index-url https://download.pytorch.org" not in body, (
        "torch is not pinned"
    )
    assert body.startswith("#!/usr/bin/env bash") and "set -uo pipefail" in body
    # shellcheck's SC2086 for the variables that hold paths and commands: never expanded unquoted
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', body, flags=re.S)
    for line in bare.splitlines():
        if re.match(r"\s*(#|[A-Z_]+=)", line):  # comments; assignments do not split words
            continue
        assert not re.search(r"\$\{?(OUT|PY|WHEELS|COMMIT|BUDGET)\b", line.split(" # ")[0]), line
    assert "timeout --kill-after" in body and "BUDGET" in body, "every step runs under the lane's time budget"


@pytest.mark.slow
def test_dry_run_runs_every_step_that_needs_no_gpu(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "CUDA_LANE_COMMIT": "abc1234"}
    env.pop("ANYACCEL_EMULATE", None)
    done = subprocess.run(
        ["bash", str(LANE), "--dry-run"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    steps = {
        line.split("\t")[0]: line.split("\t")[1] for line in (tmp_path / "steps.tsv").read_text().splitlines()
    }
    for name in ("python", "install", "imports", "info", "info-check", "bench", "tiny-qwen3", "report"):
        assert steps.get(name) == "ok", (
            name,
            steps.get(name),
            (tmp_path / "logs" / f"{name}.log").read_text(),
        )
    checks = [name for name in steps if name.startswith("check-")]
    assert "check-attention.decode" in checks and "check-moe.experts" in checks and "check-triton" in checks
    assert all(steps[name] == "skipped: dry run" for name in checks)
    bench = json.loads((tmp_path / "bench-cuda.json").read_text())
    assert bench["emulated"] and {r["op"] for r in bench["rows"]} == {
        "attention.decode",
        "attention.prefill",
        "moe.experts",
        "quant.fp8_gemm",
    }
    assert not [r for r in bench["rows"] if "error" in r]
    results = (tmp_path / "results.md").read_text()
    assert "commit abc1234 (dry run: no figures)" in results and "| date | device | commit |" in results


def test_the_report_has_a_row_per_figure_and_names_unfinished_steps(tmp_path):
    info = {"platform": {"device_name": "NVIDIA H200", "capability": "sm_90"}}
    (tmp_path / "info.json").write_text(json.dumps(info))
    kernel = {"name": "flashinfer.decode", "op": "attention.decode", "passed": 9, "failed": 1, "skipped": 2}
    kernel["failures"] = ["case 3: max abs err 0.5"]
    check = {"passed": 9, "failed": 1, "skipped": 2, "kernels": [kernel]}
    (tmp_path / "conformance-cuda-attention.decode.json").write_text(json.dumps(check))
    decode = {"op": "attention.decode", "shape": "B=32 ctx=4096", "kernel": "flashinfer.decode", "ms": 0.5}
    decode.update(gbps=4000.0, of_copy=0.9, of_peak=0.83)
    prefill = {"op": "attention.prefill", "shape": "B=4 S=4096", "kernel": "fa4.prefill", "error": "boom"}
    bench = {"copy_gbps": 4400.0, "rows": [decode, prefill]}
    bench["goals"] = {"decode_of_copy_at_least_0.8": {"B=32 ctx=4096": [0.9, True]}}
    (tmp_path / "bench-cuda.json").write_text(json.dumps(bench))
    run = {"compare_transformers": {"ok": True, "max_abs_logit_diff": 0.03, "max_abs_logit": 12.0}}
    (tmp_path / "run-moe-demo.json").write_text(json.dumps(run))
    (tmp_path / "steps.tsv").write_text(
        "python\tok\t1\tpython -c\ncheck-triton\ttimed out after 150s\t150\tx\n"
    )
    report = subprocess.run(
        [sys.executable, str(ROOT / "ci" / "lanes" / "cuda_report.py"), str(tmp_path), "abc1234"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = (tmp_path / "results.md").read_text()
    assert text == report.stdout
    device = "| NVIDIA H200 (cuda sm_90) | abc1234 |"
    assert f"{device} conformance flashinfer.decode (attention.decode) |" in text
    assert "9 passed, 1 failed, 2 skipped; failures: case 3" in text
    assert "`anyaccel check --plugin anyaccel-cuda --op attention.decode`" in text
    assert "4000 GB/s = 0.90 of measured copy, 0.83 of HBM peak" in text
    assert "fa4.prefill | `python ci/lanes/cuda_bench.py` | error: boom |" in text
    assert "goal decode_of_copy_at_least_0.8: B=32 ctx=4096" in text and "0.9 (met)" in text
    assert (
        "anyaccel run moe-demo vs transformers" in text and "ok=True, max abs logit diff 0.03 of 12" in text
    )
    assert "- check-triton: timed out after 150s" in text
