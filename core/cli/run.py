"""`anyaccel run`: the main job. Runs a checkpoint on anyaccel ops and prints the platform, the kernel bound
for each op the model uses, prefill and decode throughput, the answers and, with --compare-transformers
(default without --model), the largest logit difference against transformers on the same weights.

Without --model it runs the packaged SmolLM2-135M-Instruct GGUF (Q4_1, kept quantized) on a few fixed
questions through its chat template; --demo moe runs the random-weight Qwen3-MoE demo checkpoint instead."""

from __future__ import annotations

import argparse
import json
from typing import Any

from anyaccel.ops.a8 import ACTIVATIONS

from .main import add_emulate
from .table import render

HELP = "run a model (the packaged SmolLM2 GGUF by default) and report kernels, throughput and parity"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        metavar="PATH",
        help="a GGUF file or a Hugging Face checkpoint directory (default: the packaged SmolLM2-135M GGUF)",
    )
    p.add_argument(
        "--demo", choices=("moe",), help="run the random-weight demo checkpoint (moe: a small Qwen3-MoE)"
    )
    p.add_argument(
        "--dequantize",
        action="store_true",
        help="GGUF: dequantize every layer at load (default: kept quantized)",
    )
    p.add_argument(
        "--activations",
        choices=ACTIVATIONS,
        default="float",
        help="quantized layers: float activations (default) or int8 ones per 32 features, llama.cpp's "
        "arithmetic (faster on CPUs, further from the float model)",
    )
    p.add_argument(
        "--enforce-eager",
        action="store_true",
        help="run every decode step through Python (default: replay host graphs of the kernel calls where "
        "every bound kernel allows it)",
    )
    p.add_argument(
        "--chat",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the checkpoint's chat template to each prompt (default: when it has one)",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_emulate(p)
    p.add_argument(
        "--compare-transformers",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compare logits with transformers on the same weights (default: on without --model)",
    )
    p.add_argument("--prompt", action="append", metavar="TEXT", help="a prompt (repeatable)")
    p.add_argument("--max-tokens", type=int, default=40, metavar="N", help="tokens to generate per prompt")
    p.add_argument("--dtype", default="auto", help="auto (the checkpoint's), float32, bfloat16 or float16")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let transformers run code the checkpoint ships (its tokenizer's); off: such a checkpoint is "
        "refused, and nothing is ever asked on stdin",
    )


def report(args: argparse.Namespace) -> dict[str, Any]:
    import anyaccel
    from anyaccel.models import LLM, SamplingParams
    from anyaccel.models.compare import compare_with_transformers
    from anyaccel.models.demo import DEMO_PROMPTS, demo_checkpoint
    from anyaccel.models.layers.ops import resolutions
    from anyaccel.models.packaged import QUESTIONS, packaged_gguf

    if args.demo and args.model:
        raise ValueError("--demo and --model name two models; give one")
    model_dir = str(demo_checkpoint()) if args.demo else args.model or str(packaged_gguf())
    compare = args.compare_transformers if args.compare_transformers is not None else args.model is None
    llm = LLM(
        model_dir,
        dtype=args.dtype,
        progress=not args.json,
        dequantize=args.dequantize,
        trust_remote_code=args.trust_remote_code,
        activations=args.activations,
        enforce_eager=args.enforce_eager,
    )
    prompts = args.prompt or list(DEMO_PROMPTS if args.demo else QUESTIONS)
    chat = getattr(llm.tokenizer, "has_chat_template", False) if args.chat is None else args.chat
    inputs = [llm.tokenizer.chat([{"role": "user", "content": p}]) for p in prompts] if chat else prompts
    # the random demo's text is noise with no end-of-sequence token: it runs to max_tokens
    params = SamplingParams(max_tokens=args.max_tokens, ignore_eos=bool(args.demo), return_logits=compare)
    outputs = llm.generate(inputs, params)
    stats = llm.stats
    # one row per (op, kernel): layers that bind the same kernel for different shapes share a row
    bound = list(resolutions(llm.model))
    kernels = sorted({(r.op, r.selected.name, r.selected.provider) for r in bound})
    # the weight format each quantized GEMM kernel was bound for (affine, gptq, awq, ...)
    formats: dict[tuple[str, str], set[str]] = {}
    for r in bound:
        if getattr(r.spec, "format", None):
            formats.setdefault((r.op, r.selected.name), set()).add(r.spec.format)
    data: dict[str, Any] = {
        "platform": anyaccel.get_platform().to_json(),
        "model": {
            "path": model_dir,
            "architecture": llm.config.architecture,
            "dtype": str(llm.runner.dtype)[6:],
            "parameters": llm.gguf.parameters if llm.gguf else sum(p.numel() for p in llm.model.parameters()),
            "world_size": llm.parallel.world_size,
            "chat_template": chat,
        },
        "kernels": [
            {"op": op, "kernel": kernel, "provider": provider}
            | ({"formats": sorted(formats[op, kernel])} if (op, kernel) in formats else {})
            for op, kernel, provider in kernels
        ],
        "throughput": {
            "prompts": len(prompts),
            "prefill_tokens": stats.prefill_tokens,
            "decode_tokens": stats.decode_tokens,
            "prefill_tokens_per_s": stats.prefill_tokens / stats.prefill_s if stats.prefill_s else None,
            "decode_tokens_per_s": stats.decode_tokens / stats.decode_s if stats.decode_s else None,
            "decode_graphs": {"on": llm.runner.graphs_off is None, "off_because": llm.runner.graphs_off},
        },
        "outputs": [
            {"prompt": p, "completion": o.text, "token_ids": o.token_ids}
            for p, o in zip(prompts, outputs, strict=True)
        ],
    }
    if llm.gguf is not None and llm.runner.gguf_load is not None:
        data["model"]["gguf"] = llm.runner.gguf_load.to_json()
    if compare:
        data["compare_transformers"] = compare_with_transformers(
            model_dir, outputs, llm.runner.dtype, args.trust_remote_code
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
        f"world size {m['world_size']}"
    )
    if "gguf" in m:
        g = m["gguf"]
        kept = ", ".join(f"{n} {method}" for method, n in sorted(g["schemes"].items()))
        types = ", ".join(f"{n} {t}" for t, n in sorted(g["types"].items()))
        print(f"weights:  GGUF tensors {types}; linear layers: {kept}")
    print()
    print(
        render(("op", "kernel", "provider"), [(k["op"], k["kernel"], k["provider"]) for k in data["kernels"]])
    )
    print(f"\nprefill: {t['prefill_tokens']} tokens, {_rate(t['prefill_tokens_per_s'])}")
    print(
        f"decode:  {t['decode_tokens']} tokens in batches of up to {t['prompts']}, "
        f"{_rate(t['decode_tokens_per_s'])}, "
        + (
            "steps replayed from host graphs"
            if t["decode_graphs"]["on"]
            else f"eager steps ({t['decode_graphs']['off_because']})"
        )
    )
    print()
    for out in data["outputs"][: None if m.get("chat_template") else 2]:
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
