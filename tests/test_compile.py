"""Every op under torch.compile: its custom op passes torch.library.opcheck (schema, fake implementation,
functionalization of in-place ops), and a model-like block of norm, rope, attention and MoE compiles with
fullgraph=True into one graph whose anyaccel nodes are opaque custom ops, while eager calls stay direct."""

from __future__ import annotations

import pytest
import torch

import anyaccel
from anyaccel import context
from anyaccel.compile import custom_op_for
from anyaccel.conformance.cases import cases_for
from anyaccel.dispatch import instantiate
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import NHD
from anyaccel.ops.moe import MoESpec, TopKSpec
from anyaccel.ops.norm import NormSpec
from anyaccel.ops.rope import RopeSpec

# comm ops need a process group; tests/test_comm.py runs them across ranks
OPS = sorted(op for op in context.get().ops if not op.startswith("comm."))


FP8 = (torch.float8_e4m3fn, torch.float8_e4m3fnuz)


def smallest_case(op: str):
    """The op's cheapest case, preferring one without fp8 tensors (see below)."""
    cases = [c for c in cases_for(op) if not c.large]

    def cost(c):
        tensors = _tensors(c.make(c.seed))
        return (any(t.dtype in FP8 for t in tensors), sum(t.numel() for t in tensors))

    return min(cases, key=cost)


def _tensors(inputs):
    args, kwargs = inputs
    return [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("op", OPS)
def test_reference_custom_op_passes_opcheck(op):
    case = smallest_case(op)
    ctx = context.get()
    [kernel] = [k for k in ctx.kernels_for(op) if k.provider == "reference"]
    fn = instantiate(kernel, case.spec, ctx.platform)
    args, kwargs = case.make(case.seed)
    utils = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
    if any(t.dtype in FP8 for t in _tensors((args, kwargs))):
        utils = utils[1:]  # test_schema compares tensors with CPU kernels that float8 does not have
    torch.library.opcheck(custom_op_for(fn), args, kwargs, test_utils=utils)


def test_model_like_block_compiles_fullgraph_and_matches_eager():
    t, hq, hkv, d, h, e, k, inter = 6, 4, 2, 64, 256, 8, 2, 64
    rms = anyaccel.bind("norm.rms_norm", NormSpec(torch.float32, h))
    rope = anyaccel.bind("rope.apply", RopeSpec(torch.float32, d, d, True, hq, hkv))
    spec = AttentionSpec(torch.float32, hq, hkv, d, block_size=16)
    write_kv, prefill = anyaccel.bind("attention.write_kv", spec), anyaccel.bind("attention.prefill", spec)
    topk = anyaccel.bind("moe.topk", TopKSpec(torch.float32, e, k))
    experts = anyaccel.resolve("moe.experts", MoESpec(torch.float32, e, k, h, inter))

    g = torch.Generator().manual_seed(0)
    w_norm, w_q = torch.rand(h, generator=g), torch.randn(h, hq * d, generator=g) * 0.05
    w_k, w_v = (torch.randn(h, hkv * d, generator=g) * 0.05 for _ in range(2))
    w_o, w_router = torch.randn(hq * d, h, generator=g) * 0.05, torch.randn(h, e, generator=g)
    w13, w2 = torch.randn(e, 2 * inter, h, generator=g) * 0.05, torch.randn(e, h, inter, generator=g) * 0.05
    experts_weights = experts.prepare_weights({"w13": w13, "w2": w2})  # in the selected kernel's layout
    inv = 1.0 / 10000 ** (torch.arange(0, d, 2).double() / d)
    angles = torch.outer(torch.arange(64).double(), inv)
    cos_sin = torch.cat((angles.cos(), angles.sin()), -1).float()
    positions = torch.arange(t)
    cu, lens = torch.tensor([0, t], dtype=torch.int32), torch.tensor([t], dtype=torch.int32)
    tables, slots = torch.tensor([[0]], dtype=torch.int32), torch.arange(t)

    def block(x, k_cache, v_cache):
        y = rms(x, w_norm, 1e-6)
        q, key = rope((y @ w_q).view(t, hq, d), (y @ w_k).view(t, hkv, d), positions, cos_sin, True)
        value = (y @ w_v).view(t, hkv, d)
        write_kv(key, value, k_cache, v_cache, slots)
        attn = prefill(q, key, value, k_cache, v_cache, tables, cu, lens, t, t, d**-0.5)
        x = x + attn.reshape(t, hq * d) @ w_o
        weights, ids = topk(x @ w_router, k)
        return x + experts.fn(x, topk_weights=weights, topk_ids=ids, **experts_weights)

    x = torch.randn(t, h, generator=g)
    eager = block(x, *NHD.allocate(1, 16, hkv, d, torch.float32))
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    compiled = torch.compile(block, fullgraph=True, backend=backend)
    torch.testing.assert_close(compiled(x, *NHD.allocate(1, 16, hkv, d, torch.float32)), eager)
    targets = {str(n.target) for n in graphs[0].graph.nodes if n.op == "call_function"}
    anyaccel_nodes = {t for t in targets if t.startswith("anyaccel.")}
    assert len(graphs) == 1 and len(anyaccel_nodes) == 6, anyaccel_nodes
    assert custom_op_for(rms) is not None and rms.__module__.startswith("anyaccel")
