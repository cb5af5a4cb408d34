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
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from . import hookspecs
from .deadline import DEFAULT_SECONDS, call_with_deadline
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


def _expected() -> dict[str, type]:
    """What each collecting hook must return a sequence of."""
    from anyaccel.platforms.base import PlatformFamily

    from .emulation import Emulator
    from .ops.base import OpDef
    from .ops.kv_cache import KVLayout
    from .registry import Kernel

    return {
        "anyaccel_platforms": PlatformFamily,
        "anyaccel_ops": OpDef,
        "anyaccel_kernels": Kernel,
        "anyaccel_kv_layouts": KVLayout,
        "anyaccel_emulators": Emulator,
    }


def _collect(hook: str, fn: Callable[[], Any], want: type) -> list:
    returned = fn()
    if returned is None:
        return []
    if isinstance(returned, (str, bytes)) or not isinstance(returned, Iterable):
        raise TypeError(f"{hook}() returned {type(returned).__name__}, expected a list of {want.__name__}")
    items = list(returned)
    wrong = [item for item in items if not isinstance(item, want)]
    if wrong:
        raise TypeError(
            f"{hook}() returned {wrong[0]!r} ({type(wrong[0]).__name__}), expected {want.__name__}"
        )
    return items


def _register(
    pm: pluggy.PluginManager, info: PluginInfo, load: Callable[[], ModuleType], timeout: float
) -> dict[str, list]:
    """Load, check and register one plugin; returns what its collecting hooks returned (empty unless
    active). An exception, a SystemExit, a hang past `timeout` seconds (import and availability check) or a
    hook returning something else than its spec says fails this plugin only. The built-ins are anyaccel's
    own code and are imported directly: a slow machine must never lose the cpu family to a time-out."""
    try:
        module = load() if info.builtin else call_with_deadline(load, timeout, f"importing {info.name}")
    except (Exception, SystemExit) as exc:
        info.status, info.reason = "failed", f"import: {describe_exception(exc)}"
        return {}
    info.module = module
    mismatch = _api_mismatch(module)
    if mismatch:
        info.status, info.reason = "incompatible", mismatch
        return {}
    try:
        available = getattr(module, "anyaccel_available", None)
        unavailable = (
            call_with_deadline(available, timeout, f"{info.name}: anyaccel_available()")
            if available
            else None
        )
        if unavailable:
            info.status, info.reason = "inactive", str(unavailable)
            return {}
        pm.register(module, name=info.name)
        collected: dict[str, list] = {}
        for hook, want in _expected().items():
            fn = getattr(module, hook, None)
            if fn is not None:
                collected[hook] = _collect(hook, fn, want)
        return collected
    except (Exception, SystemExit) as exc:
        if pm.is_registered(module):
            pm.unregister(module)
        info.status, info.reason = "failed", f"registration: {describe_exception(exc)}"
        return {}


def entry_points() -> list[md.EntryPoint]:
    return sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def load_plugins(
    allow: frozenset[str] | None,
    strict: bool,
    extra: Sequence[tuple[str, ModuleType]] = (),
    timeout: float = DEFAULT_SECONDS,
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
        load = functools.partial(importlib.import_module, modname)
        contributions[info.name] = _register(pm, info, load, timeout)
        infos.append(info)
    eps = entry_points()
    per_dist = Counter(ep.dist.name for ep in eps if ep.dist is not None)
    for ep in eps:
        dist = ep.dist
        # a distribution with several entry points in the group is several plugins: name each apart
        shared = dist is not None and per_dist[dist.name] > 1
        name = ep.name if dist is None else f"{dist.name}:{ep.name}" if shared else dist.name
        if allow is not None and not {name, ep.name, dist.name if dist else ep.name} & allow:
            continue
        info = PluginInfo(name, dist.version if dist is not None else "?")
        contributions[info.name] = _register(pm, info, ep.load, timeout)
        infos.append(info)
    for name, module in extra:
        info = PluginInfo(name, "0+unreleased")
        contributions[info.name] = _register(pm, info, functools.partial(_given, module), timeout)
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
