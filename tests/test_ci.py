"""The CI matrix is consistent: every lane names an existing script, and the generated workflow is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_workflow_is_generated_from_the_matrix():
    result = subprocess.run(
        [sys.executable, "ci/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_lane_has_a_runner_an_install_and_a_script():
    sys.path.insert(0, str(ROOT / "ci"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    lanes = generate.load()
    assert {"cpu", "triton-interpreter", "mlx-cpu", "cuda-sm90", "cuda-sm100", "rocm-gfx942"} <= lanes.keys()
    assert all(lane["install"] and lane["runner"] for lane in lanes.values())
