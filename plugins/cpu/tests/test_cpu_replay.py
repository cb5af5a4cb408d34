"""Host graphs replay runs of the C kernels' calls in C (anyaccel_cpu.replay): one step per run, the same
results as eager calls, every argument kind carried exactly, and a status unlike the captured one stopping
the run at that call."""

from __future__ import annotations

import ctypes

import pytest
import torch
from anyaccel_cpu import native, replay

import anyaccel
from anyaccel.graphs import Call, HostGraph, ReplayMismatch
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.linear import LinearSpec
from anyaccel.ops.norm import NormSpec

pytestmark = pytest.mark.skipif(native.native_missing() is not None, reason="no C compiler")


def layer(h: int = 40, n: int = 24):
    """A norm (float eps), a GEMM (addresses, NULL bias), an activation: three kernels, four C calls."""
    norm = anyaccel.bind("norm.rms_norm", NormSpec(torch.float32, h))
    gemm = anyaccel.bind("linear.gemm", LinearSpec(torch.float32, 2 * n, h))
    act = anyaccel.bind("activation.silu_and_mul", None)
    weight, w_up, w_down = torch.rand(h) + 0.5, torch.randn(2 * n, h), torch.randn(h, n)
    gemm_down = anyaccel.bind("linear.gemm", LinearSpec(torch.float32, h, n))

    def step(x: torch.Tensor) -> torch.Tensor:
        return gemm_down(act(gemm(norm(x, weight, 0.37), w_up)), w_down)  # eps 0.37: its bits must survive

    return step


def test_a_run_of_c_calls_replays_as_one_step_with_eager_results():
    step, x = layer(), torch.randn(3, 40)
    with torch.inference_mode():
        graph, out = HostGraph.capture(lambda: step(x))
        assert [c.name for c in graph.calls] == [
            "anyaccel_rms_norm_f32",
            "anyaccel_gemm_f32",
            "anyaccel_silu_and_mul_f32",
            "anyaccel_gemm_f32",
        ]
        assert len(graph.steps) == 1
        x.copy_(torch.randn(3, 40))
        graph.replay()
        assert torch.equal(out, step(x.clone()))


def test_a_status_unlike_the_captured_one_stops_the_run_there():
    spec = AttentionSpec(torch.float32, 4, 2, 16, block_size=4)
    write_kv, decode = anyaccel.bind("attention.write_kv", spec), anyaccel.bind("attention.decode", spec)
    norm = anyaccel.bind("norm.rms_norm", NormSpec(torch.float32, 16))
    k_cache, v_cache = torch.zeros(3, 4, 2, 16), torch.zeros(3, 4, 2, 16)
    k, v, q = torch.randn(1, 2, 16), torch.randn(1, 2, 16), torch.randn(1, 4, 16)
    tables, lens = torch.tensor([[1, 0]], dtype=torch.int32), torch.tensor([3], dtype=torch.int32)
    weight = torch.ones(16)

    def step():
        write_kv(k, v, k_cache, v_cache, torch.tensor([5]))
        return norm(decode(q, k_cache, v_cache, tables, lens, 8, 0.25).reshape(4, 16), weight, 1e-6)

    with torch.inference_mode():
        graph, out = HostGraph.capture(step)
        assert [c.name for c in graph.calls][-2:] == ["anyaccel_paged_decode_f32", "anyaccel_rms_norm_f32"]
        out.fill_(7.0)
        tables[0, 0] = 9  # outside the cache's 3 blocks
        with pytest.raises(ReplayMismatch, match="anyaccel_paged_decode_f32 returned -1 on replay, 0 when"):
            graph.replay()
        assert bool((out == 7.0).all()), "the call after the failed one ran"
        tables[0, 0] = 1
        graph.replay()
        assert torch.equal(out, step())


def test_arguments_it_cannot_encode_replay_one_by_one():
    lib = native.native()
    batch = replay.batcher(lib, native.SIGNATURES)
    x = torch.randn(4)
    silu = lib.anyaccel_silu_and_mul_f32
    args = (ctypes.c_void_p(x.data_ptr()), 1, 2, 4, x.data_ptr())  # a ctypes object, passed explicitly
    calls = [Call("anyaccel_silu_and_mul_f32", silu, args, None, batch)] * 2
    assert batch(calls) is None


def test_the_generated_dispatch_follows_the_signatures():
    source = replay.source(
        {"f": ((ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float), ctypes.c_int)}
    )
    assert "int f(void *, int64_t, int, float);" in source
    assert "case 0: return f(P(a[0]), a[1], (int)a[2], F(a[3]));" in source


def test_arguments_encode_as_ctypes_converts_them():
    """Float bits after ctypes' rounding (an overflow is inf, not an error), bools and wrapped ints as
    ctypes passes them, NULL as 0."""
    f32 = ctypes.c_float
    assert replay._word(f32, 0.37) == ctypes.c_int32.from_buffer(f32(0.37)).value
    assert replay._word(f32, 1e40) == ctypes.c_int32.from_buffer(f32(float("inf"))).value
    assert replay._word(ctypes.c_int, True) == 1 and replay._word(ctypes.c_int, (1 << 32) + 5) == 5
    assert replay._word(ctypes.c_void_p, None) == 0 and replay._word(ctypes.c_int64, -3) == -3
    assert replay._word(ctypes.c_int64, 1 << 64) is None
