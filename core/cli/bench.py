"""`anyaccel bench`: kernel timings over per-op shape sweeps, the dispatch overhead and the start-up cost.

anyaccel bench                         every op, then the overhead and start-up benchmarks
anyaccel bench --op norm.rms_norm      one op
anyaccel bench --op overhead           bound call vs direct call of the same kernel (goal <= 1.05)
anyaccel bench --op startup            `anyaccel info` work after `import torch` (goal <= 150 ms)
anyaccel bench model [--model PATH] [--vs transformers,llama.cpp] [--batch 1,8] [--plot FILE] [--profile]
                                       our engine vs its peers on the same checkpoint (a directory or GGUF)
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from anyaccel import context
from anyaccel.bench import bench_ops, measure_overhead, measure_startup
from anyaccel.bench.plot import write_plot
from anyaccel.ops.a8 import ACTIVATIONS
from anyaccel.provenance import header

from .main import add_emulate
from .progress import progress
from .table import render

HELP = "time every kernel that can run here over each op's shape sweep; dispatch overhead; start-up cost"
SPECIAL = ("overhead", "startup", "model")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", nargs="?", metavar="OP", help="same as --op (e.g. `anyaccel bench model`)")
    p.add_argument("--op", help="one op (e.g. norm.rms_norm), or 'overhead', 'startup' or 'model'")
    p.add_argument(
        "--model",
        metavar="PATH",
        help="checkpoint for `bench model`: a directory or a GGUF file (default: the demo checkpoint)",
    )
    p.add_argument(
        "--vs",
        default="transformers",
        metavar="PEERS",
        help="model: comma-separated peers: transformers, llama.cpp (needs llama-cpp-python, a GGUF), eager "
        "(ours with every decode step run through Python, no host graphs)",
    )
    p.add_argument(
        "--batch", default="1,8", metavar="SIZES", help="model: comma-separated batch sizes (default 1,8)"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="model: where our decode step goes (time per op and outside the kernels) instead of the peers",
    )
    p.add_argument(
        "--activations",
        choices=ACTIVATIONS,
        default="float",
        help="model: our quantized layers with float activations (default) or int8 ones per 32 features, "
        "llama.cpp's arithmetic (quant.w4a8_gemm / w8a8_gemm)",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_emulate(p)
    p.add_argument("--plot", metavar="FILE", help="write a PNG chart of the kernel timings")
    p.add_argument(
        "--runs",
        type=int,
        help="start-up: fresh interpreters (default 5); model: timed generations per engine, the fastest "
        "kept (default 3)",
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(args: argparse.Namespace) -> int:
    if args.what and args.op and args.what != args.op:
        raise ValueError(f"two ops given: {args.what} and --op {args.op}")
    args.op = args.op or args.what
    if args.op == "model":
        return _bench_model(args)
    platform = context.get().platform
    data: dict[str, Any] = {"header": header(), "platform": platform.to_json()}
    if args.op not in SPECIAL:
        timings = bench_ops(
            args.op, progress=lambda ops: progress(ops, "benchmarking", enabled=not args.json)
        )
        data["kernels"] = [t.to_json() for t in timings]
        if args.plot:
            write_plot(timings, args.plot, f"anyaccel bench on {platform.name} {platform.capability}")
    elif args.plot:
        raise ValueError(f"--plot charts kernel timings; it does not apply to --op {args.op}")
    if args.op in (None, "overhead"):
        data["overhead"] = measure_overhead().to_json()
    if args.op in (None, "startup"):
        data["startup"] = measure_startup(args.runs or 5).to_json()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print(data, args.plot)
    return 0


def _bench_model(args: argparse.Namespace) -> int:
    from anyaccel.models.bench import bench_model, format_report

    batches = tuple(int(b) for b in args.batch.split(",") if b.strip())
    if args.profile:
        from anyaccel.models.profile import format_profile, profile_decode

        model = args.model or str(_default_model())
        profiles = [profile_decode(model, batch, activations=args.activations) for batch in batches]
        text = "\n\n".join(map(format_profile, profiles))
        print(json.dumps({"header": header(), "profiles": profiles}, indent=2) if args.json else text)
        return 0
    peers = tuple(p.strip() for p in args.vs.split(",") if p.strip())
    result = bench_model(
        args.model, batch_sizes=batches, repeats=args.runs or 3, peers=peers, activations=args.activations
    )
    if args.plot:
        from anyaccel.models.bench import write_plot as write_model_plot

        write_model_plot(result, args.plot)
    print(json.dumps({"header": header(), **result}, indent=2) if args.json else format_report(result))
    if args.plot and not args.json:
        print(f"\nchart written to {args.plot}")
    return 0


def _default_model() -> str:
    from anyaccel.models.demo import demo_checkpoint

    return str(demo_checkpoint())


def _print(data: dict[str, Any], plot: str | None) -> None:
    p = data["platform"]
    print(f"platform: {p['name']} {p['capability']} ({p['device_name']})\n")
    if "kernels" in data:
        rows = [
            (
                k["op"],
                k["shape"],
                k["kernel"],
                _fmt(k["median_us"], ".1f"),
                _fmt(k["gb_per_s"], ".1f"),
                _fmt(k["tflop_per_s"], ".2f"),
                _fmt(k["speedup_vs_reference"], ".2f") + ("x" if k["speedup_vs_reference"] else ""),
                k["error"],
            )
            for k in data["kernels"]
        ]
        print(
            render(("op", "shape", "kernel", "median us", "GB/s", "TFLOP/s", "vs reference", "error"), rows)
        )
        if plot:
            print(f"\nchart written to {plot}")
    if "overhead" in data:
        o = data["overhead"]
        verdict = "ok" if o["ratio"] <= o["goal"] else "ABOVE GOAL"
        print(
            f"\ndispatch overhead ({o['op']}, {o['kernel']}): bound {o['bound_ns']:.0f} ns, direct "
            f"{o['direct_ns']:.0f} ns per call, ratio {o['ratio']:.3f} (goal <= {o['goal']}: {verdict})"
        )
    if "startup" in data:
        s = data["startup"]
        verdict = "ok" if s["total_ms"] <= s["goal_ms"] else "ABOVE GOAL"
        print(
            f"\nstart-up after import torch: {s['total_ms']:.1f} ms median of {len(s['runs_ms'])} runs "
            f"(import {s['import_ms']:.1f}, plugins + detection {s['plugins_and_detection_ms']:.1f}, "
            f"resolve every op {s['resolve_ms']:.1f}; goal <= {s['goal_ms']:.0f} ms: {verdict})"
        )
