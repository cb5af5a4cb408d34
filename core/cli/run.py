"""`anyaccel run`: the main job. Runs a checkpoint (the built-in demo Qwen3-MoE without --model) on anyaccel
ops and prints the platform, the kernel bound for each op the model uses, prefill and decode throughput and,
with --compare-transformers (default for the demo), the largest logit difference against transformers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .table import render

HELP = "run a model (the built-in demo checkpoint by default) and report kernels, throughput and parity"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="Hugging Face checkpoint directory (default: the demo)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument(
        "--compare-transformers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compare logits with transformers on the same weights (default: on for the demo)",
    )
    p.add_argument("--prompt", action="append", metavar="TEXT", help="a prompt (repeatable)")
    p.add_argument("--max-tokens", type=int, default=32, metavar="N", help="tokens to generate per prompt")
    p.add_argument("--dtype", default="auto", help="auto (the checkpoint's), float32, bfloat16 or float16")


def report(args: argparse.Namespace) -> dict[str, Any]:
    import anyaccel
    from anyaccel.models import LLM, SamplingParams
    from anyaccel.models.compare import compare_with_transformers
    from anyaccel.models.demo import DEMO_PROMPTS, demo_checkpoint
    from anyaccel.models.layers.ops import resolutions

    model_dir = args.model or str(demo_checkpoint())
    compare = args.compare_transformers if args.compare_transformers is not None else args.model is None
    llm = LLM(model_dir, dtype=args.dtype, progress=not args.json)
    prompts = args.prompt or list(DEMO_PROMPTS)
    params = SamplingParams(max_tokens=args.max_tokens, ignore_eos=args.model is None, return_logits=compare)
    outputs = llm.generate(prompts, params)
    stats = llm.stats
    # one row per (op, kernel): layers that bind the same kernel for different shapes share a row
    kernels = sorted({(r.op, r.selected.name, r.selected.provider) for r in resolutions(llm.model)})
    data: dict[str, Any] = {
        "platform": anyaccel.get_platform().to_json(),
        "model": {
            "path": model_dir,
            "architecture": llm.config.architecture,
            "dtype": str(llm.runner.dtype)[6:],
            "parameters": sum(p.numel() for p in llm.model.parameters()),
            "world_size": llm.parallel.world_size,
        },
        "kernels": [{"op": op, "kernel": kernel, "provider": provider} for op, kernel, provider in kernels],
        "throughput": {
            "prompts": len(prompts),
            "prefill_tokens": stats.prefill_tokens,
            "decode_tokens": stats.decode_tokens,
            "prefill_tokens_per_s": stats.prefill_tokens / stats.prefill_s if stats.prefill_s else None,
            "decode_tokens_per_s": stats.decode_tokens / stats.decode_s if stats.decode_s else None,
        },
        "outputs": [
            {"prompt": p, "completion": o.text, "token_ids": o.token_ids}
            for p, o in zip(prompts, outputs, strict=True)
        ],
    }
    if compare:
        data["compare_transformers"] = compare_with_transformers(
            model_dir, outputs, llm.runner.dtype
        ).to_json()
    return data


def main(args: argparse.Namespace) -> int:
    data = report(args)
    ok = data.get("compare_transformers", {}).get("ok", True)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0 if ok else 1
    p, m, t = data["platform"], data["model"], data["throughput"]
    print(
        f"platform: {p['name']} ({p['vendor']}) {p['device_name']}, capability {p['capability']}"
        f"{'  [simulated]' if p['simulated'] else ''}"
    )
    print(
        f"model:    {m['architecture']} from {m['path']}, {m['parameters'] / 1e6:.1f}M parameters, "
        f"{m['dtype']}, "
        f"world size {m['world_size']}\n"
    )
    print(
        render(("op", "kernel", "provider"), [(k["op"], k["kernel"], k["provider"]) for k in data["kernels"]])
    )
    print(f"\nprefill: {t['prefill_tokens']} tokens, {_rate(t['prefill_tokens_per_s'])}")
    print(
        f"decode:  {t['decode_tokens']} tokens in batches of up to {t['prompts']}, "
        f"{_rate(t['decode_tokens_per_s'])}"
    )
    for out in data["outputs"][:2]:
        print(f"  {out['prompt']!r} -> {out['completion']!r}")
    cmp = data.get("compare_transformers")
    if cmp:
        verdict = "OK" if cmp["ok"] else "FAILED"
        print(
            f"\nvs transformers: max |logit diff| {cmp['max_abs_logit_diff']:.3g} (largest |logit| "
            f"{cmp['max_abs_logit']:.3g}, relative tolerance {cmp['relative_tolerance']:g}), greedy tokens "
            f"{'identical' if cmp['tokens_match'] else 'differ'}: {verdict}"
        )
    return 0 if ok else 1


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} tokens/s"
