"""pytest plugin (entry point `pytest11`): run the conformance kit inside a plugin's own test suite.

    import pytest

    @pytest.mark.anyaccel_conformance(provider="mlx")           # optionally op="rope.apply"
    def test_conformance(anyaccel_case):
        anyaccel_case.assert_passes()

    @pytest.mark.anyaccel_conformance(provider="ascend", emulate="npu:ascend910b")
    def test_conformance_emulated(anyaccel_case):               # collected and run on the emulated platform
        anyaccel_case.assert_passes()

Each (kernel, case) pair of the provider becomes one test item, with ids like
`mlx.rms_norm[T=7 H=4096 bfloat16]`. Cases a kernel does not claim are reported as skipped with the reason.
The kit never passes empty: when no case at all can run for what the marker asks (no kernel registered, its
plugin failed, the platform is not detected and the kernels cannot run off it, every case rejected), a
single item `nothing-to-check` fails, saying which kernels exist and why none can run here (on a CPU-only
machine, emulate the platform: ANYACCEL_EMULATE=<platform>:<capability>).

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
    relaxed: bool  # the marker named a provider, kernel or plugin: off-platform execution is allowed
    emulate: str | None = None

    def run(self):
        from anyaccel import context
        from anyaccel.conformance.runner import run_case
        from anyaccel.env import override

        with override({"ANYACCEL_EMULATE": self.emulate} if self.emulate else {}):
            platform = context.get().platform
            return run_case(self.kernel, self.case, platform, self.device, self.relaxed, {})

    def assert_passes(self) -> None:
        result = self.run()
        if result.status == "skipped":
            pytest.skip(result.detail)
        assert result.status == "passed", f"{self.kernel.name} [{self.case.id}]: {result.detail}"


@dataclass
class NothingToCheck:
    """Stands in for the items of a marker under which no case can run: fails with the explanation."""

    explanation: str

    def assert_passes(self) -> None:
        pytest.fail(self.explanation, pytrace=False)


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
        "markers",
        f"{MARKER}(provider=None, op=None, kernel=None, plugin=None, emulate=None): parametrize over "
        "the kit "
        "(emulate='npu:ascend910b' runs on that emulated platform)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "anyaccel_case" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker(MARKER)
    kwargs = marker.kwargs if marker else {}
    from anyaccel import context
    from anyaccel.conformance.cases import cases_for
    from anyaccel.conformance.runner import kernels_to_check, nothing_to_check, skip_reason
    from anyaccel.conformance.selection import Selection
    from anyaccel.env import override

    emulate = kwargs.get("emulate")
    selection = Selection(*(kwargs.get(k) for k in ("op", "provider", "kernel", "plugin")))
    items: list[Any] = []
    ids: list[str] = []
    runnable = 0
    with override({"ANYACCEL_EMULATE": emulate} if emulate else {}):
        platform = context.get().platform
        for kernel, device in kernels_to_check(selection, platform):
            for case in cases_for(kernel.op):
                items.append(ConformanceItem(kernel, case, device, selection.relaxed, emulate))
                ids.append(f"{kernel.name}[{case.id}]")
                runnable += skip_reason(kernel, case, platform, selection.relaxed) is None
        if not runnable:
            items.append(NothingToCheck(nothing_to_check(selection, platform)))
            ids.append("nothing-to-check")
    metafunc.parametrize("anyaccel_case", items, ids=ids)
