"""Whole models through the plugin on emulated devices: weight preparation (prepare hooks), the per-forward
plan phase and every layer's calls, compared with transformers on the same weights (bf16 tolerance).

Tiny random checkpoints with head_dim 64 (FlashInfer's and trtllm-gen's kernels are built for 64/128/256).
Prompts of different lengths and max_num_seqs=3 make steps that mix a prefill with decodes.
"""

from __future__ import annotations

import sys

import pytest
import torch

from anyaccel.env import override
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.compare import compare_with_transformers
from anyaccel.models.layers.ops import resolutions
from anyaccel.models.testing import tiny_checkpoint

PROMPTS = [[5, 17, 42, 7, 99, 3, 250, 11, 64], [300, 2], list(range(20, 61)), [8] * 17]
LENGTHS = (4, 12, 12, 12)
BF16 = torch.bfloat16


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _generate(model_dir, env: dict):
    with override(env):
        llm = LLM(model_dir, dtype=BF16, max_num_seqs=3, progress=False)
        params = [SamplingParams(max_tokens=n, ignore_eos=True, return_logits=True) for n in LENGTHS]
        outputs = llm.generate(PROMPTS, params)
        assert any(p and d for p, d, _ in llm.stats.steps), "no step mixed prefill and decode"
        selected = {r.op: r.selected.name for r in resolutions(llm.model)}
    return selected, compare_with_transformers(model_dir, outputs, BF16)


def test_dense_model_on_sm100_runs_trtllm_gen_and_flashinfer(tmp_path):
    model_dir = tiny_checkpoint("Qwen3ForCausalLM", tmp_path, dtype=BF16, head_dim=64)
    selected, result = _generate(model_dir, {"ANYACCEL_EMULATE": "cuda:sm_100"})
    assert selected["attention.decode"] == "flashinfer.trtllm_decode"
    assert selected["attention.prefill"] == "flashinfer.trtllm_prefill"
    assert selected["attention.write_kv"] == "flashinfer.write_kv_hnd"  # the cache follows decode: HND
    for op in ("norm.rms_norm", "norm.add_rms_norm", "rope.apply", "activation.silu_and_mul"):
        assert selected[op].startswith("flashinfer."), (op, selected[op])
    assert result.ok, result


def test_paged_wrappers_plan_once_per_forward(tmp_path, monkeypatch):
    """sm_90: FlashInfer's decode and prefill wrappers. Every wrapper.plan() comes from the engine's plan
    phase (anyaccel_plan, once per forward), none from a layer's call, and each plan serves both layers."""
    from anyaccel_cuda.emulators.flashinfer import decode, prefill

    counts = {"plan": 0, "run": 0, "planned_by_a_layer": 0}
    for cls in (decode.BatchDecodeWithPagedKVCacheWrapper, prefill.BatchPrefillWithPagedKVCacheWrapper):
        for name in ("plan", "run"):
            original = getattr(cls, name)

            def counted(self, *args, _original=original, _name=name, **kwargs):
                counts[_name] += 1
                # wrapper.plan <- the kernel's plan() <- anyaccel_plan (engine) or the layer's call
                if _name == "plan" and sys._getframe(2).f_code.co_name != "anyaccel_plan":
                    counts["planned_by_a_layer"] += 1
                return _original(self, *args, **kwargs)

            monkeypatch.setattr(cls, name, counted)
    model_dir = tiny_checkpoint("Qwen3ForCausalLM", tmp_path, dtype=BF16, head_dim=64, seed=1)
    env = {"ANYACCEL_EMULATE": "cuda:sm_90", "ANYACCEL_KERNELS": "attention.prefill=flashinfer.prefill"}
    selected, result = _generate(model_dir, env)
    assert (selected["attention.decode"], selected["attention.prefill"]) == (
        "flashinfer.decode",
        "flashinfer.prefill",
    )
    assert counts["planned_by_a_layer"] == 0 and counts["run"] >= 2 * 8, counts
    assert result.ok, result


def test_moe_model_on_sm121_through_cutlass_moe(tmp_path):
    """Qwen3-MoE: FlashInfer's CUTLASS MoE with its [up; gate] weights made once by prepare. The router
    picks experts on bf16 hidden states, and near-ties flip between stacks that round differently, so the
    norms run the reference (which rounds as transformers does; FlashInfer's RMSNorm rounds once) and the
    softmax router runs the reference (fused_topk_deepseek serves sigmoid routers only)."""
    model_dir = tiny_checkpoint("Qwen3MoeForCausalLM", tmp_path, dtype=BF16, head_dim=64, seed=2)
    kernels = (
        "moe.topk=reference.topk,norm.rms_norm=reference.rms_norm,norm.add_rms_norm=reference.add_rms_norm"
    )
    selected, result = _generate(model_dir, {"ANYACCEL_EMULATE": "cuda:sm_121", "ANYACCEL_KERNELS": kernels})
    assert selected["moe.experts"] == "flashinfer.cutlass_moe"
    assert selected["attention.decode"] == "flashinfer.decode"
    assert result.ok, result
