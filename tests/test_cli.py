"""The `anyaccel` command line: info, explain and check in-process through main(), one real console-script
run, usage errors (exit 2 with a helpful message) and the DESIGN.md JSON keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from anyaccel.cli.main import main

ANYACCEL = Path(sys.executable).with_name("anyaccel")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_info_json_has_the_design_keys(capsys, test_plugins):
    data = run_json(capsys, "info")
    assert {"anyaccel_version", "platform", "plugins", "ops"} <= data.keys()
    assert {
        "name",
        "vendor",
        "device_type",
        "device_name",
        "capability",
        "dist_backend",
        "simulated",
    } <= data["platform"].keys()
    assert data["plugins"] and all(set(p) == {"name", "version", "status", "reason"} for p in data["plugins"])
    assert {p["status"] for p in data["plugins"]} == {"active", "inactive", "failed", "incompatible"}
    assert "norm.rms_norm" in data["ops"] and "comm.all_to_all" in data["ops"]
    for op in data["ops"].values():
        assert {"selected", "provider", "candidates"} <= op.keys()
        assert all(set(c) == {"name", "provider", "accepted", "reason", "verified"} for c in op["candidates"])


def test_info_table_lists_a_failed_plugin_and_exits_0(capsys, test_plugins):
    code, out, _ = run(capsys, "info")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("anyaccel-broken-import"))
    assert "failed" in line and "import: RuntimeError: libtestvendor.so" in line
    assert "platform: cpu" in out and "norm.rms_norm" in out


def test_console_script_exits_0_with_a_failed_plugin(test_plugins):
    out = subprocess.run([str(ANYACCEL), "info", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status = {p["name"]: p["status"] for p in json.loads(out.stdout)["plugins"]}
    assert status["anyaccel-broken-import"] == "failed" and status["anyaccel-testchip"] == "active"


def test_info_under_strict_fails_on_a_failed_plugin(capsys, test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_STRICT", "1")
    code, _, err = run(capsys, "info")
    assert code == 2
    assert "anyaccel info: error: plugin anyaccel-broken-import failed (import: RuntimeError" in err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_info_on_a_simulated_platform(capsys, monkeypatch, how):
    argv = ["info", "--simulate", "cuda:sm_100"] if how == "flag" else ["info"]
    if how == "env":
        monkeypatch.setenv("ANYACCEL_SIMULATE", "cuda:sm_100")
    data = run_json(capsys, *argv)
    assert (data["platform"]["name"], data["platform"]["capability"], data["platform"]["simulated"]) == (
        "cuda",
        "sm_100",
        True,
    )


def test_explain_lists_every_candidate_with_its_reason(capsys, test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLATFORM", "testchip")
    code, out, _ = run(capsys, "explain", "activation.silu_and_mul")
    assert code == 0
    assert "activation.silu_and_mul on testchip tc_2" in out and "selected: testchip.silu_tc2" in out
    assert "testchip.silu_generic" in out and "lower rank" in out
    data = run_json(capsys, "explain", "norm.rms_norm")
    assert data["selected"] == "testchip.rms_norm" and data["platform"]["name"] == "testchip"
    assert [c["accepted"] for c in data["candidates"]].count(True) == 1


def test_explain_with_simulate(capsys, test_plugins):
    data = run_json(capsys, "explain", "norm.rms_norm", "--simulate", "testchip:tc_1")
    assert data["platform"]["simulated"] and data["selected"] == "testchip.rms_norm"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["explain"], "the following arguments are required: op"),
        (["info", "--jsn"], "unrecognized arguments: --jsn"),
    ],
)
def test_argument_errors_exit_2_with_usage(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: anyaccel" in err and message in err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["explain", "norm.rmsnorm"], {}, "anyaccel explain: error: unknown op 'norm.rmsnorm'; known ops: "),
        (
            ["info", "--simulate", "cuda:hopper"],
            {},
            "unknown cuda capability 'hopper'; expected one of the form sm_70, sm_72",
        ),
        (["info", "--simulate", "tpu:v5"], {}, "unknown platform 'tpu'; known: cpu, cuda"),
        (["info"], {"ANYACCEL_PLATFORM": "gaudi"}, "ANYACCEL_PLATFORM='gaudi' is not a known platform"),
        (["info"], {"ANYACCEL_KERNELS": "norm.rms_norm"}, "expected 'op=kernel' or 'op=!kernel'"),
    ],
)
def test_bad_values_exit_2_with_a_helpful_message(capsys, monkeypatch, argv, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err


def test_check_catches_the_deliberately_wrong_kernel(capsys, test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_TEST_WRONG", "1")
    monkeypatch.setenv("ANYACCEL_PLUGINS", "anyaccel-wrongkernel")
    code, out, _ = run(capsys, "check", "--op", "norm.rms_norm", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["failed"] > 0
    by_name = {k["name"]: k for k in data["kernels"]}
    assert by_name["wrongkernel.rms_norm"]["failed"] == by_name["wrongkernel.rms_norm"]["cases"] > 0
    assert by_name["reference.rms_norm"]["failed"] == 0


def test_check_passes_the_testchip_kernel(capsys, test_plugins, monkeypatch):
    monkeypatch.setenv("ANYACCEL_PLATFORM", "testchip")
    data = run_json(capsys, "check", "--op", "norm.rms_norm")
    assert data["failed"] == 0
    assert {k["name"] for k in data["kernels"]} >= {"testchip.rms_norm", "reference.rms_norm"}
