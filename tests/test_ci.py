"""The CI matrix is the one place a lane is described: every lane names an existing script (and plugin), the
generated workflow and ci/README.md's lane table are current, the workflow is valid YAML with each lane's
labels, and every plugin has a lane on any runner and one on its hardware."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _lanes() -> dict[str, dict]:
    sys.path.insert(0, str(ROOT / "ci"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    return generate.load()


def test_workflow_and_readme_are_generated_from_the_matrix():
    result = subprocess.run(
        [sys.executable, "ci/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_lane_has_a_runner_an_install_and_a_script():
    lanes = _lanes()
    assert {"cpu", "triton-interpreter", "mlx-cpu", "cuda-sm90", "cuda-sm100", "rocm-gfx942"} <= lanes.keys()
    assert all(lane["install"] and lane["runner"] for lane in lanes.values())


def test_the_workflow_is_valid_yaml_with_each_lanes_labels():
    lanes = _lanes()
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "vendor-matrix.yml").read_text())["jobs"]
    assert jobs.keys() == lanes.keys()
    for name, lane in lanes.items():
        assert jobs[name]["runs-on"] == lane["runner"]
        assert jobs[name]["steps"][-2]["run"] == f"bash {lane['test']}"
        if lane["hardware"]:
            assert "self-hosted" in lane["runner"] or lane["runner"][0].startswith("macos"), name
            assert "if" in jobs[name], f"{name}: hardware lanes do not run on forks' pull requests"
        else:
            assert lane["runner"] == ["ubuntu-latest"], name


def test_every_plugin_has_a_lane_on_any_runner_and_one_on_its_hardware():
    lanes = _lanes()
    for plugin in sorted(p.parent.name for p in (ROOT / "plugins").glob("*/pyproject.toml")):
        mine = [lane for lane in lanes.values() if lane.get("plugin") == plugin]
        assert any(not lane["hardware"] for lane in mine), f"plugins/{plugin} has no lane on any runner"
        if plugin != "cpu":  # the CPU plugin's hardware is any runner's
            assert any(lane["hardware"] for lane in mine), f"plugins/{plugin} has no lane on its hardware"
