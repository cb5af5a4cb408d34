"""`anyaccel warmup` on an emulated gfx942: every aiter kernel of the plan is bound and run once by its
warm-up hook."""

from __future__ import annotations

import json

from anyaccel.cli.main import main as cli


def test_warmup_runs_every_aiter_kernel_once(capsys):
    assert cli(["warmup", "--emulate", "rocm:gfx942", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["kernels"]
    aiter = {r["op"]: r for r in rows if (r["kernel"] or "").startswith("aiter.")}
    assert {"attention.decode", "attention.prefill", "moe.experts", "norm.rms_norm", "quant.fp8_gemm"} <= set(
        aiter
    )
    assert all(r["status"] == "warmed" for r in aiter.values()), aiter
    assert all(r["seconds"] >= 0 for r in rows)


def test_warmup_of_one_op_of_a_model(tmp_path, capsys):
    import torch

    from anyaccel.models.testing import tiny_checkpoint

    path = tiny_checkpoint("LlamaForCausalLM", tmp_path / "llama", dtype=torch.bfloat16, head_dim=128)
    assert (
        cli(
            ["warmup", "--emulate", "rocm:gfx942", "--model", str(path), "--op", "attention.decode", "--json"]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)["kernels"]
    assert [(r["op"], r["status"]) for r in rows] == [("attention.decode", "warmed")]
