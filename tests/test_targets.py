"""Bind-time target checks: a kernel whose target does not import, or whose signature drifted from its op
contract, is rejected with a reason naming the kernel, its plugin and the error, and the next candidate is
bound; `anyaccel check --targets` finds the same problems without binding anything.

The deliberately broken kernels come from the test plugin anyaccel-wrongkernel (active with
ANYACCEL_TEST_WRONG=1): wrongkernel.gelu_typo (target `gelu_and_mull`) and wrongkernel.gelu_tanh (its
`approximate` defaults to "tanh", the contract's to "none")."""

from __future__ import annotations

import json

import pytest
import torch

import anyaccel
from anyaccel.cli.main import main
from anyaccel.ops.activation import ActivationSpec
from anyaccel.targets import TargetError, signature_mismatch

GELU = ActivationSpec(torch.float32, 32)


@pytest.fixture
def wrong(test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_TEST_WRONG", "1")
    anyaccel.reset()


def test_a_target_that_does_not_import_falls_back_with_the_reason(wrong):
    res = anyaccel.resolve("activation.gelu_and_mul", GELU)
    assert res.selected.name == "wrongkernel.gelu_typo"  # planning imports nothing
    fn = res.fn
    assert res.selected.name not in ("wrongkernel.gelu_typo", "wrongkernel.gelu_tanh")
    reasons = {c.kernel.name: c.reason for c in res.candidates}
    assert reasons["wrongkernel.gelu_typo"] == (
        "kernel wrongkernel.gelu_typo (plugin anyaccel-wrongkernel, "
        "target anyaccel_wrongkernel:gelu_and_mull) cannot be imported: "
        "AttributeError: module 'anyaccel_wrongkernel' has no attribute 'gelu_and_mull'"
    )
    assert reasons["wrongkernel.gelu_tanh"].endswith(
        "does not match the activation.gelu_and_mul contract: "
        "parameter approximate defaults to 'tanh', the contract's to 'none'"
    )
    assert reasons[res.selected.name] == "selected"
    x = torch.randn(3, 64)
    gate, up = x.chunk(2, dim=-1)
    torch.testing.assert_close(fn(x), torch.nn.functional.gelu(gate) * up)


def test_strict_mode_raises_instead_of_falling_back(wrong, monkeypatch):
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    monkeypatch.setenv("ANYACCEL_PLUGINS", "anyaccel-wrongkernel")  # the other test plugins fail on purpose
    anyaccel.reset()
    with pytest.raises(TargetError, match="wrongkernel.gelu_typo .* cannot be imported"):
        anyaccel.bind("activation.gelu_and_mul", GELU)


def test_check_targets_reports_every_broken_target(wrong, capsys):
    code = main(["check", "--targets", "--op", "activation.gelu_and_mul", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["errors"] == 2
    status = {r["kernel"]: r["status"] for r in data["targets"]}
    assert status["wrongkernel.gelu_typo"] == status["wrongkernel.gelu_tanh"] == "error"
    assert status["reference.gelu_and_mul"] == "ok"


def test_check_targets_passes_for_every_installed_plugin(test_plugins, capsys):
    code = main(["check", "--targets"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 errors" in out


def test_signature_comparison():
    def contract(x, weight, eps: float = 1e-6): ...

    assert signature_mismatch(contract, lambda x, weight, eps=1e-6: x) is None
    assert "differ from the contract's (x, weight, eps)" in signature_mismatch(
        contract, lambda x, w, eps=1e-6: x
    )
    assert "defaults to nothing (required)" in signature_mismatch(contract, lambda x, weight, eps: x)

    def keyword_only(x, weight, *, eps=1e-6): ...

    assert "keyword-only" in signature_mismatch(contract, keyword_only)
