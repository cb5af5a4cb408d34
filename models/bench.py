"""The model benchmark behind `anyaccel bench --op model`: our engine against its peers on the same checkpoint
(a Hugging Face directory or a GGUF file), in one run.

Peers: transformers' `generate` (a GGUF file dequantized by transformers' loader) and, when the
`llama-cpp-python` package is installed (it is not a dependency of anyaccel), llama.cpp on the same GGUF file,
greedy, batched through its own batch API with one sequence per request. For each batch size, each engine
runs in a fresh subprocess (so its peak memory is its own): batch prompts of `input_len` random tokens,
`output_len` greedy tokens each (no early stop). The engines take turns, `repeats` runs each on fresh prompts
(run r of every engine uses the same ones), and each engine's fastest run is kept: on a shared or throttled
machine the best of a few interleaved runs is the least disturbed, and no engine gets a quieter moment than
another. Reported: generated tokens/s, the ratio ours / each peer, peak memory (device memory on
accelerators, peak RSS on the CPU), and, at batch 1, each engine's decode rate against the memory-bandwidth
bound: bytes read per decoded token (the weights a token touches, as that engine stores them: every dense
or quantized weight with its scales and the top-k experts of each MoE layer, plus the KV cache) over the copy
bandwidth measured in the same run.

    from anyaccel.models.bench import bench_model, format_report
    print(format_report(bench_model()))          # the demo checkpoint, batch 1 and 8, 128 in / 128 out
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

PROMPT_SEED = 0


def _prompts(batch: int, input_len: int, vocab_size: int, seed: int = PROMPT_SEED) -> list[list[int]]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, min(vocab_size, 256), (batch, input_len), generator=gen).tolist()


def _peak_memory(device: torch.device) -> int:
    if device.type == "cpu":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return torch.accelerator.max_memory_allocated(device)


def _sync() -> None:
    if torch.accelerator.is_available():
        torch.accelerator.synchronize()


# eager: ours with every decode step run through Python (LLM(enforce_eager=True)), the host graphs' baseline
PEERS = ("transformers", "llama.cpp", "eager")
OURS = ("ours", "eager")


def _is_gguf(model_dir: str) -> bool:
    path = Path(model_dir)
    return path.is_file() and path.suffix.lower() == ".gguf"


def _ours(
    model_dir: str,
    batch: int,
    input_len: int,
    output_len: int,
    dtype: str,
    seed: int,
    activations: str = "float",
    enforce_eager: bool = False,
) -> dict[str, Any]:
    from .engine.llm import LLM, Stats
    from .engine.sampling import SamplingParams

    llm = LLM(
        model_dir,
        dtype=dtype,
        max_model_len=input_len + output_len,
        max_num_seqs=max(batch, 1),
        progress=False,
        activations=activations,
        enforce_eager=enforce_eager,
    )
    # warm-up on other prompts: the same ones would leave their blocks in the prefix cache, and the timed
    # run would skip most of its prefill (transformers' generate has no such cache)
    warm_up = _prompts(batch, input_len, llm.config.vocab_size, seed=seed + 1000)
    llm.generate(warm_up, SamplingParams(max_tokens=4, ignore_eos=True))
    prompts = _prompts(batch, input_len, llm.config.vocab_size, seed=seed)
    llm.stats = Stats()
    start = time.perf_counter()
    llm.generate(prompts, SamplingParams(max_tokens=output_len, ignore_eos=True))
    _sync()
    elapsed = time.perf_counter() - start
    s = llm.stats
    return {
        "seconds": elapsed,
        "tokens_per_s": batch * output_len / elapsed,
        "decode_tokens_per_s": s.decode_tokens / s.decode_s / batch if s.decode_s else None,
        "bytes_per_decode_token": _bytes_per_token(llm, input_len + output_len // 2),
        "peak_memory_bytes": _peak_memory(llm.runner.device),
    }


def _bytes_per_token(llm: Any, context: int) -> int:
    """Bytes one batch-1 decode step reads: dense weights, top-k of E experts per MoE layer, the KV cache of
    `context` tokens."""
    from .layers.attention import Attention
    from .layers.moe import FusedMoE

    total = 0
    expert_params: set[int] = set()
    for module in llm.model.modules():
        if isinstance(module, FusedMoE):
            share = min(1.0, module.routing.top_k / module.num_experts)
            for p in module.parameters(recurse=False):  # the scheme's expert weights and scales
                total += int(p.nbytes * share)
                expert_params.add(id(p))
        if isinstance(module, Attention):
            s = module.spec
            total += 2 * context * s.num_kv_heads * s.head_dim * s.cache_dtype.itemsize
    embed = llm.model.model.embed_tokens.weight
    head = llm.model.lm_head
    head_reads_embed = head.tied and head.proj is None  # a quantized head reads its own copy
    for p in llm.model.parameters():  # the embedding reads one row, not the table (unless it is the head)
        if id(p) not in expert_params and (p is not embed or head_reads_embed):
            total += p.nbytes
    return total


def _transformers(
    model_dir: str, batch: int, input_len: int, output_len: int, dtype: str, seed: int
) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM

    from .engine.model_runner import platform_device

    device = platform_device()
    if _is_gguf(model_dir):  # dequantized by transformers' GGUF loader
        path = Path(model_dir)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent),
            gguf_file=path.name,
            dtype=torch.float32 if dtype == "auto" else dtype,
            trust_remote_code=False,  # never None: transformers would ask on stdin
        ).eval()
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, trust_remote_code=False).eval()
    model.to(device=device)
    kwargs = dict(do_sample=False, pad_token_id=0, eos_token_id=None)

    def ids(prompt_seed: int) -> torch.Tensor:
        prompts = _prompts(batch, input_len, model.config.vocab_size, seed=prompt_seed)
        return torch.tensor(prompts, device=device)

    with torch.inference_mode():
        model.generate(ids(seed + 1000), max_new_tokens=4, min_new_tokens=4, **kwargs)  # warm-up
        prompts = ids(seed)
        start = time.perf_counter()
        out = model.generate(prompts, max_new_tokens=output_len, min_new_tokens=output_len, **kwargs)
        _sync()
        elapsed = time.perf_counter() - start
    assert out.shape[1] == input_len + output_len
    embed = model.get_input_embeddings().weight
    tied = model.get_output_embeddings().weight is embed
    weights = sum(p.nbytes for p in model.parameters() if p is not embed or tied)
    return {
        "seconds": elapsed,
        "tokens_per_s": batch * output_len / elapsed,
        "bytes_per_decode_token": weights,
        "peak_memory_bytes": _peak_memory(device),
    }


def _llama_cpp(
    model_dir: str, batch: int, input_len: int, output_len: int, dtype: str, seed: int
) -> dict[str, Any]:
    from .llama_cpp_peer import generate_greedy

    run = generate_greedy(model_dir, _prompts, batch, input_len, output_len, seed)
    return run | {"peak_memory_bytes": _peak_memory(torch.device("cpu"))}


def copy_bandwidth(nbytes: int = 256 << 20, repeats: int = 5) -> float:
    """Bytes/s of a device copy (read + write counted), best of `repeats`."""
    from .engine.model_runner import platform_device

    src = torch.empty(nbytes // 4, dtype=torch.float32, device=platform_device()).fill_(1.0)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        dst.copy_(src)
        _sync()
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best


WORKERS: dict[str, Callable[..., dict[str, Any]]] = {
    "ours": _ours,
    "eager": functools.partial(_ours, enforce_eager=True),
    "transformers": _transformers,
    "llama.cpp": _llama_cpp,
}


def _worker(
    kind: str,
    model_dir: str,
    batch: int,
    input_len: int,
    output_len: int,
    dtype: str,
    seed: int,
    activations: str = "float",
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        __name__,
        kind,
        model_dir,
        str(batch),
        str(input_len),
        str(output_len),
        dtype,
        str(seed),
        *(["--activations", activations] if kind in OURS else []),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"model benchmark worker {kind} (batch {batch}) failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_model(
    model_dir: str | Path | None = None,
    *,
    batch_sizes: tuple[int, ...] = (1, 8),
    input_len: int = 128,
    output_len: int = 128,
    dtype: str = "auto",
    repeats: int = 3,
    peers: tuple[str, ...] = ("transformers",),
    activations: str = "float",
) -> dict[str, Any]:
    """Runs the benchmark (the demo checkpoint when model_dir is None) against `peers` (see PEERS); returns a
    JSON-ready dict. llama.cpp needs a GGUF file and the llama-cpp-python package. activations: ours with
    float or int8 activations in its quantized layers (LLM(activations=...))."""
    import anyaccel

    from .demo import demo_checkpoint

    model_dir = str(model_dir or demo_checkpoint())
    for peer in peers:
        if peer not in PEERS:
            raise ValueError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")
    if "llama.cpp" in peers:
        from .llama_cpp_peer import missing

        reason = missing(model_dir)
        if reason:
            raise ValueError(f"cannot compare with llama.cpp: {reason}")
    runs: list[dict[str, Any]] = []
    bandwidths: list[float] = []  # measured after each turn: the best of them, as the runs keep their best
    for batch in batch_sizes:
        tries: dict[str, list[dict[str, Any]]] = {"ours": [], **{peer: [] for peer in peers}}
        for seed in range(PROMPT_SEED, PROMPT_SEED + repeats):  # the engines take turns
            for kind, results in tries.items():
                results.append(
                    _worker(kind, model_dir, batch, input_len, output_len, dtype, seed, activations)
                )
            bandwidths.append(copy_bandwidth())
        best = {kind: max(tries[kind], key=lambda run: run["tokens_per_s"]) for kind in tries}
        run: dict[str, Any] = {"batch": batch, **best}
        run["ratios"] = {peer: best["ours"]["tokens_per_s"] / best[peer]["tokens_per_s"] for peer in peers}
        if "transformers" in peers:
            run["speedup"] = run["ratios"]["transformers"]
        runs.append(run)
    bandwidth = max(bandwidths, default=0.0) or copy_bandwidth()
    result: dict[str, Any] = {
        "model": model_dir,
        "platform": anyaccel.get_platform().name,
        "dtype": dtype,
        "activations": activations,
        "input_len": input_len,
        "output_len": output_len,
        "repeats": repeats,
        "peers": list(peers),
        "runs": runs,
        "copy_bandwidth_bytes_per_s": bandwidth,
    }
    first = next((r for r in runs if r["batch"] == 1), None)
    if first and first["ours"]["decode_tokens_per_s"]:
        single = first["ours"]
        bound = bandwidth / single["bytes_per_decode_token"]
        result["decode_batch1"] = {
            "tokens_per_s": single["decode_tokens_per_s"],
            "bandwidth_bound_tokens_per_s": bound,
            "fraction_of_bound": single["decode_tokens_per_s"] / bound,
        }
        result["bound_batch1"] = {
            kind: _fraction(first[kind], bandwidth) for kind in ("ours", *peers) if kind in first
        }
    return result


def _fraction(run: dict[str, Any], bandwidth: float) -> dict[str, float] | None:
    """An engine's batch-1 decode rate (its whole rate when it reports no decode-only one) against the bound
    of the bytes it reads per token."""
    nbytes = run.get("bytes_per_decode_token")
    if not nbytes:
        return None
    rate = run.get("decode_tokens_per_s") or run["tokens_per_s"]
    bound = bandwidth / nbytes
    return {
        "tokens_per_s": rate,
        "bytes_per_token": nbytes,
        "bound_tokens_per_s": bound,
        "fraction": rate / bound,
    }


def format_report(result: dict[str, Any]) -> str:
    peers = result.get("peers", ["transformers"])
    engines = ["ours", *peers]
    lines = [
        f"model benchmark: {result['model']} on {result['platform']}, {result['input_len']} tokens in, "
        f"{result['output_len']} out, greedy, best of {result.get('repeats', 1)} interleaved runs",
        "batch  "
        + "  ".join(f"{e + ' tok/s':>18}" for e in engines)
        + "  "
        + "  ".join(f"{'vs ' + p:>15}" for p in peers)
        + f"  peak MiB ({' / '.join(engines)})",
    ]
    for r in result["runs"]:
        rates = "  ".join(f"{r[e]['tokens_per_s']:>18.1f}" for e in engines)
        ratios = "  ".join(f"{r['ratios'][p]:>14.2f}x" for p in peers)
        memory = " / ".join(f"{r[e]['peak_memory_bytes'] / 2**20:.0f}" for e in engines)
        lines.append(f"{r['batch']:>5}  {rates}  {ratios}  {memory}")
    for kind, f in (result.get("bound_batch1") or {}).items():
        if f:
            lines.append(
                f"batch 1, {kind}: {f['tokens_per_s']:.1f} tok/s, {f['bytes_per_token'] / 1e6:.1f} MB read "
                f"per token (weights and KV cache): {100 * f['fraction']:.1f}% of the bandwidth bound "
                f"({f['bound_tokens_per_s']:.1f} tok/s)"
            )
    d = result.get("decode_batch1")
    if d:
        lines.append(
            f"decode at batch 1: {d['tokens_per_s']:.1f} tok/s; memory-bandwidth bound "
            f"{d['bandwidth_bound_tokens_per_s']:.1f} tok/s "
            f"(copy {result['copy_bandwidth_bytes_per_s'] / 1e9:.1f} "
            f"GB/s): {100 * d['fraction_of_bound']:.1f}% of the bound"
        )
    return "\n".join(lines)


def write_plot(result: dict[str, Any], path: str) -> None:
    """A PNG bar chart: tokens/s of every engine at every batch size, with ours / peer ratios on top."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or used
    import matplotlib.pyplot as plt

    engines = ["ours", *result.get("peers", ["transformers"])]
    runs = result["runs"]
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(runs) * len(engines) / 2, 4))
    width = 0.8 / len(engines)
    for i, engine in enumerate(engines):
        xs = [j + i * width for j in range(len(runs))]
        rates = [r[engine]["tokens_per_s"] for r in runs]
        bars = ax.bar(xs, rates, width, label="anyaccel" if engine == "ours" else engine)
        if engine != "ours":
            labels = [f"{r['ratios'][engine]:.2f}x" for r in runs]
            ax.bar_label(bars, labels=labels, fontsize=8)
    ax.set_xticks([j + width * (len(engines) - 1) / 2 for j in range(len(runs))])
    ax.set_xticklabels([f"batch {r['batch']}" for r in runs])
    ax.set_ylabel("generated tokens/s")
    name = Path(result["model"]).name
    ax.set_title(f"{name}: {result['input_len']} in / {result['output_len']} out ({result['platform']})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _main() -> None:
    p = argparse.ArgumentParser(description="one engine of the model benchmark (run by bench_model)")
    p.add_argument("kind", choices=tuple(WORKERS))
    p.add_argument("model_dir")
    p.add_argument("batch", type=int)
    p.add_argument("input_len", type=int)
    p.add_argument("output_len", type=int)
    p.add_argument("dtype")
    p.add_argument("seed", type=int, help="prompt seed of the timed run")
    p.add_argument("--activations", default="float", help="ours: float or int8 (LLM(activations=...))")
    a = p.parse_args()
    args = (a.model_dir, a.batch, a.input_len, a.output_len, a.dtype, a.seed)
    kwargs = {"activations": a.activations} if a.kind in OURS else {}
    print(json.dumps(WORKERS[a.kind](*args, **kwargs)))


if __name__ == "__main__":
    _main()
