"""torch.compile(backend="anyaccel_mlx"): whole models of anyaccel.models run in MLX (its CPU build here)."""

from __future__ import annotations

import pytest
import torch

import anyaccel
from anyaccel.models import LLM, SamplingParams
from anyaccel.models.testing import tiny_checkpoint
from anyaccel_mlx import backend

PROMPTS = [[5, 17, 42, 7, 99, 3, 250, 11, 64], [300, 2]]
DECODE_STEPS = 4


@pytest.fixture(autouse=True)
def fresh_dynamo(monkeypatch):
    # as on Apple silicon, where no CPU kernel keeps its weights in a layout of its own (oneDNN's)
    monkeypatch.setenv("ANYACCEL_PLUGINS", "mlx")
    anyaccel.reset()
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _generate(model_dir, backend_name: str | None):
    llm = LLM(model_dir, dtype=torch.float32, max_num_seqs=2, progress=False)
    if backend_name:
        model = llm.runner.model
        llm.runner.forward = torch.compile(model.forward, backend=backend_name, fullgraph=True, dynamic=True)
    params = [SamplingParams(max_tokens=DECODE_STEPS, ignore_eos=True, return_logits=True) for _ in PROMPTS]
    return llm.generate(PROMPTS, params)


@pytest.mark.parametrize("arch", ["Qwen3ForCausalLM", "Qwen3MoeForCausalLM"])
def test_model_in_mlx_gives_the_torch_logits(tmp_path, arch):
    """Prefill and decode steps: every step's logits within fp32 summation-order noise of the torch run."""
    model_dir = tiny_checkpoint(arch, tmp_path)
    want, got = _generate(model_dir, None), _generate(model_dir, "anyaccel_mlx")
    for w, g in zip(want, got, strict=True):
        assert g.token_ids == w.token_ids
        assert (g.logits - w.logits).abs().max().item() <= 1e-4 * max(1.0, w.logits.abs().max().item())
    assert backend.REPORTS[-1].fallback_nodes == []


def _needs_torch(x: torch.Tensor) -> torch.Tensor:
    return torch.special.erfinv(torch.tanh(x) * 0.5) * 2 + x


def test_unsupported_nodes_are_named():
    with pytest.raises(Exception, match=r"cannot lower these graph nodes to MLX: erfinv \(aten::erfinv\)"):
        torch.compile(_needs_torch, backend="anyaccel_mlx")(torch.randn(5))


def test_fallback_runs_them_through_torch_and_counts_the_copies():
    x = torch.randn(5)
    with pytest.warns(UserWarning, match="1 nodes run through torch"):
        out = torch.compile(_needs_torch, backend="anyaccel_mlx", options={"fallback": True})(x)
    torch.testing.assert_close(out, _needs_torch(x))
    report = backend.REPORTS[-1]
    assert report.fallback_nodes == ["erfinv (aten::erfinv)"] and report.fallback_copies == 1
    assert report.input_copies == 1
