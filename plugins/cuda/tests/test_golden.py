"""Golden plans: the kernel each op binds to (for its default spec) on every claimed capability, with every
package assumed installed and with none. A change of selection shows up as a diff of tests/golden/*.json;
rewrite them with ANYACCEL_UPDATE_GOLDEN=1 and review the diff like code."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyaccel.conformance.golden import assert_golden_plan

GOLDEN = Path(__file__).parent / "golden"
CAPABILITIES = ("sm_90", "sm_100", "sm_103", "sm_110", "sm_120", "sm_121")


@pytest.mark.parametrize("packages", ["all", "none"])
@pytest.mark.parametrize("capability", CAPABILITIES)
def test_golden_plan(capability, packages):
    assert_golden_plan(
        GOLDEN / f"cuda-{capability}-{packages}.json",
        f"cuda:{capability}",
        with_=packages,
        plugins=("anyaccel-cuda",),
    )
