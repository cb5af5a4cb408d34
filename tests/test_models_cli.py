"""`anyaccel run --model DIR --json` on a tiny checkpoint: kernels, throughput, parity with transformers."""

from __future__ import annotations

import json

from anyaccel.cli.main import main
from anyaccel.models.testing import tiny_checkpoint


def test_run_json_reports_platform_kernels_throughput_and_parity(tmp_path, capsys):
    model_dir = tiny_checkpoint("Qwen3MoeForCausalLM", tmp_path)
    code = main(
        [
            "run",
            "--model",
            str(model_dir),
            "--json",
            "--compare-transformers",
            "--max-tokens",
            "4",
            "--prompt",
            "hello",
            "--prompt",
            "paged attention",
            "--dtype",
            "float32",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["platform"]["name"] == "cpu"
    assert data["model"]["architecture"] == "Qwen3MoeForCausalLM"
    assert {k["op"] for k in data["kernels"]} == {
        "attention.decode",
        "attention.prefill",
        "attention.write_kv",
        "linear.gemm",
        "moe.topk",
        "moe.experts",
        "norm.rms_norm",
        "norm.add_rms_norm",
        "rope.apply",
    }  # every layer of this checkpoint is MoE
    assert data["throughput"]["prefill_tokens"] == len("hello") + len("paged attention")
    assert data["throughput"]["decode_tokens_per_s"] > 0
    assert data["compare_transformers"]["ok"] and data["compare_transformers"]["tokens_match"]
    assert [len(o["token_ids"]) for o in data["outputs"]] == [4, 4]


def test_run_without_comparison_omits_it(tmp_path, capsys):
    model_dir = tiny_checkpoint("LlamaForCausalLM", tmp_path)
    assert main(["run", "--model", str(model_dir), "--max-tokens", "2", "--prompt", "hi"]) == 0
    out = capsys.readouterr().out
    assert "attention.decode" in out and "vs transformers" not in out
