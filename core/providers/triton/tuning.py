"""Tuning configurations as data, the plugin hook that extends them, and the per-device autotune cache.

Built-in tables (tuning_tables.TABLES) map kernel name -> platform key -> capability range -> shape bucket
-> config:
- platform key: a platform name ("cuda", "rocm", "xpu", "musa"), "interpreter" (TRITON_INTERPRET=1, which
  runs one config: multi-config autotuning and benchmarking do not work there) or "*" for any platform;
- capability range: "*", one capability ("sm_90") or an inclusive range ("sm_80..sm_89"), parsed by the
  platform's family; the narrowest range containing the device wins;
- shape bucket: "*" or an integer upper bound on the kernel's bucketing size (tokens, rows, sequence
  length); the smallest bound >= the call's size wins, "*" catches the rest;
- config: a dict of kernel constexprs and launch options (num_warps, num_stages), or a list of such dicts
  that are benchmarked once per device and bucket, the winner being cached on disk in
  $XDG_CACHE_HOME/anyaccel/triton/<device>.json (default ~/.cache).
A plugin contributes tables for its hardware through `anyaccel_tuning(platform)`, returning
{kernel name: {bucket: config}}; its buckets override the built-in ones key by key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anyaccel import context
from anyaccel.env import cache_dir
from anyaccel.platforms.base import Capability, CapabilityRange, Platform

from .launch import interpreting
from .tuning_tables import TABLES

Config = dict[str, Any]
Entry = Config | list[Config]
LAUNCH_OPTIONS = ("num_warps", "num_stages")


def _range(text: str, parse: Callable[[str], Capability]) -> CapabilityRange:
    low, _, high = text.partition("..")
    return CapabilityRange(parse(low), parse(high or low))


def _capability_entry(by_range: dict[str, Any], platform: Platform) -> dict[str, Entry]:
    """The bucket table of the narrowest capability range containing the device ("*" if none does)."""
    family = context.get().families.get(platform.name)
    best: tuple[int, dict[str, Entry]] | None = None
    for text, buckets in by_range.items():
        if text == "*" or family is None:
            continue
        rng = _range(text, family.parse_capability)
        if platform.capability in rng and (best is None or rng.width < best[0]):
            best = (rng.width, buckets)
    if best is not None:
        return best[1]
    return by_range.get("*", {})


def platform_key(platform: Platform) -> str:
    return "interpreter" if interpreting() else platform.name


def buckets_for(kernel: str, platform: Platform) -> dict[str, Entry]:
    """Built-in buckets for (kernel, platform), overridden key by key by every plugin's anyaccel_tuning."""
    table = TABLES.get(kernel)
    if table is None:
        raise KeyError(f"no tuning table for Triton kernel {kernel!r} (tuning_tables.TABLES)")
    key = platform_key(platform)
    buckets = dict(_capability_entry(table.get("*", {}), platform))
    buckets.update(_capability_entry(table.get(key, {}), platform))
    if key != "interpreter":
        for _info, contributed in context.get().plugins.call_each("anyaccel_tuning", platform=platform):
            buckets.update((contributed or {}).get(kernel, {}))
    if "*" not in buckets:
        raise KeyError(f"tuning table for {kernel} on {key} has no '*' bucket")
    return buckets


def cache_path(platform: Platform) -> Path:
    device = re.sub(r"[^0-9A-Za-z_.-]+", "_", f"{platform.name}-{platform.device_name}-{platform.capability}")
    return cache_dir() / "triton" / f"{device}.json"


class Tuning:
    """The configs of one kernel on one platform. `pick(size, bench)` returns the config for a call of
    bucketing size `size`; for a bucket holding several candidates it benchmarks each once with `bench`
    (config -> milliseconds) and remembers the winner in memory and on disk."""

    def __init__(self, kernel: str, platform: Platform) -> None:
        self.kernel = kernel
        self.platform = platform
        self.buckets = buckets_for(kernel, platform)
        self.bounds = sorted(int(b) for b in self.buckets if b != "*")
        self.chosen: dict[str, Config] = {}

    def bucket(self, size: int) -> str:
        return next((str(b) for b in self.bounds if size <= b), "*")

    def pick(self, size: int, bench: Callable[[Config], float] | None = None) -> Config:
        key = self.bucket(size)
        hit = self.chosen.get(key)
        if hit is None:
            hit = self.chosen[key] = self._choose(key, bench)
        return hit

    def _choose(self, key: str, bench: Callable[[Config], float] | None) -> Config:
        entry = self.buckets[key]
        if isinstance(entry, dict):
            return entry
        if interpreting() or bench is None or len(entry) == 1:
            return entry[0]
        path = cache_path(self.platform)
        cache = _read(path)
        slot = f"{self.kernel}|{key}"
        cached = cache.get(slot)
        if cached in entry:
            return cached
        best = min(entry, key=bench)
        cache[slot] = best
        _write(path, cache)
        return best


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict[str, Any]) -> None:
    """Atomic replace, so concurrent workers tuning the same device never read a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def split_options(config: Config) -> tuple[Config, Config]:
    """(kernel constexprs, launch options) of a config."""
    consts = {k: v for k, v in config.items() if k not in LAUNCH_OPTIONS}
    return consts, {k: v for k, v in config.items() if k in LAUNCH_OPTIONS}
