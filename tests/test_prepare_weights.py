"""Load-time weight preparation: a kernel reading its own weight layout (here [up; gate] experts, as
FlashInfer's MoE kernels do) gets it from its prepare hook once, through the conformance kit and through a
model's quantization scheme, never per call."""

from __future__ import annotations

import torch
from torch.nn import Module

import anyaccel
from anyaccel.conformance import check
from anyaccel.ops.moe import MoESpec
from anyaccel.providers.reference.moe import experts as reference_experts
from anyaccel.schemes import moe_scheme


def on_testchip(monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLATFORM", "testchip")
    anyaccel.reset()


def test_the_kit_converts_weights_before_calling_the_kernel(test_plugins, monkeypatch):
    on_testchip(monkeypatch)
    [report] = check(op="moe.experts", provider="testchip")
    data = report.to_json()
    assert data["name"] == "testchip.experts_up_gate"
    assert data["cases"] > 0 and data["failed"] == 0, data["failures"]


def test_prepare_weights_is_identity_for_kernels_without_a_hook(monkeypatch):
    monkeypatch.setenv("ANYACCEL_KERNELS", "moe.experts=reference.experts")
    res = anyaccel.resolve("moe.experts", MoESpec(torch.float32, 4, 2, 8, 4))
    w13 = torch.randn(4, 8, 8)
    assert res.prepare_weights({"w13": w13})["w13"] is w13


def test_a_scheme_stores_the_kernels_layout_once(test_plugins, monkeypatch):
    on_testchip(monkeypatch)
    e, h, i, t = 4, 16, 8, 5
    layer = Module()
    scheme = moe_scheme(None)
    scheme.create_weights(layer, e, h, i, 2, torch.float32)
    w13, w2 = torch.randn(e, 2 * i, h), torch.randn(e, h, i)
    layer.w13_weight.data.copy_(w13)
    layer.w2_weight.data.copy_(w2)
    scheme.process_weights_after_loading(layer)
    assert torch.equal(layer.w13_weight.data, torch.cat((w13[:, i:], w13[:, :i]), dim=1))  # [up; gate]

    x = torch.randn(t, h)
    weights = torch.rand(t, 2)
    ids = torch.randint(0, e, (t, 2), dtype=torch.int32)
    expected = reference_experts(x, w13, w2, weights, ids)  # the contract's [gate; up] layout
    torch.testing.assert_close(scheme.apply(layer, x, weights, ids), expected)
