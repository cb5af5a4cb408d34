"""`anyaccel check`: every kernel that can run here against the conformance kit's oracles."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from anyaccel.conformance import check

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
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def summary(reports) -> dict[str, Any]:
    kernels = [r.to_json() for r in reports]
    return {
        "cases": sum(k["cases"] for k in kernels),
        "passed": sum(k["passed"] for k in kernels),
        "failed": sum(k["failed"] for k in kernels),
        "skipped": sum(k["skipped"] for k in kernels),
        "kernels": kernels,
    }


def main(args: argparse.Namespace) -> int:
    reports = check(
        args.op, args.provider, progress=lambda xs: progress(xs, "checking", enabled=not args.json)
    )
    data = summary(reports)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
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
        print(
            render(
                ("op", "kernel", "device", "cases", "passed", "failed", "skipped", "max abs", "max rel"), rows
            )
        )
        for k in data["kernels"]:
            for f in k["failures"]:
                print(f"FAIL {k['name']} [{f['case']}]: {f['detail']}")
        print(
            f"\n{data['passed']} passed, {data['failed']} failed, {data['skipped']} skipped "
            f"({len(data['kernels'])} kernels)"
        )
    if not data["kernels"]:
        print("anyaccel check: no kernel matched", file=sys.stderr)
        return 1
    return 1 if data["failed"] else 0
