"""Golden plans: what each architecture would bind, with MATE and torch_musa assumed installed and with
nothing installed. ANYACCEL_UPDATE_GOLDEN=1 rewrites them; review the diff like code."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyaccel.conformance.golden import assert_golden_plan

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("arch", ["mp_21", "mp_22", "mp_31"])
@pytest.mark.parametrize("packages", ["all", "none"])
def test_golden_plan(arch, packages):
    assert_golden_plan(
        GOLDEN / f"musa-{arch}-{packages}.json", f"musa:{arch}", with_=packages, plugins=("anyaccel-musa",)
    )
