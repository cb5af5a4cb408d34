"""Entry point of the `anyaccel` command. Sub-commands live in one module each and register here."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator

COMMANDS = {
    "info": "anyaccel.cli.info",
    "explain": "anyaccel.cli.explain",
    "check": "anyaccel.cli.check",
    "bench": "anyaccel.cli.bench",
    "run": "anyaccel.cli.run",
}


def add_simulate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--simulate",
        metavar="PLATFORM:CAP",
        help="plan for a simulated platform, e.g. cuda:sm_100, rocm:gfx950, npu:ascend910b",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anyaccel", description="Hardware abstraction for LLM inference.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        mod.add_arguments(sub.add_parser(name, help=mod.HELP, description=mod.HELP))
    return p


@contextlib.contextmanager
def simulating(target: str | None) -> Iterator[None]:
    """ANYACCEL_SIMULATE=target for the duration of one command; the process's own setting comes back after,
    so an in-process call (tests, notebooks) leaves nothing behind."""
    if not target:
        yield
        return
    from anyaccel import context

    previous = os.environ.get("ANYACCEL_SIMULATE")
    os.environ["ANYACCEL_SIMULATE"] = target
    context.reset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["ANYACCEL_SIMULATE"]
        else:
            os.environ["ANYACCEL_SIMULATE"] = previous
        context.reset()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from anyaccel.errors import AnyaccelError

    try:
        with simulating(getattr(args, "simulate", None)):
            return int(importlib.import_module(COMMANDS[args.command]).main(args) or 0)
    except (AnyaccelError, ValueError) as exc:
        print(f"anyaccel {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
