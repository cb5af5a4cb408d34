"""Emulated platforms: a vendor's Python API replaced by its plugin's plain-torch emulator.

`ANYACCEL_EMULATE=npu:ascend910b` describes the platform exactly as the device would be (name, capability,
fp8 dtype, dist backend, dtypes, features) but keeps tensors on the host CPU, and installs every emulator
the active plugins offer for that platform into `sys.modules` under the vendor's import names, so the
plugin's kernels import the vendor's module and really run. This proves the plugin's side (argument mapping,
layouts, weight preparation, gating) against the conformance kit's oracles; it proves nothing about the
vendor kernel itself, which only the device can.

Emulators are installed in emulation mode only, and `anyaccel.reset()` removes them together with every
module of the emulating plugins imported while they were installed (those hold references to them).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from anyaccel.platforms.base import Platform


@dataclass(frozen=True, eq=False)
class Emulator:
    """A plain-torch stand-in for a vendor's Python API, returned by the `anyaccel_emulators` hook.

    modules:   {vendor import name: emulator module}, e.g. {"acme_runtime": "anyaccel_acme.emulator"}.
               A dotted vendor name ("acme_runtime.attention") becomes a submodule of its parent, so both
               `import acme_runtime.attention` and `from acme_runtime import attention` find it.
    platforms: platform names whose emulation installs it
    provides:  distributions it stands in for ("torch-npu"): kernels that require them become eligible

    An emulator implements the documented semantics of every vendor function the plugin calls, and checks
    its arguments as strictly as the vendor does (unknown keywords, layouts, dtypes, shapes and documented
    limits raise the vendor's kind of error). One that accepts anything proves nothing.
    """

    modules: Mapping[str, str]
    platforms: frozenset[str]
    provides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "platforms", frozenset(self.platforms))
        object.__setattr__(self, "modules", dict(self.modules))


@dataclass
class Installed:
    """The vendor modules one emulated platform put in sys.modules, and what they replaced."""

    provided: dict[str, str] = field(default_factory=dict)  # distribution -> "emulated by <plugin>"
    modules: dict[str, str] = field(default_factory=dict)  # vendor module -> plugin name
    _previous: dict[str, ModuleType | None] = field(default_factory=dict, repr=False)
    _before: frozenset[str] = field(default_factory=frozenset, repr=False)
    _packages: set[str] = field(default_factory=set, repr=False)

    def note(self) -> str:
        if not self.modules:
            return "emulated: no plugin offers an emulator for this platform; only torch-level kernels run"
        owners = ", ".join(f"{m} from {p}" for m, p in sorted(self.modules.items()))
        return (
            f"emulated: tensors on the host CPU; vendor APIs replaced by plain-torch emulators ({owners}). "
            "Results prove the plugin's glue, not the vendor kernels"
        )

    def remove(self) -> None:
        """Restore sys.modules: the vendor names as they were, and no module of an emulating plugin that
        was imported while the emulators were installed."""
        for name in set(sys.modules) - self._before:
            top = name.split(".", 1)[0]
            if top in self._packages or name in self._previous:
                del sys.modules[name]
        for name, module in self._previous.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        self._previous.clear()


def install(offers: Iterable[tuple[Any, Emulator]], platform: Platform, fail: Any) -> Installed:
    """Install every offered emulator for `platform`. `offers` yields (plugin info, Emulator);
    `fail(info, stage, exc)` records a plugin whose emulator cannot be imported (and drops that plugin)."""
    installed = Installed(_before=frozenset(sys.modules))
    for info, emulator in offers:
        if platform.name not in emulator.platforms:
            continue
        try:
            loaded = {vendor: importlib.import_module(target) for vendor, target in emulator.modules.items()}
        except Exception as exc:
            fail(info, "emulator", exc)
            continue
        # parents before children, so a dotted name can be attached to its parent module
        for vendor in sorted(loaded, key=lambda n: n.count(".")):
            installed._previous.setdefault(vendor, sys.modules.get(vendor))
            sys.modules[vendor] = loaded[vendor]
            parent, _, child = vendor.rpartition(".")
            if parent in sys.modules:
                setattr(sys.modules[parent], child, loaded[vendor])
            installed.modules[vendor] = info.name
        installed.provided.update(dict.fromkeys(emulator.provides, f"emulated by {info.name}"))
        if info.module is not None:
            installed._packages.add(info.module.__name__.split(".", 1)[0])
    return installed
