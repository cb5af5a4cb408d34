"""`anyaccel new-plugin`: the written distribution installs, passes its own tests unchanged and fails them
when its kernel is broken; bad names and overwrites are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from anyaccel.cli.main import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _pytest(tests, site) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tests.parent,
        timeout=300,
    )


@pytest.mark.slow
def test_a_new_plugin_installs_and_passes_its_own_tests_and_catches_a_broken_kernel(tmp_path, capsys):
    code, out, err = run(capsys, "new-plugin", "acme", "--output", str(tmp_path))
    assert code == 0, err
    root = tmp_path / "anyaccel-acme"
    assert (root / "anyaccel_acme" / "platform.py").is_file()  # a new family: acme
    assert (root / ".github" / "workflows" / "anyaccel-acme.yml").is_file()
    golden = json.loads((root / "tests" / "golden" / "acme-v2-all.json").read_text())
    assert golden["plan"]["norm.rms_norm"] == "acme.rms_norm"
    assert golden["plan"]["activation.silu_and_mul"] == "acme.silu_and_mul"
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*install, "--no-compile", "--target", str(site), str(root)], check=True, timeout=300)

    passing = _pytest(root / "tests", site)
    assert passing.returncode == 0, passing.stdout[-3000:]
    assert " passed" in passing.stdout and "failed" not in passing.stdout

    kernels = root / "anyaccel_acme" / "kernels.py"  # the tests run from the source tree, as an author does
    kernels.write_text(
        kernels.read_text().replace("return reference_norm.rms_norm(x, weight, eps)", "return x")
    )
    failing = _pytest(root / "tests", site)
    assert failing.returncode == 1
    assert "acme.rms_norm" in failing.stdout and "out of tolerance" in failing.stdout


def test_kernels_for_an_existing_family_plan_on_its_capabilities(tmp_path, capsys):
    code, _, err = run(capsys, "new-plugin", "zeta", "--platform", "npu", "--output", str(tmp_path))
    assert code == 0, err
    root = tmp_path / "anyaccel-zeta"
    assert not (root / "anyaccel_zeta" / "platform.py").exists()
    plans = sorted(p.name for p in (root / "tests" / "golden").iterdir())
    assert plans == [
        "npu-ascend910_93-all.json",
        "npu-ascend910_93-none.json",
        "npu-ascend910b-all.json",
        "npu-ascend910b-none.json",
    ]
    plan = json.loads((root / "tests" / "golden" / "npu-ascend910b-none.json").read_text())["plan"]
    assert plan["norm.rms_norm"] == "zeta.rms_norm" and plan["norm.add_rms_norm"] == "reference.add_rms_norm"
    signature = "def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:"
    assert signature in (root / "anyaccel_zeta" / "kernels.py").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (("Acme",), "NAME 'Acme' must be a lowercase identifier"),
        (("reference",), "NAME 'reference' is taken by anyaccel itself"),
        (("acme", "--ops", "norm.rmsnorm"), "--ops norm.rmsnorm: unknown op; known: activation.gelu_and_mul"),
        (("acme", "--platform", "9x"), "--platform '9x' must be a lowercase identifier"),
    ],
)
def test_bad_requests_are_refused(tmp_path, capsys, argv, message):
    code, _, err = run(capsys, "new-plugin", *argv, "--output", str(tmp_path))
    assert code == 2 and message in err, err
    assert not any(tmp_path.iterdir())


def test_it_never_overwrites(tmp_path, capsys):
    (tmp_path / "anyaccel-acme").mkdir()
    code, _, err = run(capsys, "new-plugin", "acme", "--output", str(tmp_path))
    assert code == 2 and "already exists; new-plugin never overwrites" in err
