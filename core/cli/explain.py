"""`anyaccel explain OP`: every candidate kernel for an op, accepted or rejected, with its reason."""

from __future__ import annotations

import argparse
import json

from anyaccel import context
from anyaccel.dispatch import resolve

from .main import add_simulate
from .table import render

HELP = "list every candidate kernel for an op with the reason it was accepted or rejected"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("op", help="op name, e.g. attention.decode")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_simulate(p)


def main(args: argparse.Namespace) -> int:
    ctx = context.get()
    res = resolve(args.op, platform=ctx.platform)
    if args.json:
        print(
            json.dumps(
                {"op": args.op, "platform": ctx.platform.to_json(), "spec": repr(res.spec), **res.to_json()},
                indent=2,
            )
        )
        return 0
    p = ctx.platform
    print(f"{args.op} on {p.name} {p.capability}{' [simulated]' if p.simulated else ''}")
    print(f"spec: {res.spec}\n")
    rows = [
        ("*" if c.accepted else " ", i + 1, c.kernel.name, c.kernel.priority, c.reason)
        for i, c in enumerate(res.candidates)
    ]
    print(render(("", "rank", "kernel", "priority", "reason"), rows, max_width=100))
    print()
    print(f"selected: {res.selected.name}" if res.selected else f"no kernel: {res.error}")
    return 0
