"""Tensor and expert parallelism over gloo: two spawned ranks (loopback, bounded timeouts) must reproduce the
single-process logits of the same checkpoint."""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from anyaccel.comm import shutdown_distributed
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.mxfp4_checkpoint import gpt_oss_mxfp4_checkpoint
from anyaccel.models.testing import FP8_DEEPSEEK_V3, exit_rank, fp8_block_checkpoint, tiny_checkpoint

PROMPTS = [[3, 14, 15, 92, 65, 35], [89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50]]
PARAMS = SamplingParams(max_tokens=6, ignore_eos=True, return_logits=True)
TIMEOUT_S = 180
ARCHS = (
    "Qwen3MoeForCausalLM",
    "DeepseekV3ForCausalLM",
    "DeepseekV3ForCausalLM fp8 block",
    "GptOssForCausalLM",
    "GptOssForCausalLM mxfp4",
)
# fp8 activations are quantized per token group at run time: a last-bit difference in a sum, which
# row-parallel layers cannot avoid (each rank sums its half), can flip one value's fp8 rounding. Measured:
# 0.068 on a largest logit of 3.39 for one prompt; the unquantized models match to 2e-6.
FP8_NOISE = 0.05  # of the largest |logit|


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _logits(model_dir, expert_parallel: bool) -> list[torch.Tensor]:
    llm = LLM(model_dir, dtype=torch.float32, expert_parallel=expert_parallel, progress=False)
    return [o.logits for o in llm.generate(PROMPTS, PARAMS)]


def _rank(rank: int, world: int, port: int, model_dirs: list[str], out_dir: str) -> None:

    import anyaccel

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        ANYACCEL_PLATFORM="cpu",
    )
    anyaccel.reset()
    torch.set_num_threads(1)
    try:
        results = [{"tp": _logits(d, False), "ep": _logits(d, True)} for d in model_dirs]
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        shutdown_distributed()
    exit_rank()


@pytest.mark.slow
def test_tp2_and_ep2_reproduce_single_rank_logits(tmp_path):
    """Qwen3-MoE (grouped kv heads, softmax routing), DeepSeek-V3 (MLA, grouped sigmoid routing, shared
    experts, a dense layer) and its fp8 block version (128x128 scale tiles sharded with the weights), GPT-OSS
    (sinks split with the heads, interleaved gate/up rows, a down bias added once) and its MXFP4 version
    (an intermediate size of 64: 32-element blocks per rank), each at TP=2 and at EP=2, in one pair of
    ranks."""
    torch.set_num_threads(1)
    model_dirs = [str(tiny_checkpoint(arch, tmp_path / arch)) for arch in ARCHS[:2]]
    fp8_source = tiny_checkpoint("DeepseekV3ForCausalLM", tmp_path / "fp8-source", **FP8_DEEPSEEK_V3)
    model_dirs.append(str(fp8_block_checkpoint(fp8_source, tmp_path / "fp8", tmp_path / "fp8-dense")))
    gpt_oss = tiny_checkpoint("GptOssForCausalLM", tmp_path / "gpt-oss", intermediate_size=64)
    model_dirs.append(str(gpt_oss))
    model_dirs.append(str(gpt_oss_mxfp4_checkpoint(gpt_oss, tmp_path / "mxfp4", tmp_path / "mxfp4-dense")))
    expected = [_logits(model_dir, False) for model_dir in model_dirs]
    ctx = mp.start_processes(
        _rank, args=(2, _free_port(), model_dirs, str(tmp_path)), nprocs=2, start_method="spawn", join=False
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=max(1.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in ctx.processes:
                process.kill()
            pytest.fail(f"the two ranks did not finish within {TIMEOUT_S} s")
    for rank in range(2):
        results = torch.load(tmp_path / f"rank{rank}.pt")
        for arch, result, want_all in zip(ARCHS, results, expected, strict=True):
            for mode in ("tp", "ep"):
                for got, want in zip(result[mode], want_all, strict=True):
                    atol = FP8_NOISE * want.abs().max().item() if "fp8" in arch else 1e-4
                    torch.testing.assert_close(
                        got, want, rtol=1e-4, atol=atol, msg=f"{arch} {mode} rank {rank}"
                    )
