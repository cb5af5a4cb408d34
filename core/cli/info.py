"""`anyaccel info`: the platform, the plugins and the kernel each op binds to."""

from __future__ import annotations

import argparse
import json
from typing import Any

import anyaccel
from anyaccel import context
from anyaccel.dispatch import resolve

from .main import add_emulate, add_simulate
from .table import render

HELP = "show the platform, the plugins and the kernel selected for every op"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_simulate(p)
    add_emulate(p)


def report() -> dict[str, Any]:
    ctx = context.get()
    platform = ctx.platform  # detection may mark plugins failed: do it before listing them
    ops = {name: resolve(name, platform=platform).to_json() for name in sorted(ctx.ops)}
    return {
        "anyaccel_version": anyaccel.__version__,
        "platform": platform.to_json(),
        "probe_errors": ctx.detection.probe_errors,
        "warnings": ctx.warnings,
        "assumed_packages": ctx.assumed,
        "plugins": [i.to_json() for i in ctx.plugins.infos if not i.builtin],
        "builtins": [i.to_json() for i in ctx.plugins.infos if i.builtin],
        "ops": ops,
    }


def main(args: argparse.Namespace) -> int:
    data = report()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    p = data["platform"]
    sim = "  [simulated]" if p["simulated"] else "  [emulated]" if p["emulated"] else ""
    print(f"anyaccel {data['anyaccel_version']}")
    print(
        f"platform: {p['name']} ({p['vendor']}) {p['device_name']} x{p['device_count']}, "
        f"capability {p['capability']}, dist {p['dist_backend']}, fp8 {p['fp8_dtype'] or '-'}, "
        f"triton {'yes' if p['triton'] else 'no'}{sim}"
    )
    print(f"  features: {', '.join(p.get('features', ())) or 'none'}")
    for note in p["notes"]:
        print(f"  {note}")
    if data["assumed_packages"] and p["simulated"]:
        print(f"  planning as if installed: {', '.join(data['assumed_packages'])}")
    for family, why in data["probe_errors"].items():
        print(f"  probe {family} failed: {why}")
    print()
    plugins = data["plugins"] + data["builtins"]
    plugin_rows = [(i["name"], i["version"], i["status"], i["reason"]) for i in plugins]
    print(render(("plugin", "version", "status", "reason"), plugin_rows))
    print()
    rows: list[tuple[str, ...]] = []
    for op, r in data["ops"].items():
        rejected = sum(1 for c in r["candidates"] if not c["accepted"])
        rows.append(
            (
                op,
                r["selected"] or "-",
                r["provider"] or "-",
                r.get("verified", ""),
                f"{rejected} rejected" if rejected else "",
                r.get("error", ""),
            )
        )
    print(render(("op", "kernel", "provider", "verified", "others", "error"), rows))
    print("\n`anyaccel explain OP` shows why each candidate was accepted or rejected.")
    return 0
