"""Whole models through the plugin's kernels on an emulated Atlas A2: a dense model with a sliding window
(Mistral) and a Qwen3-MoE, against the torch reference on the same checkpoint and dtype, and the MoE at
TP=2 over gloo (standing in for hccl) against one rank.

The two runs differ only by roundings (torch_npu's rope takes its cos/sin cache in the model dtype, the
MoE weights its experts' outputs with bfloat16 probabilities), so greedy tokens must agree and logits stay
within a few bfloat16 steps of the largest logit; a wrong layout, length list or mask would not.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

import anyaccel
from anyaccel import context
from anyaccel.comm import shutdown_distributed
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.layers.ops import resolutions
from anyaccel.models.testing import exit_rank, tiny_checkpoint

EMULATE = "npu:ascend910b"
PROMPTS = [[3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43], [2, 71, 82, 81, 28]]
PARAMS = SamplingParams(max_tokens=3, ignore_eos=True, return_logits=True)
HEAD_DIM = 32  # npu_mrope rotates multiples of 32 channels in 16-bit dtypes
TOLERANCE = 0.05  # of the largest |logit|: bfloat16 rounding through two layers
# ops a bfloat16 model must bind to npu kernels on A2
NPU_OPS = {
    "attention.prefill",
    "attention.decode",
    "attention.write_kv",
    "norm.rms_norm",
    "norm.add_rms_norm",
    "rope.apply",
    "linear.gemm",
}
MOE_OPS = {"moe.topk", "moe.experts"}


def _run(model_dir, emulate: str | None) -> tuple[list[torch.Tensor], list[list[int]], dict[str, str]]:
    if emulate:
        os.environ["ANYACCEL_EMULATE"] = emulate
    else:
        os.environ["ANYACCEL_PLUGINS"] = "none"
    anyaccel.reset()
    try:
        llm = LLM(model_dir, dtype=torch.bfloat16, progress=False)
        outs = llm.generate(PROMPTS, PARAMS)
        bound = {r.op: r.selected.name for r in resolutions(llm.runner.model) if r.selected}
        return [o.logits for o in outs], [o.token_ids for o in outs], bound
    finally:
        os.environ.pop("ANYACCEL_EMULATE", None)
        os.environ.pop("ANYACCEL_PLUGINS", None)
        anyaccel.reset()


def _assert_matches(got, want) -> None:
    (logits, tokens, _), (ref_logits, ref_tokens, _) = got, want
    assert tokens == ref_tokens
    for a, b in zip(logits, ref_logits, strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=0, atol=TOLERANCE * b.abs().max().item())


def test_dense_model_with_sliding_window_matches_reference(tmp_path):
    """Mistral with a 6-token window over 13-token prompts: FIA's band mode (sparse_mode 4)."""
    model_dir = tiny_checkpoint(
        "MistralForCausalLM", tmp_path / "dense", dtype=torch.bfloat16, head_dim=HEAD_DIM, sliding_window=6
    )
    got = _run(model_dir, EMULATE)
    assert {op for op, name in got[2].items() if name.startswith("npu.")} >= NPU_OPS, got[2]
    _assert_matches(got, _run(model_dir, None))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, model_dir: str, out_dir: str) -> None:

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        ANYACCEL_EMULATE=EMULATE,
    )
    anyaccel.reset()
    torch.set_num_threads(1)
    try:
        platform = context.get().platform
        assert platform.dist_backend == "hccl" and platform.torch_dist_backend == "gloo"
        llm = LLM(model_dir, dtype=torch.bfloat16, progress=False)
        outs = llm.generate(PROMPTS, PARAMS)
        torch.save([o.logits for o in outs], os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        shutdown_distributed()
    exit_rank()


def test_moe_matches_reference_and_tp2_over_gloo_matches_one_rank(tmp_path):
    model_dir = tiny_checkpoint(
        "Qwen3MoeForCausalLM", tmp_path / "moe", dtype=torch.bfloat16, head_dim=HEAD_DIM
    )
    got = _run(model_dir, EMULATE)
    assert {op for op, name in got[2].items() if name.startswith("npu.")} >= NPU_OPS | MOE_OPS, got[2]
    _assert_matches(got, _run(model_dir, None))
    single = got[0]
    ctx = mp.start_processes(
        _rank,
        args=(2, _free_port(), str(model_dir), str(tmp_path)),
        nprocs=2,
        start_method="spawn",
        join=False,
    )
    deadline = time.monotonic() + 180
    while not ctx.join(timeout=max(1.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in ctx.processes:
                process.kill()
            pytest.fail("the two ranks did not finish within 180 s")
    for rank in range(2):
        for got, want in zip(torch.load(tmp_path / f"rank{rank}.pt"), single, strict=True):
            torch.testing.assert_close(
                got.float(), want.float(), rtol=0, atol=TOLERANCE * want.abs().max().item()
            )
