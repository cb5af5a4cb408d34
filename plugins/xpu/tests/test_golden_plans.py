"""Golden plans: what pvc, bmg and lnl would bind, with the Intel stacks assumed installed and with nothing
installed. ANYACCEL_UPDATE_GOLDEN=1 rewrites them; review the diff like code."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyaccel.conformance.golden import assert_golden_plan

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("arch", ["pvc", "bmg", "lnl"])
@pytest.mark.parametrize("packages", ["all", "none"])
def test_golden_plan(arch, packages):
    assert_golden_plan(
        GOLDEN / f"xpu-{arch}-{packages}.json", f"xpu:{arch}", with_=packages, plugins=("anyaccel-xpu",)
    )
