"""`anyaccel warmup`: bind every kernel the current plan selects, so that imports, JIT builds and first-call
compilation happen now, with the time each took, instead of inside the first request (AITER, FlashInfer
and Triton compile on first use; a cold build can outlast a server's start-up watchdog).

Binding imports the kernel's module and runs its factory. A bound kernel may also carry a warm-up hook,
`fn.anyaccel_warmup(spec)`: it runs the kernel once on small inputs shaped by the spec, on the platform's
device, so that whatever its first call would compile is compiled (see docs/writing-a-plugin.md)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from anyaccel import context
from anyaccel.dispatch import Resolution, instantiate, resolve
from anyaccel.targets import TargetError

from .main import add_emulate
from .progress import progress
from .table import render

HELP = "bind (import, build, compile) every kernel the plan selects, with the time each took"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--op", help="only this op (e.g. moe.experts)")
    p.add_argument("--model", metavar="DIR", help="the kernels a model binds (load it, then warm each)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_emulate(p)


def _plan(op: str | None) -> list[Resolution]:
    """The default spec of every op (or one), resolved on this platform."""
    ops = [op] if op else sorted(context.get().ops)
    return [resolve(name) for name in ops]


def _model(path: str, op: str | None) -> list[Resolution]:
    from anyaccel.models import LLM
    from anyaccel.models.layers.ops import resolutions

    llm = LLM(path, progress=False)
    return [r for r in resolutions(llm.model) if op is None or r.op == op]


def warm(resolution: Resolution) -> dict[str, Any]:
    """Bind one resolution's kernel and run its warm-up hook; the row of the report."""
    row: dict[str, Any] = {"op": resolution.op, "kernel": None, "seconds": 0.0, "status": "none"}
    kernel = resolution.selected
    if kernel is None:
        row["status"] = "no kernel: " + (resolution.error or "")
        return row
    row["kernel"] = kernel.name
    start = time.perf_counter()
    try:
        fn = instantiate(kernel, resolution.spec, context.get().platform)
        hook = getattr(fn, "anyaccel_warmup", None)
        if hook is not None:
            hook(resolution.spec)
        row["status"] = "warmed" if hook is not None else "bound"
    except TargetError as exc:
        row["status"] = f"failed: {exc}"
    except Exception as exc:  # a warm-up hook that fails is reported, the others still run
        row["status"] = f"failed: warm-up raised {type(exc).__name__}: {exc}"
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def main(args: argparse.Namespace) -> int:
    resolutions = _model(args.model, args.op) if args.model else _plan(args.op)
    rows = [warm(r) for r in progress(resolutions, "warming up", enabled=not args.json)]
    failed = [r for r in rows if r["status"].startswith("failed")]
    if args.json:
        print(json.dumps({"platform": context.get().platform.to_json(), "kernels": rows}, indent=2))
    else:
        table = [(r["op"], r["kernel"] or "-", f"{r['seconds']:.3f}", r["status"]) for r in rows]
        print(render(("op", "kernel", "seconds", "status"), table, wrap=True))
        total = sum(r["seconds"] for r in rows)
        print(f"\n{len(rows)} ops, {total:.2f} s" + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed else 0
