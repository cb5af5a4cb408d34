"""`anyaccel run` (filled in by its own module)."""

from __future__ import annotations

import argparse

HELP = "run (not available yet)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


def main(args: argparse.Namespace) -> int:
    raise SystemExit("anyaccel run: not available yet")
