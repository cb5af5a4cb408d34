"""Host graphs (anyaccel.graphs): what a capture records, what it refuses, and that replay repeats the run on
new inputs, foreign calls included."""

from __future__ import annotations

import copy
import ctypes
import gc
import weakref

import pytest
import torch
import torch.nn.functional as F

from anyaccel import graphs
from anyaccel.graphs import HostGraph, NotCapturable, ReplayMismatch


class FakeLibrary:
    """A foreign library: a function writing into memory by address, returning a status."""

    def __init__(self):
        self.status = 0

    def scale(self, src: int, dst: int, n: int, factor: float) -> int:
        """dst[i] = src[i] * factor over n float32 values, through ctypes (torch sees nothing, as with C)."""
        data, out = (ctypes.c_float * n).from_address(src), (ctypes.c_float * n).from_address(dst)
        for i in range(n):
            out[i] = data[i] * factor
        return self.status


@pytest.fixture
def library(monkeypatch):
    lib = FakeLibrary()
    monkeypatch.setattr(graphs, "_FOREIGN", [])
    graphs.register_foreign(lib, ["scale"])
    return lib


def test_replay_repeats_torch_and_foreign_calls_on_new_inputs(library):
    x, w, acc = torch.randn(4, 8), torch.randn(8, 8), torch.zeros(4, 8)

    def step():
        y = F.silu(x) * 2  # functional ops: recomputed and copied into the recorded result
        acc.add_(y)  # in place: repeated on the same tensor
        out = torch.empty(4, 8)  # a buffer only the foreign call writes
        library.scale(y.data_ptr(), out.data_ptr(), y.numel(), 0.5)
        return (out @ w).split(4, dim=1)[0]  # a view of a computed result

    with torch.inference_mode():
        graph, result = HostGraph.capture(step)
        assert [call.name for call in graph.calls] == [
            "aten.silu.default",
            "aten.mul.Tensor",
            "aten.add_.Tensor",
            "scale",
            "aten.matmul.default",
        ]
        x.copy_(torch.randn(4, 8))
        acc.zero_()
        graph.replay()
        y = F.silu(x) * 2
        assert torch.equal(acc, y)
        assert torch.equal(result, ((y * 0.5) @ w)[:, :4])


def test_the_graph_keeps_alive_what_only_foreign_calls_touched(library):
    src = torch.randn(16)
    seen = []

    def step():
        out = torch.empty(16)
        seen.append(weakref.ref(out))
        library.scale(src.data_ptr(), out.data_ptr(), 16, 2.0)

    with torch.inference_mode():
        graph, _ = HostGraph.capture(step)
    gc.collect()
    assert seen[0]() is not None, "the buffer the foreign call writes was freed: replay would corrupt memory"
    del graph
    gc.collect()
    assert seen[0]() is None


def test_a_foreign_status_unlike_the_captured_one_stops_replay(library):
    x, out = torch.randn(8), torch.empty(8)
    graph, _ = HostGraph.capture(lambda: library.scale(x.data_ptr(), out.data_ptr(), 8, 1.0))
    library.status = -1
    with pytest.raises(ReplayMismatch, match="scale returned -1 on replay, 0 when captured"):
        graph.replay()


def test_runs_of_foreign_calls_replay_through_the_librarys_batch(monkeypatch):
    """Each run of two or more consecutive calls goes to the library's batch as one step; a torch call ends a
    run; a status unlike the captured one names the call at the index the batch reports."""
    lib, runs = FakeLibrary(), []

    def batch(calls):
        runs.append([c.name for c in calls])

        def run():
            for i, call in enumerate(calls):
                got = call.fn(*call.args)
                if got != call.result:
                    return i, got
            return None

        return run

    monkeypatch.setattr(graphs, "_FOREIGN", [])
    graphs.register_foreign(lib, ["scale"], batch=batch)
    x, y = torch.randn(8), torch.empty(8)

    def step():
        lib.scale(x.data_ptr(), y.data_ptr(), 8, 2.0)
        lib.scale(y.data_ptr(), y.data_ptr(), 8, 3.0)
        z = y + 1  # a torch call between runs
        lib.scale(z.data_ptr(), z.data_ptr(), 8, 0.5)  # a run of one: replayed alone
        return z

    with torch.inference_mode():
        graph, z = HostGraph.capture(step)
        assert runs == [["scale", "scale"]] and len(graph.steps) == 3
        x.copy_(torch.randn(8))
        graph.replay()
        assert torch.allclose(z, (x * 6 + 1) * 0.5)
        lib.status = 5
        with pytest.raises(ReplayMismatch, match="scale returned 5 on replay, 0 when captured"):
            graph.replay()


def test_capture_puts_the_foreign_functions_back(library):
    original = library.scale
    HostGraph.capture(lambda: None)
    assert library.scale == original


@pytest.mark.parametrize(
    "step, what",
    [
        (lambda x: bool(x.sum() > 0), "on the host|host value"),
        (lambda x: x.sum().item(), "reads tensor data"),
        (lambda x: x[x > 0], "shape depends on the data"),
        (lambda x: torch.nonzero(x), "shape depends on the data"),
        (lambda x: torch.rand(3), "draws random numbers"),
        (lambda x: torch.equal(x, x), "host"),
    ],
)
def test_capture_refuses_what_replay_could_not_repeat(step, what):
    x = torch.randn(5)
    with pytest.raises(NotCapturable, match=what):
        HostGraph.capture(lambda: step(x))


def test_captures_do_not_nest():
    def inner():
        HostGraph.capture(lambda: None)

    with pytest.raises(NotCapturable, match="do not nest"):
        HostGraph.capture(inner)


def test_the_kit_holds_capturable_kernels_to_exact_replay():
    """conformance.capture.check_replay: an honest kernel passes; one reading tensor data on the host, or
    keeping state in Python between calls, fails with what went wrong."""
    from anyaccel import context
    from anyaccel.conformance.capture import check_replay

    opdef = context.get().op("norm.rms_norm")
    weight = torch.rand(8) + 0.5
    first, second = ((torch.randn(3, 8), weight, 1e-6), {}), ((torch.randn(3, 8), weight, 1e-6), {})

    def honest(x, weight, eps):
        return F.rms_norm(x, (8,), weight, eps)

    def reads_host(x, weight, eps):
        return honest(x, weight, eps) * (2.0 if x.max().item() > 0 else 1.0)

    calls = []

    def keeps_state(x, weight, eps):
        calls.append(x)
        return honest(x, weight, eps) * len(calls)

    assert check_replay(opdef, honest, *copy.deepcopy((first, second))) is None
    refused = check_replay(opdef, reads_host, *copy.deepcopy((first, second)))
    assert refused.startswith("declared capturable, but the capture refused it")
    assert "replay differs from an eager call" in check_replay(opdef, keeps_state, first, second)
    other_shape = ((torch.randn(4, 8), weight, 1e-6), {})
    assert check_replay(opdef, honest, first, other_shape).startswith("skip:")
