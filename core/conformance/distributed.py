"""Conformance for comm kernels: each case runs across `case.world_size` processes that the kit spawns.

A distributed case (Case with world_size > 1) describes every rank's inputs at once:
- `case.make(seed)` returns `(per_rank, {})`, where `per_rank[r]` is the `(args, kwargs)` rank r passes to
  the op, without group_name (the kit passes `group_name=` of the group it created);
- `case.oracle(*per_rank)` returns the expected output of every rank, in rank order (float64);
- `case.make` must pickle (a module-level function, or a bound method of a module-level dataclass as in
  cases/comm.py): it is sent to the ranks, and each rank builds its own inputs from it. The parent runs the
  oracle once and compares every rank's output.

Ranks are spawned processes (the `spawn` start method) joined in a gloo group through a FileStore in a
temporary directory, and gloo is pinned to the loopback interface (unless GLOO_SOCKET_IFNAME says otherwise),
so nothing is reachable from outside the machine. They inherit the parent's environment and
sys.path, resolve the kernel by name in their own anyaccel context, and run it on CPU tensors. One group per
world size is started on first use and reused by the following cases, so a grid pays the spawn once.

Nothing waits forever: each case sets the ranks' collective timeout, and the parent gives up a little later.
A rank that raises, dies or does not answer fails the case with the reason, and the group is shut down, since
its collectives may be out of step (a rank that raised is not waited for long: its peers may be stuck in a
collective it never joined); the next case starts a fresh group.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing as mp
import os
import pickle
import queue
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.process import BaseProcess
from typing import Any

import torch
import torch.distributed as dist

from anyaccel import context
from anyaccel.comm import shutdown_distributed
from anyaccel.dispatch import instantiate
from anyaccel.plugins import describe_exception
from anyaccel.registry import Kernel

from .case import Case, Comparison, Inputs
from .compare import outputs
from .runner import CaseResult, verdict

CASE_TIMEOUT_S = 60.0  # one case, including every collective it runs
START_TIMEOUT_S = 180.0  # spawning the ranks: each imports torch and builds its anyaccel context
GRACE_S = 10.0  # the parent outwaits the ranks' own collective timeout by this much, to hear their reason
PEER_WAIT_S = 2.0  # once a rank has raised, how long its peers get to answer before the group is dropped
POLL_S = 0.2


class GroupFailure(Exception):
    """The spawned group could not finish a case (a rank died, could not start, or did not answer)."""


@dataclass
class _Group:
    """`world_size` spawned ranks serving cases one at a time; `key` is what they inherited."""

    key: tuple[Any, ...]
    world_size: int
    processes: Sequence[BaseProcess]
    jobs: list[Any]  # one queue per rank
    results: Any
    store_dir: tempfile.TemporaryDirectory
    last_job: int = 0
    started: bool = False

    def run(self, payload: bytes, timeout_s: float) -> list[tuple[bool, Any]]:
        """Every rank's (ok, torch.save'd outputs or the error) for one pickled job, in rank order."""
        if not self.started:
            ready = self._collect("ready", START_TIMEOUT_S, "to start")
            failed = [f"rank {rank} could not start: {body}" for rank, (ok, body) in ready.items() if not ok]
            if failed:
                raise GroupFailure("; ".join(failed))
            self.started = True
        self.last_job += 1
        for jobs in self.jobs:
            jobs.put((self.last_job, timeout_s, payload))
        replies = self._collect(self.last_job, timeout_s + GRACE_S, "to finish the case")
        return [replies[r] for r in range(self.world_size)]

    def _collect(self, tag: Any, wait_s: float, doing: str) -> dict[int, tuple[bool, Any]]:
        """Every rank's reply tagged `tag`. Raises GroupFailure when a rank dies or the wait runs out, and
        soon after a rank raised if a peer stays silent (it is then stuck in a collective)."""
        replies: dict[int, tuple[bool, Any]] = {}
        deadline = time.monotonic() + wait_s
        while len(replies) < self.world_size:
            try:
                got_tag, rank, ok, body = self.results.get(timeout=POLL_S)
            except queue.Empty:
                self._check_alive(replies)
                if time.monotonic() > deadline:
                    missing = sorted(set(range(self.world_size)) - set(replies))
                    heard = "; ".join(f"rank {r}: {body}" for r, (ok, body) in replies.items() if not ok)
                    raise GroupFailure(
                        f"timed out waiting for rank(s) {missing} {doing}" + (f" ({heard})" if heard else "")
                    ) from None
                continue
            if got_tag != tag:  # a reply to an earlier, abandoned job
                continue
            replies[rank] = (ok, body)
            if not ok:
                deadline = min(deadline, time.monotonic() + PEER_WAIT_S)
        return replies

    def _check_alive(self, replies: dict[int, tuple[bool, Any]]) -> None:
        for rank, process in enumerate(self.processes):
            if rank not in replies and not process.is_alive():
                raise GroupFailure(f"rank {rank} exited with code {process.exitcode}")

    def close(self, graceful: bool) -> None:
        """Stop the ranks: asked to leave (graceful) or killed (after a failure, they may be stuck)."""
        for jobs in self.jobs:
            if graceful:
                jobs.put(None)
            jobs.cancel_join_thread()  # never block interpreter exit on a queue no rank reads any more
        for process in self.processes:
            if graceful:
                process.join(timeout=2.0)
            if process.is_alive():
                process.kill()
            process.join(timeout=2.0)
        self.store_dir.cleanup()


_GROUPS: dict[int, _Group] = {}  # world size -> its running group


def _environment_key(world_size: int) -> tuple[Any, ...]:
    """What spawned ranks inherit: a group started under other settings or plugins is not reused."""
    anyaccel_vars = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ANYACCEL_")))
    return world_size, tuple(sys.path), anyaccel_vars


def _group(world_size: int) -> _Group:
    key = _environment_key(world_size)
    group = _GROUPS.get(world_size)
    if group is not None and group.key != key:
        _discard(group, graceful=True)
        group = None
    if group is None:
        group = _GROUPS[world_size] = _spawn(key, world_size)
    return group


def _spawn(key: tuple[Any, ...], world_size: int) -> _Group:
    ctx = mp.get_context("spawn")
    store_dir = tempfile.TemporaryDirectory(prefix="anyaccel-comm-")
    store = os.path.join(store_dir.name, "store")
    results = ctx.Queue()
    jobs = [ctx.Queue() for _ in range(world_size)]
    processes = [
        ctx.Process(
            target=_serve,
            args=(rank, world_size, store, jobs[rank], results),
            name=f"anyaccel-comm-rank{rank}",
            daemon=True,
        )
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    return _Group(key, world_size, processes, jobs, results, store_dir)


def _discard(group: _Group, graceful: bool) -> None:
    if _GROUPS.get(group.world_size) is group:
        del _GROUPS[group.world_size]
    group.close(graceful)


@atexit.register
def _close_all() -> None:
    for group in list(_GROUPS.values()):
        _discard(group, graceful=True)


def _serve(rank: int, world_size: int, store: str, jobs: Any, results: Any) -> None:
    """A rank's loop: join the group, then run jobs until told to stop or the parent is gone."""
    torch.set_num_threads(1)  # ranks share the machine; comm kernels gain nothing from intra-op threads
    _pin_gloo_to_loopback()
    try:
        _ = context.get().platform  # plugins and detection first: ranks reach their first collective together
        # joining waits for every rank's start-up; each case then sets its own collective timeout
        dist.init_process_group(
            "gloo",
            store=dist.FileStore(store, world_size),
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=START_TIMEOUT_S),
        )
        group_name = dist.distributed_c10d._get_default_group().group_name
    except Exception as exc:
        results.put(("ready", rank, False, describe_exception(exc)))
        return
    results.put(("ready", rank, True, None))
    parent = mp.parent_process()
    kernels: dict[Any, Any] = {}
    while parent is not None and parent.is_alive():
        try:
            job = jobs.get(timeout=1.0)
        except queue.Empty:
            continue
        if job is None:
            break
        job_id, timeout_s, payload = job
        try:
            dist.distributed_c10d._set_pg_timeout(timedelta(seconds=timeout_s))
            results.put((job_id, rank, True, _run_job(rank, group_name, payload, kernels)))
        except Exception as exc:
            results.put((job_id, rank, False, describe_exception(exc)))
    shutdown_distributed()


def _pin_gloo_to_loopback() -> None:
    """gloo listens on the address the host name resolves to unless given an interface: name the loopback
    one ("lo" on Linux, "lo0" on macOS)."""
    loopback = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    if loopback:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback[0])


def _run_job(rank: int, group_name: str, payload: bytes, kernels: dict[Any, Any]) -> bytes:
    name, op, spec, make, seed = pickle.loads(payload)
    ctx = context.get()
    if (name, spec) not in kernels:
        kernel = next((k for k in ctx.kernels_for(op) if k.name == name), None)
        if kernel is None:
            raise LookupError(
                f"kernel {name} is not registered in the spawned rank (its plugin must be "
                "importable there: ranks inherit the environment and sys.path)"
            )
        kernels[(name, spec)] = instantiate(kernel, spec, ctx.platform)
    args, kwargs = make(seed)[0][rank]
    kwargs = {**kwargs, "group_name": group_name}
    got = outputs(ctx.op(op), args, kwargs, kernels[(name, spec)](*args, **kwargs))
    buffer = io.BytesIO()
    torch.save({k: v.contiguous() if isinstance(v, torch.Tensor) else v for k, v in got.items()}, buffer)
    return buffer.getvalue()


def _rank_inputs(case: Case) -> list[Inputs]:
    per_rank, kwargs = case.make(case.seed)
    if kwargs or len(per_rank) != case.world_size or any(len(inputs) != 2 for inputs in per_rank):
        raise ValueError(
            f"{case.op} [{case.id}]: a distributed case's make(seed) must return "
            f"(per-rank (args, kwargs) for {case.world_size} ranks, {{}})"
        )
    return list(per_rank)


def run_distributed_case(kernel: Kernel, case: Case, timeout_s: float = CASE_TIMEOUT_S) -> CaseResult:
    """Run `kernel` on `case` across case.world_size spawned ranks and compare every rank with the oracle.
    A failed result carries the reason (a rank's exception, a dead rank, a timeout). `timeout_s` bounds
    each collective inside the ranks; the whole case ends within timeout_s + GRACE_S (plus the start-up of
    a new group)."""
    try:
        per_rank = _rank_inputs(case)
        payload = pickle.dumps((kernel.name, case.op, case.spec, case.make, case.seed))
    except Exception as exc:  # a case that cannot be built or sent is a failed case, not a crashed check
        return CaseResult(case.id, "failed", detail=f"bad distributed case: {describe_exception(exc)}")
    group = _group(case.world_size)
    try:
        replies = group.run(payload, timeout_s)
    except GroupFailure as failure:
        _discard(group, graceful=False)
        return CaseResult(case.id, "failed", detail=str(failure))
    errors = [f"rank {rank}: {body}" for rank, (ok, body) in enumerate(replies) if not ok]
    if errors:
        _discard(group, graceful=False)  # a rank that raised may have left its peers inside a collective
        return CaseResult(case.id, "failed", detail="; ".join(errors)[:400])
    opdef = context.get().op(case.op)
    compared: dict[str, Comparison] = {}
    expected = case.oracle(*per_rank)
    for rank, ((_, body), (args, kwargs)) in enumerate(zip(replies, per_rank, strict=True)):
        got = torch.load(io.BytesIO(body), weights_only=True)
        want = outputs(opdef, args, kwargs, expected[rank])
        by_name = case.compare_outputs(got, want)
        compared.update({f"{name}@rank{rank}": result for name, result in by_name.items()})
    return verdict(case.id, compared)
