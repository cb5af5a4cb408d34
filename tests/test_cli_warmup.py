"""`anyaccel warmup`: binds the kernel the plan selects for every op and reports the time each took."""

from __future__ import annotations

import json

from anyaccel import context
from anyaccel.cli.main import main as cli


def test_warmup_binds_every_op_of_the_plan(capsys):
    assert cli(["warmup", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["kernels"]
    assert {r["op"] for r in rows} == set(context.get().ops)
    assert all(r["status"] in ("bound", "warmed") and r["seconds"] >= 0 for r in rows), rows


def test_warmup_of_one_op_prints_a_table(capsys):
    assert cli(["warmup", "--op", "norm.rms_norm"]) == 0
    out = capsys.readouterr().out
    assert "norm.rms_norm" in out and "seconds" in out and "1 ops" in out
