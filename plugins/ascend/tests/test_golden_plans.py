"""Golden plans: what each SoC would bind, with torch-npu assumed installed and with nothing installed.
ANYACCEL_UPDATE_GOLDEN=1 rewrites them; review the diff like code."""

from __future__ import annotations

from pathlib import Path

import pytest

from anyaccel.conformance.golden import assert_golden_plan

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("soc", ["ascend910b", "ascend910_93", "ascend310p"])
@pytest.mark.parametrize("packages", ["all", "none"])
def test_golden_plan(soc, packages):
    assert_golden_plan(
        GOLDEN / f"npu-{soc}-{packages}.json", f"npu:{soc}", with_=packages, plugins=("anyaccel-ascend",)
    )
