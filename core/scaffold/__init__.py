"""`anyaccel new-plugin NAME`: a complete plugin distribution that installs and passes its own tests.

What it writes (anyaccel-NAME/):
    pyproject.toml                the distribution and its entry point in `anyaccel.plugins`
    anyaccel_NAME/__init__.py     registration: data only (kernel records, the family, the emulator)
    anyaccel_NAME/kernels.py      one kernel per op, with the contract's exact signature, delegating to the
                                  torch reference until the author replaces it with the vendor's call
    anyaccel_NAME/platform.py     with a new --platform: the family (capability table, features, probe)
    anyaccel_NAME/emulator.py     an emulator skeleton of the vendor library NAME_runtime
    tests/                        the conformance kit on the emulated platform, golden plans (computed now,
                                  with the plugin's own records), a clean-environment conftest
    README.md, .github/workflows/anyaccel-NAME.yml   how to develop it; an emulator lane and a hardware lane
"""

from __future__ import annotations

import importlib.util
import json
import keyword
import re
import sys
from pathlib import Path

from anyaccel import context
from anyaccel.conformance.golden import plan

from . import templates

NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
RESERVED = {"anyaccel", "reference", "triton", "cpu", "mlx", "test", "none", "all"}
DEFAULT_OPS = ("norm.rms_norm", "activation.silu_and_mul")


def validate(name: str, family: str | None, ops: list[str]) -> None:
    """Raises ValueError naming what is wrong with the requested plugin."""
    for what, value in (("NAME", name), ("--platform", family)):
        if value is None:
            continue
        if not NAME.match(value) or keyword.iskeyword(value):
            raise ValueError(
                f"{what} {value!r} must be a lowercase identifier of 2-31 characters (letters, digits, _), "
                "e.g. acme"
            )
    if name in RESERVED:
        raise ValueError(f"NAME {name!r} is taken by anyaccel itself; choose your company's or chip's name")
    providers = {k.provider for ks in context.get().kernels.values() for k in ks}
    if name in providers:
        raise ValueError(f"NAME {name!r} is already the provider of installed kernels; choose another")
    known = context.get().ops
    unknown = [op for op in ops if op not in known]
    if unknown or not ops:
        raise ValueError(
            f"--ops {','.join(unknown) or '(empty)'}: unknown op; known: {', '.join(sorted(known))}"
        )


def write_plugin(name: str, out: Path, family: str | None = None, ops: list[str] | None = None) -> Path:
    """Write anyaccel-NAME under `out` and return its directory. Refuses to overwrite anything."""
    ops = list(ops or DEFAULT_OPS)
    family = family or name
    validate(name, family, ops)
    root = out / f"anyaccel-{name.replace('_', '-')}"
    if root.exists():
        raise ValueError(f"{root} already exists; new-plugin never overwrites (remove it or choose --output)")
    existing = family in context.get().families
    spec = templates.Spec(name, family, ops, new_family=not existing, examples=_examples(family, existing))
    files = templates.render(spec)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _write_golden_plans(root, spec)
    return root


def _examples(family: str, existing: bool) -> tuple[str, ...]:
    if not existing:
        return templates.NEW_FAMILY_CAPABILITIES
    return context.get().families[family].examples[:2]


def _write_golden_plans(root: Path, spec: templates.Spec) -> None:
    """Plan with the plugin just written (imported from its directory, not installed) for each capability."""
    module_name = f"anyaccel_{spec.name}"
    sys.path.insert(0, str(root))
    try:
        module = _import_fresh(module_name)
        for cap in spec.examples:
            for packages in ("all", "none"):
                got = plan(
                    f"{spec.family}:{cap}", with_=packages, plugins=(spec.dist,), extra=((spec.dist, module),)
                )
                path = root / "tests" / "golden" / f"{spec.family}-{cap}-{packages}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(got, indent=2) + "\n")
    finally:
        sys.path.remove(str(root))
        for mod in [m for m in sys.modules if m == module_name or m.startswith(module_name + ".")]:
            del sys.modules[mod]


def _import_fresh(module_name: str):
    found = importlib.util.find_spec(module_name)
    if found is None:
        raise ValueError(f"the written plugin {module_name} cannot be imported")
    return importlib.import_module(module_name)
