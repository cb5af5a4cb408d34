"""`anyaccel new-plugin NAME`: write a complete plugin distribution that installs and passes its own tests."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write a new plugin distribution (kernels, a platform family, an emulator, tests, CI) to start from"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the plugin's name: provider of its kernels and module suffix (e.g. acme)")
    p.add_argument(
        "--platform",
        metavar="FAMILY",
        help="the platform its kernels run on: an existing family (cuda, npu, ...) or a new one, which is "
        "written too (default: a new family named NAME)",
    )
    p.add_argument(
        "--ops",
        metavar="OP,...",
        help="ops to write kernels for (default: norm.rms_norm,activation.silu_and_mul)",
    )
    p.add_argument("--output", metavar="DIR", default=".", help="where to write anyaccel-NAME (default: .)")


def main(args: argparse.Namespace) -> int:
    from anyaccel.scaffold import write_plugin

    ops = [op.strip() for op in args.ops.split(",") if op.strip()] if args.ops else None
    root = write_plugin(args.name, Path(args.output), args.platform, ops)
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    print(f"wrote {root} ({len(files)} files):")
    for f in files:
        print(f"  {f}")
    print(
        f"\nnext:\n  pip install -e {root}\n  pytest {root / 'tests'}\n"
        "then replace each kernel in kernels.py with your library's call and emulate that call in emulator.py"
    )
    return 0
