"""The NVIDIA lane's results as rows for docs/hardware-results.md (ci/lanes/cuda.sh calls it last).

    python ci/lanes/cuda_report.py OUT_DIR COMMIT

Reads what the lane left in OUT_DIR (steps.tsv, info.json, conformance-*.json, bench-cuda.json, run-*.json)
and writes OUT_DIR/results.md: one table row per figure, in that document's columns (date, device, commit,
what, command, result), then the steps that failed, timed out or were skipped, with why. Missing files are
reported as missing, never invented; a dry run's rows say "dry run" and hold no figure.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

CHECK = "anyaccel check --plugin anyaccel-cuda"
BENCH = "python ci/lanes/cuda_bench.py"


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def steps(out: Path) -> list[dict[str, str]]:
    """The lane's steps.tsv: name, status (ok, failed rc=N, timed out, skipped: why), seconds, command."""
    rows = []
    path = out / "steps.tsv"
    for line in path.read_text().splitlines() if path.exists() else []:
        name, status, secs, command = (line.split("\t") + ["", "", ""])[:4]
        rows.append({"name": name, "status": status, "seconds": secs, "command": command})
    return rows


def conformance_rows(out: Path) -> list[tuple[str, str, str]]:
    rows = []
    for path in sorted(out.glob("conformance-*.json")):
        report = _load(path)
        which = path.stem.removeprefix("conformance-")
        op = which.removeprefix("cuda-")
        command = f"{CHECK} --op {op}" if which.startswith("cuda-") else f"anyaccel check --provider {which}"
        if not isinstance(report, dict):
            rows.append((f"conformance ({path.stem})", command, "no report (see steps)"))
            continue
        total = f"{report['passed']} passed, {report['failed']} failed, {report['skipped']} skipped"
        rows.append((f"conformance, all kernels ({which})", command, total))
        for k in report.get("kernels", []):
            result = f"{k['passed']} passed, {k['failed']} failed, {k['skipped']} skipped"
            if k.get("failures"):
                result += f"; failures: {'; '.join(str(f)[:120] for f in k['failures'][:3])}"
            rows.append((f"conformance {k['name']} ({k['op']})", command, result))
    return rows


def bench_result(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"error: {row['error']}"
    parts = [f"{row['ms']:.3g} ms"]
    if row.get("gbps") is not None:
        parts.append(f"{row['gbps']:.0f} GB/s = {row['of_copy']:.2f} of measured copy")
        if row.get("of_peak") is not None:
            parts[-1] += f", {row['of_peak']:.2f} of HBM peak"
    if row.get("speed_vs_sdpa") is not None:
        parts.append(f"SDPA flash {row['sdpa_flash_ms']:.3g} ms (x{row['speed_vs_sdpa']:.2f})")
    if row.get("of_roofline") is not None:
        parts.append(f"{row['tflops']:.3g} TFLOP/s, {row['of_roofline']:.2f} of roofline")
    if row.get("speed_vs_scaled_mm") is not None:
        parts.append(f"x{row['speed_vs_scaled_mm']:.2f} vs tensor-wise _scaled_mm")
    return "; ".join(parts)


def bench_rows(out: Path) -> list[tuple[str, str, str]]:
    bench = _load(out / "bench-cuda.json")
    if not isinstance(bench, dict):
        return []
    rows = [("measured device copy bandwidth", BENCH, f"{bench['copy_gbps']:.0f} GB/s")]
    rows += [(f"{r['op']} {r['shape']}: {r['kernel']}", BENCH, bench_result(r)) for r in bench["rows"]]
    for goal, verdicts in bench.get("goals", {}).items():
        for shape, (value, met) in verdicts.items():
            rows.append((f"goal {goal}: {shape}", BENCH, f"{_fmt(value)} ({'met' if met else 'NOT met'})"))
    return rows


def run_rows(out: Path) -> list[tuple[str, str, str]]:
    rows = []
    for path in sorted(out.glob("run-*.json")):
        report = _load(path)
        what = f"anyaccel run {path.stem.removeprefix('run-')} vs transformers"
        if not isinstance(report, dict):
            rows.append((what, "anyaccel run --compare-transformers", "no report (see steps)"))
            continue
        cmp = report.get("compare_transformers") or {}
        result = (
            f"ok={cmp.get('ok')}, max abs logit diff {_fmt(cmp.get('max_abs_logit_diff'))} "
            f"of {_fmt(cmp.get('max_abs_logit'))}"
        )
        rows.append((what, "anyaccel run --dtype bfloat16 --compare-transformers", result))
    return rows


def render(out: Path, commit: str) -> str:
    info = _load(out / "info.json") or {}
    platform = info.get("platform", {})
    device = f"{platform.get('device_name', 'unknown device')} (cuda {platform.get('capability', '?')})"
    date = datetime.date.today().isoformat()
    done = steps(out)
    dry = any(s["name"] == "mode" and s["status"] == "dry run" for s in done)
    figures = [] if dry else conformance_rows(out) + bench_rows(out) + run_rows(out)
    lines = [
        f"### {device}, {date}, commit {commit}{' (dry run: no figures)' if dry else ''}",
        "",
        "| date | device | commit | what | command | result |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {date} | {device} | {commit} | {w} | `{c}` | {r} |" for w, c, r in figures]
    unfinished = [s for s in done if s["status"] not in ("ok", "dry run")]
    if unfinished:
        lines += ["", "Steps not completed:", ""]
        lines += [f"- {s['name']}: {s['status']} (`{s['command']}`)" for s in unfinished]
    return "\n".join(lines) + "\n"


def main() -> int:
    out, commit = Path(sys.argv[1]), sys.argv[2]
    text = render(out, commit)
    (out / "results.md").write_text(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
