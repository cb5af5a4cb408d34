"""Whole models through the aiter kernels on emulated gfx942/gfx950, against transformers on the same
weights: a dense bf16 Llama whose attention shape (head dim 128, GQA 8) takes the assembly decode and its
KV layout (and, with an fp8 cache, its 8-bit layout, against the reference kernels), a Qwen3-MoE on
fused_moe, and a DeepSeek-style fp8 block checkpoint (e4m3fn on disk) served in each gfx's fp8."""

from __future__ import annotations

import json

import pytest
import torch

from anyaccel.cli.main import main as cli
from anyaccel.env import override
from anyaccel.models import LLM
from anyaccel.models.engine.sampling import SamplingParams
from anyaccel.models.layers.linear import LinearBase
from anyaccel.models.layers.ops import resolutions
from anyaccel.models.testing import fp8_block_checkpoint, tiny_checkpoint

PROMPTS = [[3, 14, 15, 92, 65, 35], [89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50]]
FP8_LOGITS_RTOL = 0.15  # as the core's fp8 test: activations are rounded to e4m3 per 1x128 group


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("rocm-models")
    dense = tiny_checkpoint(
        "LlamaForCausalLM",
        root / "llama",
        dtype=torch.bfloat16,
        hidden_size=256,
        intermediate_size=256,
        num_attention_heads=16,
        num_key_value_heads=2,
        head_dim=128,
    )
    moe = tiny_checkpoint(
        "Qwen3MoeForCausalLM",
        root / "moe",
        dtype=torch.float16,
        hidden_size=256,
        intermediate_size=256,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        moe_intermediate_size=128,
    )
    shapes = dict(hidden_size=128, intermediate_size=256, num_attention_heads=2, num_key_value_heads=1)
    source = tiny_checkpoint("Qwen3ForCausalLM", root / "source", head_dim=128, **shapes)
    fp8_block_checkpoint(source, root / "fp8", root / "fp8-dense")
    return {"dense": dense, "moe": moe, "fp8": root / "fp8", "fp8-dense": root / "fp8-dense"}


def test_dense_model_on_the_assembly_decode_matches_transformers(checkpoints, capsys):
    argv = ["run", "--model", str(checkpoints["dense"]), "--emulate", "rocm:gfx942", "--json"]
    assert cli([*argv, "--compare-transformers", "--max-tokens", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    kernels = {k["op"]: k["kernel"] for k in report["kernels"]}
    assert kernels["attention.decode"] == "aiter.pa_asm_decode"
    assert kernels["attention.prefill"] == "aiter.varlen_prefill_pa_asm"
    assert kernels["attention.write_kv"] == "aiter.write_kv_pa_asm"
    assert {kernels[op] for op in ("norm.rms_norm", "rope.apply", "activation.silu_and_mul")} == {
        "aiter.rms_norm",
        "aiter.rope",
        "aiter.silu_and_mul",
    }
    assert report["compare_transformers"]["ok"] and report["compare_transformers"]["tokens_match"]


def test_moe_model_matches_transformers(checkpoints, capsys):
    """fp16: in bf16 this tiny random router flips experts on rounding alone (the reference kernels on the
    CPU miss the greedy tokens there too)."""
    argv = [
        "run",
        "--model",
        str(checkpoints["moe"]),
        "--emulate",
        "rocm:gfx942",
        "--json",
        "--dtype",
        "float16",
    ]
    assert cli([*argv, "--compare-transformers", "--max-tokens", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    kernels = {k["op"]: k["kernel"] for k in report["kernels"]}
    assert kernels["moe.experts"] == "aiter.fused_moe" and kernels["moe.topk"] == "aiter.topk_softmax"
    assert kernels["attention.decode"] == "aiter.paged_decode"  # head dim 64: the HIP kernel on NHD
    assert report["compare_transformers"]["ok"] and report["compare_transformers"]["tokens_match"]


@pytest.mark.parametrize(("gfx", "fp8"), [("gfx942", torch.float8_e4m3fnuz), ("gfx950", torch.float8_e4m3fn)])
def test_fp8_block_model_follows_transformers(checkpoints, monkeypatch, gfx, fp8):
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("ANYACCEL_EMULATE", f"rocm:{gfx}")
    ours = LLM(checkpoints["fp8"], dtype=torch.bfloat16, progress=False)
    linears = [m for m in ours.model.modules() if isinstance(m, LinearBase) and hasattr(m, "weight")]
    quantized = [m.weight.dtype for m in linears if m.weight.dtype.itemsize == 1]
    assert quantized and set(quantized) == {fp8}  # e4m3fn on disk, the gfx's fp8 once loaded
    theirs = AutoModelForCausalLM.from_pretrained(checkpoints["fp8-dense"], dtype=torch.float32).eval()
    params = SamplingParams(max_tokens=1, return_logits=True)
    for prompt, got in zip(PROMPTS, ours.generate(PROMPTS, params), strict=True):
        with torch.inference_mode():
            want = theirs(torch.tensor([prompt])).logits[0, -1]
        assert (got.logits.float() - want).abs().max() < FP8_LOGITS_RTOL * want.abs().max()
    selected = {r.selected.name for r in resolutions(ours.model) if r.selected is not None}
    assert {"aiter.gemm_a8w8_blockscale", "aiter.quantize_fp8", "aiter.pa_asm_decode"} <= selected


def test_fp8_kv_cache_on_the_assembly_decode_follows_the_reference(checkpoints):
    """An fp8 (e4m3fnuz) KV cache on gfx942: the engine allocates the 8-bit assembly layout, writes it with
    reshape_and_cache and decodes with pa_fwd_asm and per-token scales; the logits follow the reference
    kernels' on the same fp8 cache."""
    params = SamplingParams(max_tokens=2, return_logits=True)

    def run() -> tuple[list, set[str]]:
        llm = LLM(
            checkpoints["dense"], dtype=torch.bfloat16, kv_cache_dtype=torch.float8_e4m3fnuz, progress=False
        )
        outputs = llm.generate(PROMPTS, params)
        return outputs, {r.selected.name for r in resolutions(llm.model) if r.selected is not None}

    with override({"ANYACCEL_PLUGINS": "none"}):
        want, _ = run()
    with override({"ANYACCEL_EMULATE": "rocm:gfx942"}):
        got, selected = run()
    assert {
        "aiter.pa_asm_decode_fp8",
        "aiter.write_kv_pa_asm_fp8",
        "aiter.varlen_prefill_pa_asm_fp8",
    } <= selected
    for ours, ref in zip(got, want, strict=True):
        assert ours.token_ids == ref.token_ids
        assert (ours.logits.float() - ref.logits.float()).abs().max() < 0.05 * ref.logits.float().abs().max()
