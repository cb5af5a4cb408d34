"""`anyaccel run` with no model: the packaged SmolLM2-135M-Instruct GGUF (Q4_1), kept quantized, answers the
fixed questions through its chat template and matches transformers on the same file. Loaded once."""

from __future__ import annotations

import json

import pytest

from anyaccel.cli.main import main
from anyaccel.models.packaged import packaged_gguf


@pytest.mark.slow
def test_default_run_answers_with_the_packaged_gguf(capsys):
    try:
        packaged_gguf()
    except FileNotFoundError as exc:  # make install installs it; a bare pip install may not
        pytest.skip(str(exc))
    assert main(["run", "--json", "--max-tokens", "16"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"]["architecture"] == "LlamaForCausalLM" and data["model"]["chat_template"]
    assert data["model"]["gguf"]["schemes"] == {"w4_affine": 120, "w8_group": 1}  # 30 layers x 4, the head
    assert data["model"]["gguf"]["dequantized_layers"] == []
    kernels = {k["op"]: k["kernel"] for k in data["kernels"]}
    [w4] = [k for k in data["kernels"] if k["op"] == "quant.w4a16_gemm"]
    assert w4["formats"] == ["affine"]
    assert "linear.gemm" not in kernels  # no dense linear layer is left
    assert kernels["quant.w4a16_gemm"] in ("cpu.native_w4a16_affine", "reference.w4a16_gemm")
    first = data["outputs"][0]
    assert first["prompt"] == "What is the capital of France?" and "Paris" in first["completion"]
    cmp = data["compare_transformers"]
    assert cmp["tokens_match"] and cmp["ok"], cmp
