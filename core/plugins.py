"""Plugin discovery and isolation.

Built-in providers and vendor plugins go through one path: the module is loaded, its declared plugin-API
range is checked, `anyaccel_available()` may deactivate it, and its hooks are called one plugin at a time so
that one broken plugin never takes the others down. Every outcome becomes a `PluginInfo` that
`anyaccel info` shows; under ANYACCEL_STRICT=1 a failure is raised instead.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata as md
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from . import hookspecs
from .errors import StrictModeError

ENTRY_POINT_GROUP = "anyaccel.plugins"
BUILTIN_MODULES = ("anyaccel.platforms.builtin", "anyaccel.providers.reference", "anyaccel.providers.triton")


@dataclass
class PluginInfo:
    """One row of `anyaccel info`'s plugin table. status: active | inactive | failed | incompatible."""

    name: str
    version: str
    status: str = "active"
    reason: str = ""
    builtin: bool = False
    module: ModuleType | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "status": self.status, "reason": self.reason}


def describe_exception(exc: BaseException) -> str:
    """Exception type and the first line of its message: short enough for a table, enough to act on."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@dataclass
class PluginSet:
    """Everything the active plugins contributed, with the provenance `anyaccel info` reports."""

    infos: list[PluginInfo]
    contributions: dict[str, dict[str, list[Any]]]  # plugin name -> hook name -> returned items
    manager: pluggy.PluginManager
    strict: bool

    def items(self, hook: str) -> Iterable[tuple[PluginInfo, Any]]:
        for info in self.infos:
            if info.status == "active":
                for item in self.contributions.get(info.name, {}).get(hook, []):
                    yield info, item

    def fail(self, info: PluginInfo, stage: str, exc: BaseException) -> None:
        """Record a failure that happened after loading (detection, tuning); raise it under strict mode."""
        info.status, info.reason = "failed", f"{stage}: {describe_exception(exc)}"
        if self.strict:
            raise StrictModeError(
                f"plugin {info.name} failed during {stage}: {describe_exception(exc)}"
            ) from exc

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[PluginInfo, Any]]:
        """Call `hook` plugin by plugin, isolating failures. Used for hooks that take arguments."""
        by_module = {info.module: info for info in self.infos if info.status == "active"}
        results = []
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            info = by_module.get(impl.plugin)
            if info is None:
                continue
            try:
                results.append((info, impl.function(**kwargs)))
            except Exception as exc:
                self.fail(info, hook, exc)
        return results


_COLLECTED_HOOKS = (
    "anyaccel_platforms",
    "anyaccel_ops",
    "anyaccel_kernels",
    "anyaccel_kv_layouts",
    "anyaccel_emulators",
)


def _api_mismatch(module: ModuleType) -> str | None:
    declared = getattr(module, "ANYACCEL_PLUGIN_API", None)
    if declared is None:
        api = hookspecs.PLUGIN_API_VERSION
        return f"declares no ANYACCEL_PLUGIN_API (this anyaccel implements plugin API {api})"
    try:
        ok = Version(hookspecs.PLUGIN_API_VERSION) in SpecifierSet(str(declared))
    except InvalidSpecifier:
        return f"ANYACCEL_PLUGIN_API {declared!r} is not a version specifier such as '>=1,<2'"
    if not ok:
        return f"supports plugin API {declared}, this anyaccel implements {hookspecs.PLUGIN_API_VERSION}"
    return None


def _register(pm: pluggy.PluginManager, info: PluginInfo, load: Callable[[], ModuleType]) -> dict[str, list]:
    """Load, check and register one plugin; returns what its collecting hooks returned (empty unless
    active)."""
    try:
        module = load()
    except Exception as exc:
        info.status, info.reason = "failed", f"import: {describe_exception(exc)}"
        return {}
    info.module = module
    mismatch = _api_mismatch(module)
    if mismatch:
        info.status, info.reason = "incompatible", mismatch
        return {}
    try:
        unavailable = module.anyaccel_available() if hasattr(module, "anyaccel_available") else None
        if unavailable:
            info.status, info.reason = "inactive", str(unavailable)
            return {}
        pm.register(module, name=info.name)
        collected: dict[str, list] = {}
        for hook in _COLLECTED_HOOKS:
            fn = getattr(module, hook, None)
            if fn is not None:
                collected[hook] = list(fn() or ())
        return collected
    except Exception as exc:
        if pm.is_registered(module):
            pm.unregister(module)
        info.status, info.reason = "failed", f"registration: {describe_exception(exc)}"
        return {}


def _entry_points() -> list[md.EntryPoint]:
    return sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def load_plugins(
    allow: frozenset[str] | None, strict: bool, extra: Sequence[tuple[str, ModuleType]] = ()
) -> PluginSet:
    """Load the built-ins and every allowed entry-point plugin. `allow` None means every installed plugin.
    `extra` adds (name, module) plugins that are not installed (`anyaccel new-plugin` plans for the plugin it
    has just written), checked like any other."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    contributions: dict[str, dict[str, list]] = {}
    version = md.version("anyaccel") if _installed("anyaccel") else "0+unknown"
    for modname in BUILTIN_MODULES:
        info = PluginInfo(modname, version, builtin=True)
        contributions[info.name] = _register(pm, info, functools.partial(importlib.import_module, modname))
        infos.append(info)
    for ep in _entry_points():
        dist = ep.dist
        name = dist.name if dist is not None else ep.name
        if allow is not None and name not in allow and ep.name not in allow:
            continue
        info = PluginInfo(name, dist.version if dist is not None else "?")
        contributions[info.name] = _register(pm, info, ep.load)
        infos.append(info)
    for name, module in extra:
        info = PluginInfo(name, "0+unreleased")
        contributions[info.name] = _register(pm, info, functools.partial(_given, module))
        infos.append(info)
    failures = [i for i in infos if i.status == "failed"]
    if strict and failures:
        raise StrictModeError("; ".join(f"plugin {i.name} failed ({i.reason})" for i in failures))
    return PluginSet(infos, contributions, pm, strict)


def _given(module: ModuleType) -> ModuleType:
    return module


def _installed(dist: str) -> bool:
    try:
        md.distribution(dist)
        return True
    except md.PackageNotFoundError:
        return False
