"""`anyaccel explain OP`: every candidate kernel for an op, accepted or rejected, with its reason."""

from __future__ import annotations

import argparse
import contextlib
import json
from dataclasses import replace

from anyaccel import context
from anyaccel.dispatch import resolve
from anyaccel.errors import ResolutionError
from anyaccel.ops.attention import AttentionSpec, kv_cache_spec

from .main import add_emulate, add_simulate
from .spec_args import add_spec_arguments, spec_from_args
from .table import render

HELP = "list every candidate kernel for an op with the reason it was accepted or rejected"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("op", help="op name, e.g. attention.decode")
    add_spec_arguments(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_simulate(p)
    add_emulate(p)


def main(args: argparse.Namespace) -> int:
    ctx = context.get()
    platform = ctx.platform
    opdef = ctx.op(args.op)
    spec = spec_from_args(opdef, opdef.default_spec(platform), args)
    spec = _with_its_cache(spec, args, platform)
    res = resolve(args.op, spec, platform=platform)
    if not platform.simulated and res.selected is not None:
        with contextlib.suppress(ResolutionError):
            _ = res.fn  # bind: a target that fails to import or breaks the contract shows as rejected
    if args.json:
        data = {"op": args.op, "platform": platform.to_json(), "spec": repr(res.spec), **res.to_json()}
        print(json.dumps(data, indent=2))
        return 0
    print(f"{args.op} on {platform.name} {platform.capability}{_mode(platform)}")
    print(f"spec: {res.spec}\n")
    rows = [
        ("*" if c.accepted else " ", i + 1, c.kernel.name, c.kernel.priority, c.kernel.verified, c.reason)
        for i, c in enumerate(res.candidates)
    ]
    print(render(("", "rank", "kernel", "priority", "verified", "reason"), rows, max_width=80, wrap=True))
    print()
    print(f"selected: {res.selected.name}" if res.selected else f"no kernel: {res.error}")
    return 0


def _with_its_cache(spec, args: argparse.Namespace, platform):
    """An attention spec the user changed gets the cache a model with it would get (layout and block size
    chosen for its head dim and dtype), unless the user named the layout or block size too."""
    named = " ".join([*args.spec_set, args.spec_json or ""])
    if not isinstance(spec, AttentionSpec) or not named.strip() and not args.dtype:
        return spec
    if "kv_layout" in named or "block_size" in named:
        return spec
    try:
        return kv_cache_spec(
            replace(spec, kv_layout=AttentionSpec.kv_layout, block_size=16), platform=platform
        )
    except ResolutionError:
        return spec


def _mode(platform) -> str:
    return " [simulated]" if platform.simulated else " [emulated]" if platform.emulated else ""
