"""Entry point of the `anyaccel` command. Sub-commands live in one module each and register here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

COMMANDS = {
    "info": "anyaccel.cli.info",
    "explain": "anyaccel.cli.explain",
    "check": "anyaccel.cli.check",
    "bench": "anyaccel.cli.bench",
    "run": "anyaccel.cli.run",
    "warmup": "anyaccel.cli.warmup",
    "new-plugin": "anyaccel.cli.new_plugin",
}


def add_simulate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--simulate",
        metavar="PLATFORM:CAP",
        help="plan for a simulated platform, e.g. cuda:sm_100, rocm:gfx950, npu:ascend910b",
    )
    parser.add_argument(
        "--with",
        dest="simulate_with",
        metavar="PKGS",
        help="with --simulate: plan as if these distributions were installed (comma-separated), or 'all'",
    )


def add_emulate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--emulate",
        metavar="PLATFORM:CAP",
        help="run on an emulated platform: tensors on the host, vendor APIs replaced by the owning plugin's "
        "emulator (proves the plugin's glue, not the vendor kernel), e.g. npu:ascend910b",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anyaccel", description="Hardware abstraction for LLM inference.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        mod.add_arguments(sub.add_parser(name, help=mod.HELP, description=mod.HELP))
    return p


# command-line option -> the environment variable it sets for the duration of one command
OPTION_VARIABLES = {
    "simulate": "ANYACCEL_SIMULATE",
    "simulate_with": "ANYACCEL_SIMULATE_WITH",
    "emulate": "ANYACCEL_EMULATE",
}


def overrides(args: argparse.Namespace) -> dict[str, str]:
    """The ANYACCEL_* variables that --simulate, --with and --emulate set for one command."""
    return {var: getattr(args, opt) for opt, var in OPTION_VARIABLES.items() if getattr(args, opt, None)}


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 success; 1 a check failed; 2 a user error, printed as one line (no traceback)."""
    args = parser().parse_args(argv)
    from anyaccel.env import override
    from anyaccel.errors import AnyaccelError, AnyaccelWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", AnyaccelWarning)
        warnings.showwarning = _one_line_warning
        try:
            with override(overrides(args)):
                return int(importlib.import_module(COMMANDS[args.command]).main(args) or 0)
        except BrokenPipeError:  # `anyaccel info | head`: the reader left, which is no error of ours
            _silence_stdout()
            return 0
        except (AnyaccelError, ValueError, OSError) as exc:
            print(f"anyaccel {args.command}: error: {exc}", file=sys.stderr)
            return 2


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"anyaccel: warning: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test's captured stdout)
        pass


if __name__ == "__main__":
    sys.exit(main())
