"""Bad settings and user errors: each is a one-line error (exit 2) or a warning naming what is unknown; the
command line never prints a traceback for them and survives a reader that closes the pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anyaccel import context
from anyaccel.cli.main import main
from anyaccel.errors import AnyaccelWarning

ANYACCEL = Path(sys.executable).with_name("anyaccel")


@pytest.mark.parametrize(
    "var, value, message",
    [
        ("ANYACCEL_STRICT", "maybe", "ANYACCEL_STRICT='maybe': expected 1 or 0"),
        ("ANYACCEL_VALIDATE", "2", "ANYACCEL_VALIDATE='2': expected 1 or 0"),
        (
            "ANYACCEL_PROBE_TIMEOUT",
            "-1",
            "ANYACCEL_PROBE_TIMEOUT='-1': expected a positive number of seconds",
        ),
        ("ANYACCEL_SIMULATE", "cuda:", "the capability after ':' is empty; e.g. cuda:sm_90"),
        (
            "ANYACCEL_SIMULATE",
            "cuda:sm_999",
            "unknown cuda capability 'sm_999'; expected one of the form sm_70",
        ),
        ("ANYACCEL_EMULATE", "rocm:gfx9999", "cannot emulate 'rocm:gfx9999'"),
    ],
)
def test_bad_settings_are_one_line_errors(monkeypatch, capsys, var, value, message):
    monkeypatch.setenv(var, value)
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1, err


def test_names_of_what_is_not_there_are_warnings(monkeypatch, capsys):
    monkeypatch.setenv("ANYACCEL_KERNELS", "moe.experts=!aiter.fused_mo")
    monkeypatch.setenv("ANYACCEL_PLUGINS", "anyaccel-cpu,anyaccel-nosuch")
    with pytest.warns(AnyaccelWarning) as caught:
        context.get()
    messages = [str(w.message) for w in caught]
    assert "ANYACCEL_KERNELS forbids aiter.fused_mo for moe.experts, which is not registered" in messages
    assert any(
        m.startswith("ANYACCEL_PLUGINS names anyaccel-nosuch, which is not installed") for m in messages
    )
    context.reset()
    assert main(["info", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)["warnings"]) == 2
    assert "anyaccel: warning: ANYACCEL_KERNELS forbids aiter.fused_mo" in err


def test_a_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["run", "--model", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_command_survives_a_reader_that_closes_the_pipe():
    # `true` exits without reading, so the first write finds the pipe closed
    done = subprocess.run(f"'{ANYACCEL}' info --json | true", shell=True, capture_output=True, text=True)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
