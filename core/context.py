"""The process-wide state: settings, plugins, ops, kernels and the detected platform, built once on first
use and dropped by `anyaccel.reset()` (tests, or after changing ANYACCEL_* variables)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from anyaccel.platforms.base import Platform, PlatformFamily

from . import detect as _detect
from . import emulation
from .env import ALL_PACKAGES, Settings
from .errors import AnyaccelError, AnyaccelWarning
from .ops import CORE_OPS, OpDef
from .ops.kv_cache import BUILTIN_LAYOUTS, KVLayout
from .ownership import disable_intruders
from .plugins import PluginInfo, PluginSet, describe_exception, entry_points, load_plugins
from .registry import Kernel, kernels_by_op, missing_distribution


@dataclass
class Context:
    settings: Settings
    plugins: PluginSet
    families: dict[str, PlatformFamily]
    family_owner: dict[str, PluginInfo]
    ops: dict[str, OpDef]
    kernels: dict[str, list[Kernel]]
    kernel_owner: dict[str, PluginInfo]
    kv_layouts: dict[str, KVLayout] = field(default_factory=lambda: dict(BUILTIN_LAYOUTS))
    _detection: _detect.Detection | None = None
    _assumed: dict[str, str] = field(default_factory=dict)
    emulators: emulation.Installed | None = None
    resolutions: dict[Any, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # settings naming what is not there (`anyaccel info`)

    @property
    def detection(self) -> _detect.Detection:
        if self._detection is None:
            if self.settings.simulate:
                self._detection = _detect.Detection(_detect.simulate(self.families, self.settings.simulate))
                self._assumed = self._planned_packages()
            elif self.settings.emulate:
                self._detection = self._emulate(self.settings.emulate)
            else:
                self._detection = _detect.detect(
                    self.families, self.settings.platform, self._probe_failed, self.settings.probe_timeout
                )
        return self._detection

    @property
    def assumed(self) -> dict[str, str]:
        """Distributions treated as installed although they are not: {name: "emulated by <plugin>"} on an
        emulated platform, {name: "assumed installed"} when planning with --with."""
        _ = self.detection
        return self._assumed

    def _planned_packages(self) -> dict[str, str]:
        wanted = set(self.settings.simulate_with)
        if ALL_PACKAGES in wanted:
            wanted.discard(ALL_PACKAGES)
            wanted.update(d for ks in self.kernels.values() for k in ks for d in k.requires)
        return dict.fromkeys(sorted(d for d in wanted if missing_distribution(d)), "assumed installed")

    def _emulate(self, target: str) -> _detect.Detection:
        platform = _detect.emulate(self.families, target)
        self.emulators = emulation.install(
            self.plugins.items("anyaccel_emulators"), platform, self.plugins.fail
        )
        self._assumed = dict(self.emulators.provided)
        return _detect.Detection(platform.replace(notes=(*platform.notes, self.emulators.note())))

    @property
    def platform(self) -> Platform:
        return self.detection.platform

    def _probe_failed(self, family: PlatformFamily, exc: BaseException) -> str:
        owner = self.family_owner[family.name]
        if not owner.builtin:
            self.plugins.fail(owner, f"detecting {family.name}", exc)
        elif self.settings.strict:
            raise AnyaccelError(f"probing {family.name} failed: {describe_exception(exc)}") from exc
        return describe_exception(exc)

    def op(self, name: str) -> OpDef:
        try:
            return self.ops[name]
        except KeyError:
            raise ValueError(f"unknown op {name!r}; known ops: {', '.join(sorted(self.ops))}") from None

    def kernels_for(self, op: str) -> list[Kernel]:
        """Kernels of active plugins only (a plugin that failed detection after loading drops out)."""
        return [k for k in self.kernels.get(op, []) if self.kernel_owner[k.name].status == "active"]


def build(settings: Settings | None = None, extra: Sequence[tuple[str, ModuleType]] = ()) -> Context:
    """A context from the environment's settings; `extra` adds (name, module) plugins not installed."""
    settings = settings or Settings.from_environ()
    plugins = load_plugins(settings.plugins, settings.strict, extra, settings.probe_timeout)
    families: dict[str, PlatformFamily] = {}
    family_owner: dict[str, PluginInfo] = {}
    for info, family in plugins.items("anyaccel_platforms"):
        families[family.name] = family  # a plugin's family replaces the built-in of the same name
        family_owner[family.name] = info
    ops = {op.name: op for op in CORE_OPS}
    for info, op in plugins.items("anyaccel_ops"):
        if op.name in ops:
            plugins.fail(info, "registration", ValueError(f"op {op.name} is already defined"))
            continue
        ops[op.name] = op
    unknown = sorted((settings.kernels.forced.keys() | settings.kernels.forbidden.keys()) - ops.keys())
    if unknown:
        raise ValueError(
            f"ANYACCEL_KERNELS names unknown op(s) {', '.join(unknown)}; known ops: {', '.join(sorted(ops))}"
        )
    disable_intruders(plugins)
    kernel_owner: dict[str, PluginInfo] = {}
    records: list[Kernel] = []
    for info, kernel in plugins.items("anyaccel_kernels"):
        clash = kernel_owner.get(kernel.name)
        if clash is not None or kernel.op not in ops:
            why = (
                f"kernel {kernel.name} is already registered by {clash.name}"
                if clash
                else f"kernel {kernel.name} implements unknown op {kernel.op}"
            )
            plugins.fail(info, "registration", ValueError(why))
            continue
        kernel_owner[kernel.name] = info
        records.append(kernel)
    layouts = dict(BUILTIN_LAYOUTS)
    for info, kv_layout in plugins.items("anyaccel_kv_layouts"):
        known = layouts.setdefault(kv_layout.name, kv_layout)
        if known is not kv_layout and known != kv_layout:
            why = f"KV layout {kv_layout.name} is already registered with other shapes"
            plugins.fail(info, "registration", ValueError(why))
    ctx = Context(
        settings, plugins, families, family_owner, ops, kernels_by_op(records), kernel_owner, layouts
    )
    ctx.warnings = _unknown_names(settings, plugins, kernel_owner)
    for message in ctx.warnings:
        warnings.warn(message, AnyaccelWarning, stacklevel=3)
    return ctx


def _unknown_names(settings: Settings, plugins: PluginSet, kernel_owner: dict[str, PluginInfo]) -> list[str]:
    """Settings that name kernels or plugins that are not there: warnings, not errors (a deployment may set
    them for machines where the plugin is installed)."""
    found = []
    for op, names in sorted(settings.kernels.forbidden.items()):
        found += [
            f"ANYACCEL_KERNELS forbids {name} for {op}, which is not registered"
            for name in sorted(names)
            if name not in kernel_owner
        ]
    if settings.plugins:
        eps = entry_points()
        dists = {ep.dist.name for ep in eps if ep.dist is not None}
        found += [
            f"ANYACCEL_PLUGINS names {name}, which is not installed; installed: {', '.join(sorted(dists))}"
            for name in sorted(settings.plugins - dists - {ep.name for ep in eps})
        ]
    return found


_CONTEXT: Context | None = None


def get() -> Context:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = build()
    return _CONTEXT


def activate(ctx: Context) -> Context:
    """Make `ctx` the process's context until the next reset (planning with a plugin not yet installed)."""
    global _CONTEXT
    reset()
    _CONTEXT = ctx
    return ctx


def reset() -> None:
    """Forget plugins, platform, KV layouts, every cached selection and any installed emulator; the next call
    rebuilds from the environment."""
    global _CONTEXT
    if _CONTEXT is not None and _CONTEXT.emulators is not None:
        _CONTEXT.emulators.remove()
    _CONTEXT = None
