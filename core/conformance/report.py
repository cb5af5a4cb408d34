"""`anyaccel check --report DIR`: what a vendor publishes from its CI lane.

DIR/report.md   header (platform, versions, commit, date), one row per kernel, skip reasons, failures
DIR/heatmap.png kernels x case families (compute dtypes, large cases apart): green where every case that ran
                passed, red where one failed, grey where every case was skipped (the reasons are in the
                markdown); each cell is annotated passed/failed/skipped
DIR/results.json the same data as `anyaccel check --json`, with the header
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runner import KernelReport

PASSED, FAILED, SKIPPED, ABSENT = 0, 1, 2, 3
COLOURS = ("#4caf50", "#e53935", "#bdbdbd", "#ffffff")


def families(reports: Sequence[KernelReport]) -> list[str]:
    seen = {c.family for r in reports for c in r.results}
    return sorted(seen, key=lambda f: (f.endswith("large"), f))


def cell(report: KernelReport, family: str) -> tuple[int, str]:
    """(state, "passed/failed/skipped") of one kernel on one case family."""
    mine = [c for c in report.results if c.family == family]
    counts = [sum(c.status == s for c in mine) for s in ("passed", "failed", "skipped")]
    if not mine:
        return ABSENT, ""
    state = FAILED if counts[1] else PASSED if counts[0] else SKIPPED
    return state, "/".join(map(str, counts))


def markdown(summary: dict[str, Any], header: dict[str, Any]) -> str:
    p, v = header["platform"], header["versions"]
    mode = " (emulated: vendor APIs replaced by plain-torch emulators)" if p.get("emulated") else ""
    plugins = ", ".join(f"{k} {val}" for k, val in v["plugins"].items()) or "none"
    lines = [
        f"# Conformance: {p['name']} {p['capability']}{mode}",
        "",
        f"- device: {p['device_name']}",
        f"- anyaccel {v['anyaccel']}, torch {v['torch']}, python {v['python']}; plugins: {plugins}",
        f"- commit: {header['commit'] or 'unknown'}; date: {header['date']}",
        f"- result: **{summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped** "
        f"over {len(summary['kernels'])} kernels",
        "",
        "![kernels x case families](heatmap.png)",
        "",
        "| op | kernel | device | passed | failed | skipped | max abs err | max rel err |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for k in summary["kernels"]:
        lines.append(
            f"| {k['op']} | `{k['name']}` | {k['device']} | {k['passed']} | {k['failed']} | {k['skipped']} | "
            f"{k['max_abs_err']:.2e} | {k['max_rel_err']:.2e} |"
        )
    if summary["skip_reasons"]:
        lines += ["", "## Skipped cases, by reason", "", "| cases | reason |", "| ---: | --- |"]
        lines += [f"| {n} | {reason} |" for reason, n in summary["skip_reasons"].items()]
    failures = [(k["name"], f) for k in summary["kernels"] for f in k["failures"]]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- `{name}` [{f['case']}]: {f['detail']}" for name, f in failures]
    return "\n".join(lines) + "\n"


def heatmap(reports: Sequence[KernelReport], header: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cols = families(reports)
    rows = [r.kernel.name for r in reports]
    cells = [[cell(r, f) for f in cols] for r in reports]
    fig, ax = plt.subplots(figsize=(max(6.0, 2.5 + 1.3 * len(cols)), 1.5 + 0.32 * max(1, len(rows))))
    ax.imshow(
        [[state for state, _ in row] for row in cells] or [[ABSENT]],
        cmap=ListedColormap(COLOURS),
        vmin=0,
        vmax=len(COLOURS) - 1,
        aspect="auto",
    )
    for i, row in enumerate(cells):
        for j, (_, text) in enumerate(row):
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    p = header["platform"]
    commit = (header["commit"] or "unknown")[:10]
    mode = ", emulated" if p.get("emulated") else ""
    ax.set_title(
        f"{p['name']} {p['capability']}{mode} @ {commit}\ncells: passed/failed/skipped cases; "
        "green: all that ran passed, red: a failure, grey: all skipped",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(
    reports: Sequence[KernelReport], summary: dict[str, Any], header: dict[str, Any], out: Path
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"header": header, **summary}, indent=2) + "\n")
    (out / "report.md").write_text(markdown(summary, header))
    heatmap(reports, header, out / "heatmap.png")
