"""Golden plans: the kernel each op binds to on a simulated platform, checked in as a snapshot.

A vendor plugin keeps one JSON file per capability it serves (with all its packages assumed installed, and
with none), and its tests compare today's plan with it, so that a change of selection shows up in review:

    from anyaccel.conformance.golden import assert_golden_plan

    @pytest.mark.parametrize("capability", ["sm_90", "sm_100", "sm_110", "sm_120", "sm_121"])
    @pytest.mark.parametrize("packages", ["all", "none"])
    def test_golden_plan(capability, packages):
        assert_golden_plan(GOLDEN / f"cuda-{capability}-{packages}.json", f"cuda:{capability}",
                           with_=packages, plugins=("anyaccel-cuda",))

`ANYACCEL_UPDATE_GOLDEN=1 pytest ...` rewrites the files instead of comparing (then review the diff).

Each op is planned for its default spec; `specs` ({label: (op, spec)}) adds the kernels chosen for other
specs (formats, dtypes, shapes a plugin serves that no default reaches) under the plan's "specs" key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from anyaccel import context
from anyaccel.dispatch import resolve
from anyaccel.env import override

UPDATE_VARIABLE = "ANYACCEL_UPDATE_GOLDEN"


def plan(
    target: str,
    *,
    with_: str = "all",
    plugins: Iterable[str] | None = None,
    extra: Sequence[tuple[str, ModuleType]] = (),
    specs: Mapping[str, tuple[str, Any]] | None = None,
) -> dict[str, Any]:
    """{"platform", "with", "plugins", "plan": {op: kernel name or None}} for the simulated `target`
    ("cuda:sm_100"), planning with the packages `with_` names ("all", "none" or a comma-separated list) and,
    if given, only the named plugins besides the built-ins. `extra` plans with (name, module) plugins that
    are not installed (name them in `plugins` too). `specs`: {label: (op, spec)} planned as well, under
    "specs"."""
    plugins = list(plugins) if plugins is not None else None
    changes: dict[str, str | None] = {
        "ANYACCEL_SIMULATE": target,
        "ANYACCEL_SIMULATE_WITH": None if with_ == "none" else with_,
        "ANYACCEL_EMULATE": None,
        "ANYACCEL_KERNELS": None,
        # the device's plan, not the interpreter's: Triton's interpreter emulates every fp8 type, so a
        # TRITON_INTERPRET=1 left by a test run would let Triton claim fp8 work the device cannot do
        "TRITON_INTERPRET": None,
    }
    if plugins is not None:
        changes["ANYACCEL_PLUGINS"] = ",".join(plugins) or "none"
    with override(changes):
        ctx = context.activate(context.build(extra=extra)) if extra else context.get()
        selected = {}
        for op in sorted(ctx.ops):
            res = resolve(op, platform=ctx.platform)
            selected[op] = res.selected.name if res.selected else None
        chosen = {}
        for label, (op, spec) in (specs or {}).items():
            res = resolve(op, spec, ctx.platform)
            chosen[label] = res.selected.name if res.selected else None
    got = {"platform": target, "with": with_, "plugins": sorted(plugins or []), "plan": selected}
    return {**got, "specs": chosen} if specs else got


def assert_golden_plan(
    path: str | Path,
    target: str,
    *,
    with_: str = "all",
    plugins: Iterable[str] | None = None,
    specs: Mapping[str, tuple[str, Any]] | None = None,
) -> None:
    """Compare the plan with the JSON at `path` (rewrite it when ANYACCEL_UPDATE_GOLDEN=1). The assertion
    message lists every op (and spec label) whose kernel changed."""
    path = Path(path)
    got = plan(target, with_=with_, plugins=plugins, specs=specs)
    if os.environ.get(UPDATE_VARIABLE) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=2) + "\n")
        return
    if not path.is_file():
        raise AssertionError(f"no golden plan at {path}; create it with {UPDATE_VARIABLE}=1 and review it")
    want = json.loads(path.read_text())
    changed = [
        f"{op}: {want['plan'].get(op)} -> {got['plan'].get(op)}"
        for op in sorted(set(want["plan"]) | set(got["plan"]))
        if want["plan"].get(op) != got["plan"].get(op)
    ]
    want_specs, got_specs = want.get("specs", {}), got.get("specs", {})
    changed += [
        f"{label}: {want_specs.get(label)} -> {got_specs.get(label)}"
        for label in sorted(set(want_specs) | set(got_specs))
        if want_specs.get(label) != got_specs.get(label)
    ]
    assert not changed and want == got, (
        f"the plan for {target} (with {with_}) differs from {path}:\n  "
        + "\n  ".join(changed or ["(header fields differ)"])
        + f"\nIf the change is intended, rerun with {UPDATE_VARIABLE}=1 and review the diff."
    )
