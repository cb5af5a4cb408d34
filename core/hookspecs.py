"""The anyaccel plugin API: every hook a plugin (or a built-in provider) may implement.

A plugin is a module of plain functions decorated with `hookimpl`, exposed through the entry-point group
`anyaccel.plugins`, and declaring the plugin-API versions it supports:

    ANYACCEL_PLUGIN_API = ">=1,<2"          # a PEP 440 specifier, checked against PLUGIN_API_VERSION

Every hook is optional. Hooks are called once per process (results are cached until `anyaccel.reset()`), and
an exception in any of them disables that plugin with status `failed` instead of propagating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from anyaccel.emulation import Emulator
    from anyaccel.ops.base import OpDef
    from anyaccel.ops.kv_cache import KVLayout
    from anyaccel.platforms.base import Platform, PlatformFamily
    from anyaccel.registry import Kernel

PROJECT = "anyaccel"
PLUGIN_API_VERSION = "1.0"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def anyaccel_available() -> str | None:  # type: ignore[empty-body]
    """Whether this plugin can work in this process: None if it can, else the reason it cannot
    ("mlx is not installed"). A plugin that returns a reason is listed as `inactive` and nothing else of it
    is called. Must be cheap and must not import the vendor runtime."""


@hookspec
def anyaccel_platforms() -> Sequence[PlatformFamily]:  # type: ignore[empty-body]
    """Platform families this plugin can detect (see platforms/base.py: PlatformFamily). A family named like
    a built-in one replaces it: the vendor's plugin knows its hardware best."""


@hookspec
def anyaccel_ops() -> Sequence[OpDef]:  # type: ignore[empty-body]
    """New op contracts (named family.name). The core's own ops need no registration."""


@hookspec
def anyaccel_kernels() -> Sequence[Kernel]:  # type: ignore[empty-body]
    """Kernel records for any op. Records are data: their targets are "module:function" strings imported
    only when the kernel is selected, so this hook must not import the vendor runtime."""


@hookspec
def anyaccel_kv_layouts() -> Sequence[KVLayout]:  # type: ignore[empty-body]
    """Paged KV-cache layouts this plugin's attention kernels read and write (AITER's x-packed keys,
    Ascend's layouts), beside the built-in NHD and HND. A kernel names its layout in `Kernel.kv_layout`; the
    engine allocates the cache in it once, at bind time. A name already registered with other shapes fails
    this plugin."""


@hookspec
def anyaccel_emulators() -> Sequence[Emulator]:  # type: ignore[empty-body]
    """Plain-torch emulators of the vendor Python APIs this plugin's kernels call (see core/emulation.py).
    They are imported and installed into sys.modules only on an emulated platform (ANYACCEL_EMULATE), never
    otherwise; they prove the plugin's glue against the conformance kit, not the vendor kernels."""


@hookspec
def anyaccel_tuning(platform: Platform) -> dict[str, dict]:  # type: ignore[empty-body]
    """Tuning tables for this platform, keyed by kernel name: {"triton.fused_moe": {shape_key: config}}.
    Later plugins override earlier ones key by key, so a vendor can ship configs for its own hardware."""
