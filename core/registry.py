"""Kernel records: what a provider offers for an op, as data.

A record names its target lazily ("module:function"), so registering thousands of kernels imports nothing.
The dispatcher (dispatch.py) filters records with a reason for every rejection and binds the best one.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch

from anyaccel.platforms.base import Capability, CapabilityRange, Platform

from .targets import load_target

# Providers that must rank after every vendor kernel, in this order (see Kernel.tier).
PORTABLE_PROVIDER = "triton"
REFERENCE_PROVIDER = "reference"
ANY = "*"  # in Kernel.platforms: runs wherever torch runs (the reference provider)


@dataclass(frozen=True)
class Kernel:
    """One implementation of one op.

    op:          the op contract it implements ("attention.decode")
    name:        "provider.kernel" ("flashinfer.trtllm_decode"); unique across all plugins
    target:      "module:function", imported only when selected. With factory=True the function is called
                 once per binding as target(spec, platform) and must return the kernel callable.
    platforms:   platform names it runs on ("*": any); needs_triton=True instead means every platform whose
                 descriptor says Triton runs there (the portable provider)
    capability:  None (any), an inclusive CapabilityRange (open-ended with CapabilityRange.at_least), or a
                 frozenset of Capability. Keep explicit sets for what a library simply does not build,
                 copied from the library's own gate with its source in a comment; say what the hardware
                 must do with `features` instead.
    features:    hardware features it requires ("tcgen05", "mfma"), in the vocabulary of its platform
                 family's module docstring (platforms/*.py); a device of that platform lacking one rejects
                 the kernel with a reason. Not checked when the kernel runs off its platforms.
    requires:    distributions that must be installed ("flashinfer-python"); checked from metadata only
    dtypes:      compute dtypes it accepts (empty: any dtype the platform supports)
    supports:    optional predicate(spec, platform) -> None if it can serve the spec, else the reason
    priority:    higher wins among vendor kernels; portable and reference kernels always rank last
    kv_layout:   for attention kernels, the KV-cache layout it reads/writes ("NHD", "HND" or a vendor's)
    kv_block_sizes: for attention kernels, the cache block sizes (tokens per block) it reads; empty: any.
                 Models allocate their cache with a size the best kernel reads (Ascend's paged attention:
                 128) unless the user fixed one.
    off_platform: optional () -> None | reason: whether the kernel can execute here even though this is not
                 one of its platforms (Triton's interpreter, MLX's CPU build); used by `anyaccel check -p`
    prepare:     optional "module:function" called once per weight set at load time as
                 prepare(spec, weights) -> weights, where weights maps the op's weight arguments
                 (OpDef.weights) to tensors in the contract's layout; it returns them in the layout this
                 kernel reads (FlashInfer's [up; gate] experts, AITER's shuffled tiles, a repacked int4)
    verified:    where its results have been checked against the conformance kit's oracles: "oracle" (it is
                 the reference), "cpu", "interpreter" (Triton's), "emulator" (the vendor API replaced by the
                 owning plugin's plain-torch emulator: proves the glue, not the vendor kernel), "hardware"
                 (on the device itself, recorded in docs/hardware-results.md)
    capturable:  host graphs (anyaccel.graphs) may record it: given its arguments' shapes and non-tensor
                 values it makes the same torch and registered foreign calls every time, reads tensor data
                 only inside them (no .tolist(), no numpy, no state kept in Python between calls) and has
                 no per-batch plan. The engine replays decode steps from such graphs on the host only when
                 every kernel of the model is capturable.
    """

    op: str
    name: str
    target: str
    platforms: frozenset[str] = frozenset()
    capability: CapabilityRange | frozenset[Capability] | None = None
    requires: tuple[str, ...] = ()
    dtypes: frozenset[torch.dtype] = frozenset()
    supports: Callable[[Any, Platform], str | None] | None = field(default=None, compare=False)
    priority: int = 0
    factory: bool = False
    kv_layout: str | None = None
    kv_block_sizes: frozenset[int] = frozenset()
    needs_triton: bool = False
    off_platform: Callable[[], str | None] | None = field(default=None, compare=False)
    prepare: str | None = None
    verified: str = ""
    features: frozenset[str] = frozenset()
    capturable: bool = False

    def __post_init__(self) -> None:
        if "." not in self.name or ":" not in self.target:
            raise ValueError(
                f"kernel {self.name!r}: name must be 'provider.kernel' and target 'module:function' "
                f"(got target {self.target!r})"
            )
        object.__setattr__(self, "platforms", frozenset(self.platforms))
        object.__setattr__(self, "dtypes", frozenset(self.dtypes))
        object.__setattr__(self, "kv_block_sizes", frozenset(self.kv_block_sizes))
        object.__setattr__(self, "features", frozenset(self.features))

    @property
    def provider(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tier(self) -> int:
        """0 for vendor kernels, 1 for the portable Triton provider, 2 for the torch reference."""
        return {PORTABLE_PROVIDER: 1, REFERENCE_PROVIDER: 2}.get(self.provider, 0)

    @property
    def capability_width(self) -> int:
        """Tie-break between equal priorities: the narrower declared range is the more specific kernel."""
        if self.capability is None:
            return 1 << 30
        if isinstance(self.capability, CapabilityRange):
            return self.capability.width
        return 0

    def load(self) -> Callable[..., Any]:
        return load_target(self.target)


@cache
def missing_distribution(name: str) -> bool:
    try:
        md.distribution(name)
        return False
    except md.PackageNotFoundError:
        return True


def kernels_by_op(kernels: Iterable[Kernel]) -> dict[str, list[Kernel]]:
    table: dict[str, list[Kernel]] = {}
    for k in kernels:
        table.setdefault(k.op, []).append(k)
    return table
