"""Golden plans: what each op binds to on gfx942 (MI300X/MI325X) and gfx950 (MI355X), with AITER assumed
installed and without. ANYACCEL_UPDATE_GOLDEN=1 rewrites them (review the diff)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyaccel.conformance.golden import assert_golden_plan

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("capability", ["gfx942", "gfx950"])
@pytest.mark.parametrize("packages", ["all", "none"])
def test_golden_plan(capability, packages):
    assert_golden_plan(
        GOLDEN / f"rocm-{capability}-{packages}.json",
        f"rocm:{capability}",
        with_=packages,
        plugins=("anyaccel-rocm",),
    )
