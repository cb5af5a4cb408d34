"""`anyaccel check`: every kernel that can run here against the conformance kit's oracles."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from anyaccel import context
from anyaccel.conformance import check, junit, report
from anyaccel.conformance.runner import nothing_to_check
from anyaccel.conformance.selection import Selection
from anyaccel.conformance.targets import target_report
from anyaccel.provenance import header

from .main import add_emulate
from .progress import progress
from .table import render

HELP = "check every kernel that can run here against the conformance kit's oracles"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--op", help="only this op (e.g. attention.decode)")
    p.add_argument(
        "--provider",
        "-p",
        help="only this provider's kernels, wherever they can execute "
        "(e.g. triton with TRITON_INTERPRET=1, mlx on its CPU build)",
    )
    p.add_argument("--kernel", "-k", help="only this kernel (e.g. cpu.rms_norm), wherever it can execute")
    p.add_argument("--plugin", help="only this plugin's kernels (a distribution, e.g. anyaccel-cuda)")
    p.add_argument(
        "--targets",
        action="store_true",
        help="instead of running cases, import every registered target that can be imported here and check "
        "its signature against its op contract (for plugin authors' CI)",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML: one test case per kernel and case")
    p.add_argument(
        "--report",
        metavar="DIR",
        help="also write DIR/report.md, DIR/heatmap.png (kernels x case families) and DIR/results.json",
    )
    add_emulate(p)


def summary(reports) -> dict[str, Any]:
    kernels = [r.to_json() for r in reports]
    skipped: Counter[str] = Counter()
    for k in kernels:
        skipped.update(k["skip_reasons"])
    return {
        "cases": sum(k["cases"] for k in kernels),
        "passed": sum(k["passed"] for k in kernels),
        "failed": sum(k["failed"] for k in kernels),
        "skipped": sum(k["skipped"] for k in kernels),
        "skip_reasons": dict(skipped.most_common()),
        "kernels": kernels,
    }


def main(args: argparse.Namespace) -> int:
    if args.targets:
        return check_targets(args)
    reports = check(
        args.op,
        args.provider,
        progress=lambda xs: progress(xs, "checking", enabled=not args.json),
        kernel=args.kernel,
        plugin=args.plugin,
    )
    data = summary(reports)
    platform = context.get().platform
    if data["cases"] == 0:
        selection = Selection(args.op, args.provider, args.kernel, args.plugin)
        data["error"] = nothing_to_check(selection, platform)
    head = header()
    if args.junit:
        junit.write(reports, head, args.junit)
    if args.report:
        report.write(reports, data, head, Path(args.report))
    data = {"header": head, **data}
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_text(data)
    if data["cases"] == 0:
        print(f"anyaccel check: {data['error']}", file=sys.stderr)
        return 1
    return 1 if data["failed"] else 0


def print_text(data: dict[str, Any]) -> None:
    rows = [
        (
            k["op"],
            k["name"],
            k["device"],
            k["cases"],
            k["passed"],
            k["failed"],
            k["skipped"],
            f"{k['max_abs_err']:.2e}",
            f"{k['max_rel_err']:.2e}",
        )
        for k in data["kernels"]
    ]
    headers = ("op", "kernel", "device", "cases", "passed", "failed", "skipped", "max abs", "max rel")
    if rows:
        print(render(headers, rows))
    for k in data["kernels"]:
        by_detail: dict[str, list[str]] = {}
        for f in k["failures"]:
            by_detail.setdefault(f["detail"], []).append(f["case"])
        for detail, cases in by_detail.items():
            shown = ", ".join(cases[:3]) + (f", ... ({len(cases)} cases)" if len(cases) > 3 else "")
            print(f"FAIL {k['name']} [{shown}]: {detail}")
    if data["skip_reasons"]:
        print("\nskipped:")
        for reason, count in data["skip_reasons"].items():
            print(f"  {count:>4} x {reason}")
    if data["kernels"]:
        print(
            f"\n{data['passed']} passed, {data['failed']} failed, {data['skipped']} skipped "
            f"({len(data['kernels'])} kernels)"
        )


def check_targets(args: argparse.Namespace) -> int:
    results = target_report(Selection(args.op, args.provider, args.kernel, args.plugin))
    bad = [r for r in results if r["status"] == "error"]
    if args.json:
        print(json.dumps({"targets": results, "errors": len(bad)}, indent=2))
    else:
        rows = [(r["kernel"], r["plugin"], r["status"], r["detail"]) for r in results]
        print(render(("kernel", "plugin", "status", "detail"), rows, max_width=100))
        ok = sum(1 for r in results if r["status"] == "ok")
        print(f"\n{ok} ok, {len(bad)} errors, {len(results) - ok - len(bad)} not importable here")
    if not results:
        print("anyaccel check --targets: no kernel matched", file=sys.stderr)
        return 1
    return 1 if bad else 0
