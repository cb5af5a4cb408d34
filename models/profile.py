"""Where a decode step goes: time in each bound kernel and the rest (Python, torch glue such as views and
residual adds, the engine's scheduling and sampling), behind `anyaccel bench model --profile`.

Every kernel a layer or scheme bound is swapped, on the loaded model, for a wrapper that times its calls
(time.perf_counter around the call; on an accelerator the device is synchronised after each call, which
serialises it: the split is then the kernels' own time, not overlapped). The engine's own step timings give
the step; the difference is everything outside the kernels. The wrapper costs well under a microsecond per
call, which is counted as outside.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .layers.ops import resolutions


class OpTimes:
    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def timed(self, fn: Callable[..., Any], key: tuple[str, str]) -> Callable[..., Any]:
        sync = torch.accelerator.synchronize if torch.accelerator.is_available() else None

        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            if sync is not None:
                sync()
            self.seconds[key] += time.perf_counter() - start
            self.calls[key] += 1
            return out

        return call


def instrument(model: nn.Module) -> OpTimes:
    """Time every bound kernel of `model` from now on (attributes of its modules and their schemes)."""
    times = OpTimes()
    bound = {id(r.fn): (r.op, r.selected.name if r.selected else "?") for r in resolutions(model)}
    for module in model.modules():
        for owner in (module, vars(module).get("scheme")):
            if owner is None:
                continue
            for name, value in list(vars(owner).items()):
                key = bound.get(id(value))
                if key is not None and callable(value):
                    setattr(owner, name, times.timed(value, key))
    return times


def profile_decode(
    model_path: str,
    batch: int = 1,
    input_len: int = 128,
    output_len: int = 128,
    dtype: str = "auto",
    activations: str = "float",
) -> dict[str, Any]:
    """Greedy generation of `batch` random prompts; the decode steps' time split by op (ms per step), run
    eagerly so that each kernel call is timed; then the same generation's decode steps replayed from host
    graphs (graph_step_ms, None when graphs are off: graphs_off says why)."""
    from .bench import _prompts
    from .engine.llm import LLM
    from .engine.sampling import SamplingParams
    from .engine.sequence import Sequence

    def engine(enforce_eager: bool) -> LLM:
        return LLM(
            model_path,
            dtype=dtype,
            max_model_len=input_len + output_len,
            max_num_seqs=batch,
            progress=False,
            activations=activations,
            enforce_eager=enforce_eager,
        )

    llm = engine(enforce_eager=True)  # each kernel call timed through its wrapper: graphs replay around them
    times = instrument(llm.model)
    llm.generate(_prompts(batch, input_len, llm.config.vocab_size, seed=1000), SamplingParams(max_tokens=4))
    params = SamplingParams(max_tokens=output_len, ignore_eos=True)
    for ids in _prompts(batch, input_len, llm.config.vocab_size):
        llm.scheduler.add(Sequence(ids, params, llm.blocks.block_size))
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    calls: dict[tuple[str, str], int] = defaultdict(int)
    steps: list[float] = []
    while not llm.scheduler.done:  # one step at a time, keeping the kernels' time of decode-only steps
        times.reset()
        llm.step()
        new_tokens, _, elapsed = llm.stats.steps[-1]
        if new_tokens == 0:
            steps.append(elapsed)
            for key, value in times.seconds.items():
                seconds[key] += value
                calls[key] += times.calls[key]
    n = max(len(steps), 1)
    rows: list[dict[str, Any]] = [
        {"op": op, "kernel": kernel, "calls_per_step": calls[(op, kernel)] / n, "ms_per_step": 1e3 * t / n}
        for (op, kernel), t in sorted(seconds.items(), key=lambda kv: -kv[1])
    ]
    step_ms = 1e3 * sum(steps) / n
    kernels_ms = sum(r["ms_per_step"] for r in rows)
    del llm
    graphed = engine(enforce_eager=False)
    graph_ms = None
    if graphed.runner.graphs_off is None:
        graphed.generate(_prompts(batch, input_len, graphed.config.vocab_size), params)
        decode = [s for new, _, s in graphed.stats.steps if new == 0][2:]  # past the capture and check
        graph_ms = 1e3 * sum(decode) / len(decode) if decode else None
    return {
        "model": model_path,
        "batch": batch,
        "decode_steps": len(steps),
        "step_ms": step_ms,
        "tokens_per_s": batch / (step_ms / 1e3) if step_ms else None,
        "ops": rows,
        "kernels_ms": kernels_ms,
        "outside_kernels_ms": step_ms - kernels_ms,
        "graph_step_ms": graph_ms,
        "graphs_off": graphed.runner.graphs_off,
    }


def format_profile(result: dict[str, Any]) -> str:
    step = result["step_ms"]
    lines = [
        f"eager decode step at batch {result['batch']}: {step:.2f} ms "
        f"({result['tokens_per_s']:.1f} tokens/s), over {result['decode_steps']} steps",
        f"{'op':<24} {'kernel':<28} {'calls':>6} {'ms/step':>8} {'share':>6}",
    ]
    for r in result["ops"]:
        lines.append(
            f"{r['op']:<24} {r['kernel']:<28} {r['calls_per_step']:>6.0f} {r['ms_per_step']:>8.3f} "
            f"{100 * r['ms_per_step'] / step:>5.1f}%"
        )
    outside = result["outside_kernels_ms"]
    lines.append(
        f"{'outside kernels (Python, torch glue, scheduling, sampling)':<60} {outside:>8.3f} "
        f"{100 * outside / step:>5.1f}%"
    )
    graph = result.get("graph_step_ms")
    lines.append(
        f"the same steps replayed from host graphs (the default): {graph:.2f} ms per step, "
        f"{step / graph:.2f}x the eager steps above"
        if graph
        else f"host graphs off: {result.get('graphs_off')}"
    )
    return "\n".join(lines)
