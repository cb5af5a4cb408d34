"""A rank that stops answering (SIGSTOP) ends the others with a clear error within ANYACCEL_DIST_TIMEOUT,
as a rank that dies does: two tensor-parallel ranks (this file is their program) over gloo on loopback, a
timeout of 3 s. The ranks start their work together (gated on files), so the short timeout never catches a
slow start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TIMEOUT_S = 3
GATE_S = 120  # how long a rank or the test waits for the other side's files


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + GATE_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.05)


def _rank_main(rank: int, checkpoint: str, gates: Path) -> None:
    import torch

    from anyaccel.models import LLM, SamplingParams

    (gates / f"imported{rank}").touch()
    _wait_for(gates / "go")
    llm = LLM(checkpoint, dtype=torch.float32, progress=False)  # joins the group: tensor parallel
    (gates / f"built{rank}").touch()
    _wait_for(gates / "run")
    if rank == 1:
        os.kill(os.getpid(), signal.SIGSTOP)  # alive, connected, silent
        return
    start = time.monotonic()
    try:
        llm.generate([[1, 2, 3]], SamplingParams(max_tokens=2))
        error = ""
    except Exception as exc:  # noqa: BLE001 - reported to the test
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"error": error, "seconds": time.monotonic() - start}), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="no SIGSTOP here")
def test_a_stopped_rank_ends_the_others_within_the_timeout(tiny_checkpoints, tmp_path):
    checkpoint = tiny_checkpoints("Qwen3ForCausalLM")
    port, procs = _free_port(), []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANYACCEL_")}
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            GLOO_SOCKET_IFNAME=next(name for _, name in socket.if_nameindex() if name.startswith("lo")),
            ANYACCEL_PLATFORM="cpu",
            ANYACCEL_DIST_TIMEOUT=str(TIMEOUT_S),
            OMP_NUM_THREADS="1",
        )
        args = [sys.executable, __file__, str(rank), str(checkpoint), str(tmp_path)]
        pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(subprocess.Popen(args, env=env, **pipes))
    try:
        for gate in ("imported", "built"):
            for rank in range(2):
                _wait_for(tmp_path / f"{gate}{rank}")
            (tmp_path / ("go" if gate == "imported" else "run")).touch()
        out, err = procs[0].communicate(timeout=60)
    finally:
        for proc in procs:
            proc.kill()  # SIGKILL ends a stopped process too
            proc.wait()
    assert procs[0].returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert (
        "rank 0 of 2: a collective got no answer from another rank within ANYACCEL_DIST_TIMEOUT=3 s"
        in (report["error"])
    ), report
    assert report["seconds"] < TIMEOUT_S + 10, report


if __name__ == "__main__":
    _rank_main(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
