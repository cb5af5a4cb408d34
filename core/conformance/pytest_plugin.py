"""pytest plugin (entry point `pytest11`): run the conformance kit inside a plugin's own test suite.

    import pytest

    @pytest.mark.anyaccel_conformance(provider="mlx")           # optionally op="rope.apply"
    def test_conformance(anyaccel_case):
        anyaccel_case.assert_passes()

Each (kernel, case) pair of the provider becomes one test item, with ids like
`mlx.rms_norm[T=7 H=4096 bfloat16]`. Cases a kernel does not claim are reported as skipped with the reason.

The fixture `anyaccel_clean_env` gives a test the state of a fresh process with no ANYACCEL_* variables
(a suite makes it autouse in its conftest.py: `def clean(anyaccel_clean_env): ...`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

MARKER = "anyaccel_conformance"


@dataclass
class ConformanceItem:
    kernel: Any
    case: Any
    device: str
    provider: str | None

    def run(self):
        from anyaccel import context
        from anyaccel.conformance.runner import run_case

        return run_case(
            self.kernel, self.case, context.get().platform, self.device, self.provider is not None, {}
        )

    def assert_passes(self) -> None:
        result = self.run()
        if result.status == "skipped":
            pytest.skip(result.detail)
        assert result.status == "passed", f"{self.kernel.name} [{self.case.id}]: {result.detail}"


@pytest.fixture
def anyaccel_clean_env(monkeypatch: pytest.MonkeyPatch):
    """No ANYACCEL_* environment variables, and anyaccel's state rebuilt before and after the test."""
    import anyaccel
    from anyaccel.env import VARIABLES

    for var in VARIABLES:
        monkeypatch.delenv(var, raising=False)
    anyaccel.reset()
    yield
    anyaccel.reset()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(provider=None, op=None): parametrize over the conformance kit"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "anyaccel_case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker(MARKER)
    kwargs = marker.kwargs if marker else {}
    from anyaccel import context
    from anyaccel.conformance.cases import cases_for
    from anyaccel.conformance.runner import kernels_to_check

    provider, op = kwargs.get("provider"), kwargs.get("op")
    items, ids = [], []
    for kernel, device in kernels_to_check(op, provider, context.get().platform):
        for case in cases_for(kernel.op):
            items.append(ConformanceItem(kernel, case, device, provider))
            ids.append(f"{kernel.name}[{case.id}]")
    metafunc.parametrize("anyaccel_case", items, ids=ids)
