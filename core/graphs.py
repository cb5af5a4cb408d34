"""Host graphs: one run of a function recorded as a flat list of calls, replayed without the Python between.

The host's counterpart of CUDA graphs. A decode step on a small model makes about ten kernel calls per layer
that each take microseconds, and the Python between them (module calls, argument checks, allocations) costs as
much again. `HostGraph.capture(fn)` runs `fn` once and records, in order:

- every torch operation that computes or writes, seen through a TorchDispatchMode (views and allocations are
  not recorded: their memory is fixed once made), and
- every call into a foreign library registered with `register_foreign` (the CPU plugin's C kernels, called
  through ctypes), with its arguments and its return value.

The graph keeps every tensor of that run alive, so the recorded addresses stay valid. `replay()` makes the
same calls again: a caller writes new inputs into the tensors the captured run read (copy_) and reads the
results from the tensors it returned. A torch operation that made a new tensor computes it again and copies
it into the recorded one; a foreign call must return what it returned at capture (its status), else replay
stops with ReplayMismatch naming the function.

A library registered with a `batch` function replays each run of its consecutive recorded calls in one call
of its own (a C loop over them): a decode step of a small model is about 300 kernel calls, and each call
through ctypes costs a microsecond or two of converting arguments that a replay need not pay again.

Replay is exact for a function whose calls depend only on its tensors' contents and on values fixed at
capture (shapes, Python numbers). A capture refuses (NotCapturable) what it can see break that: a host read
of tensor data (.item(), bool(t), torch.equal: a decision the replay could not remake), output shapes that
depend on data (nonzero, boolean masks) and random numbers. It cannot see Python reading tensor memory
directly (tolist, numpy) or a kernel's own Python state: kernels declare that they do neither with
Kernel.capturable, and the engine captures only models whose every kernel does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# operator tags whose operations a replay could not repeat, and why
_REFUSED = {
    torch.Tag.data_dependent_output: "reads tensor data on the host",
    torch.Tag.dynamic_output_shape: "makes an output whose shape depends on the data",
    torch.Tag.nondeterministic_seeded: "draws random numbers",
}
_ALLOCATIONS = frozenset(
    {
        torch.ops.aten.empty.memory_format,
        torch.ops.aten.empty_strided.default,
        torch.ops.aten.empty_like.default,
        torch.ops.aten.new_empty.default,
        torch.ops.aten.new_empty_strided.default,
    }
)


@dataclass(frozen=True)
class Call:
    """One recorded call: `fn(*args)` returned `result` (a foreign call's status; None for torch calls).
    `batch` is the foreign library's batch function, None where the call replays alone."""

    name: str
    fn: Callable[..., Any]
    args: tuple
    result: Any
    batch: Batch | None = None


# A foreign library's replay of a run of its recorded calls in one call of its own: given the calls, a
# function that makes them all, in order, and returns None when each returned its recorded result, else
# (index of the first that did not, what it returned), having made none after it. Returns None itself for
# calls it cannot take (they then replay one by one).
Batch = Callable[[list[Call]], Callable[[], tuple[int, Any] | None] | None]

_FOREIGN: list[tuple[Any, tuple[str, ...], Batch | None]] = []  # libraries whose calls captures record
_CAPTURING = threading.Lock()


class NotCapturable(RuntimeError):
    """The function did something a replay could not repeat; run it eagerly."""


class ReplayMismatch(RuntimeError):
    """A foreign call returned another status than at capture (a bad id, out of memory): the caller should
    run the function eagerly, where the kernel raises its own error."""


def register_foreign(library: Any, names: Iterable[str], batch: Batch | None = None) -> None:
    """Make captures record calls to `library.<name>` (a ctypes CDLL's functions, say). Calls must be made
    through the attribute at call time (`library.fn(...)`, not a saved `fn`), since a capture swaps the
    attributes for recorders and puts them back after. With `batch` (see Batch), replays hand each run of
    the library's consecutive calls to it."""
    _FOREIGN.append((library, tuple(names), batch))


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


class _TorchCall:
    """One recorded torch operation: replayed by calling it again on the same arguments; a fresh result is
    copied into the tensor the captured run produced (in-place results alias it already)."""

    def __init__(self, func: Any, args: tuple, kwargs: dict, outputs: list[torch.Tensor]):
        self.func, self.args, self.kwargs, self.outputs = func, args, kwargs, outputs

    def __call__(self) -> None:
        fresh = _tensors(self.func(*self.args, **self.kwargs))
        for recorded, new in zip(self.outputs, fresh, strict=True):
            if new.data_ptr() != recorded.data_ptr():
                recorded.copy_(new)


class _Recorder(TorchDispatchMode):
    """Records computing torch calls into `calls`, and keeps every tensor the run makes in `made`: a
    foreign call's arguments are bare addresses, so a tensor only a foreign call read or wrote (a kernel's
    output buffer) would otherwise be freed, and replay would write into memory someone else owns."""

    def __init__(self, calls: list[Call], made: list[torch.Tensor]):
        super().__init__()
        self.calls, self.made = calls, made

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        for tag in func.tags:
            if tag in _REFUSED:
                raise NotCapturable(f"{func} {_REFUSED[tag]}")
        out = func(*args, **kwargs)
        outputs = _tensors(out)
        self.made.extend(outputs)
        if func.is_view or func in _ALLOCATIONS:
            return out
        if not outputs and out is not None:
            raise NotCapturable(f"{func} returned a host value ({type(out).__name__}) computed from tensors")
        self.calls.append(Call(str(func), _TorchCall(func, args, kwargs, outputs), (), None))
        return out


class _ForeignRecorder:
    def __init__(self, fn: Callable[..., Any], name: str, batch: Batch | None, calls: list[Call]):
        self.fn, self.name, self.batch, self.calls = fn, name, batch, calls

    def __call__(self, *args: Any) -> Any:
        result = self.fn(*args)
        self.calls.append(Call(self.name, self.fn, args, result, self.batch))
        return result


def _mismatch(call: Call, got: Any) -> ReplayMismatch:
    return ReplayMismatch(f"{call.name} returned {got!r} on replay, {call.result!r} when captured")


def _one(call: Call) -> Callable[[], None]:
    def step() -> None:
        got = call.fn(*call.args)
        if got != call.result:
            raise _mismatch(call, got)

    return step


def _run(calls: list[Call], replay: Callable[[], tuple[int, Any] | None]) -> Callable[[], None]:
    def step() -> None:
        failed = replay()
        if failed is not None:
            raise _mismatch(calls[failed[0]], failed[1])

    return step


def _plan(calls: list[Call]) -> list[Callable[[], None]]:
    """The steps a replay makes: each maximal run of two or more consecutive calls into one library with a
    batch function as one step, where the batch takes them; every other call alone."""
    steps: list[Callable[[], None]] = []
    i = 0
    while i < len(calls):
        j, batch = i + 1, calls[i].batch
        while batch is not None and j < len(calls) and calls[j].batch is batch:
            j += 1
        replay = batch(calls[i:j]) if batch is not None and j - i > 1 else None
        if replay is None:
            steps.extend(_one(call) for call in calls[i:j])
        else:
            steps.append(_run(calls[i:j], replay))
        i = j
    return steps


class HostGraph:
    """A recorded run of a function. Holds every tensor that run touched (so their memory stays put) and
    the calls to make again; see the module docstring for what replay guarantees."""

    def __init__(self, calls: list[Call], made: list[torch.Tensor], result: Any, inference: bool):
        # made and result only keep the recorded run's tensors alive (their addresses are in `calls`)
        self.calls, self.made, self.result, self.inference = calls, made, result, inference
        self.steps = _plan(calls)

    @classmethod
    def capture(cls, fn: Callable[[], Any]) -> tuple[HostGraph, Any]:
        """Run fn() once, recording it; returns (graph, fn's result). Raises NotCapturable (fn's effects
        up to there have happened, as in an eager run) when fn did something replay could not repeat."""
        if not _CAPTURING.acquire(blocking=False):
            raise NotCapturable("another capture is running (captures do not nest)")
        calls: list[Call] = []
        made: list[torch.Tensor] = []
        swapped = []
        try:
            for library, names, batch in _FOREIGN:
                for name in names:
                    original = getattr(library, name)
                    setattr(library, name, _ForeignRecorder(original, name, batch, calls))
                    swapped.append((library, name, original))
            with _Recorder(calls, made):
                result = fn()
        finally:
            for library, name, original in swapped:
                setattr(library, name, original)
            _CAPTURING.release()
        return cls(calls, made, result, torch.is_inference_mode_enabled()), result

    def __len__(self) -> int:
        return len(self.calls)

    @property
    def nbytes(self) -> int:
        """Memory the graph holds: the storages of the tensors the recorded run made (each counted once)."""
        storages: dict[int, int] = {}
        for t in self.made:
            try:
                storage = t.untyped_storage()
            except NotImplementedError:  # an opaque tensor (oneDNN's layout): its logical size
                storages[id(t)] = t.numel() * t.element_size()
            else:
                storages[storage.data_ptr()] = storage.nbytes()
        return sum(storages.values())

    def replay(self) -> None:
        """Make the recorded calls again, in order (in inference mode if the capture ran in it: its tensors
        are inference tensors then)."""
        with torch.inference_mode(self.inference):
            for step in self.steps:
                step()
