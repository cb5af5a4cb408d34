"""Platform descriptor and capability model.

A `Platform` is plain data: everything the dispatcher and the models need to know about the device they run
on. Vendor knowledge lives in the per-family files beside this one (cuda.py, rocm.py, ...); each exports a
`PlatformFamily` that knows how to probe for its devices, parse capability names and describe a platform.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias


@dataclass(frozen=True)
class Capability:
    """A device capability, ordered within its family by `rank` (e.g. cuda sm_90 < sm_100 < sm_120).

    `flags` carries unordered features (CPU ISA extensions such as avx512 or amx). Comparing capabilities of
    two families is a programming error and raises TypeError.
    """

    family: str
    name: str
    rank: int = 0
    flags: frozenset[str] = frozenset()

    def _same_family(self, other: object) -> Capability:
        if not isinstance(other, Capability) or other.family != self.family:
            raise TypeError(f"cannot order capability {self} against {other!r}")
        return other

    def __lt__(self, other: object) -> bool:
        return self.rank < self._same_family(other).rank

    def __le__(self, other: object) -> bool:
        return self.rank <= self._same_family(other).rank

    def __gt__(self, other: object) -> bool:
        return self.rank > self._same_family(other).rank

    def __ge__(self, other: object) -> bool:
        return self.rank >= self._same_family(other).rank

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class CapabilityRange:
    """An inclusive range of capabilities of one family; the narrower of two matching ranges wins a tie.

    `high` None makes it open-ended: `low` and every newer capability of the family (`at_least`), shown as
    "sm_100+". An open range is wider than any closed one, so a closed range wins a priority tie against it.
    """

    low: Capability
    high: Capability | None = None

    def __post_init__(self) -> None:
        if self.high is not None and self.low > self.high:
            raise ValueError(f"empty capability range {self.low}..{self.high}")

    @classmethod
    def at_least(cls, low: Capability) -> CapabilityRange:
        """`low` and newer in its family: what a gate like "sm_90 or higher" means."""
        return cls(low, None)

    def __contains__(self, cap: object) -> bool:
        return (
            isinstance(cap, Capability)
            and cap.family == self.low.family
            and self.low.rank <= cap.rank
            and (self.high is None or cap.rank <= self.high.rank)
        )

    @property
    def width(self) -> int:
        return OPEN_WIDTH if self.high is None else self.high.rank - self.low.rank

    def __str__(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}..{self.high}"


# Width of an open-ended range: wider than any closed range of any family, narrower than no constraint.
OPEN_WIDTH = 1 << 29

# Where a hardware feature exists: a range of capabilities, or an explicit set where the family's order
# says nothing about the feature (gfx1100 ranks above gfx950 but has no MFMA).
Capabilities: TypeAlias = CapabilityRange | frozenset[Capability]


def features_of(table: Mapping[str, Capabilities], cap: Capability) -> frozenset[str]:
    """The features of a device of capability `cap`, from a family's feature -> capabilities table."""
    return frozenset(feature for feature, where in table.items() if cap in where)


@dataclass(frozen=True)
class Platform:
    """What anyaccel knows about the device it runs on. Frozen: selection results are cached per platform.

    name:          platform name used in kernel records and ANYACCEL_PLATFORM (cpu, cuda, rocm, npu, ...)
    device_type:   torch device type ("cuda" also for ROCm, "npu", "xpu", "mps", "musa", "cpu")
    dispatch_key:  torch dispatch key kernels register under (CUDA, PrivateUse1, XPU, MPS, CPU)
    dist_backend:  torch.distributed backend for this device (gloo, nccl, hccl, xccl, mccl)
    fp8_dtype:     name of the torch float8 dtype this hardware computes in (float8_e4m3fn, float8_e4m3fnuz)
    dtypes:        names of the torch dtypes kernels may be asked to compute in
    triton:        whether Triton kernels compile and run on this device
    features:      hardware features of this capability, from the family's one feature table (vocabulary:
                   the family module's docstring); kernels require them through Kernel.features
    simulated:     built from a name (ANYACCEL_SIMULATE / --simulate) for planning; kernels cannot run on it
    emulated:      built from a name (ANYACCEL_EMULATE / --emulate): described as the device would be, but
                   tensors live on the host CPU and vendor APIs are plain-torch emulators (core/emulation.py)
    notes:         lines `anyaccel info` shows under the platform (what a probe or emulation wants said)
    """

    name: str
    vendor: str
    device_type: str
    device_name: str
    device_count: int
    capability: Capability
    dispatch_key: str
    dist_backend: str
    fp8_dtype: str | None
    dtypes: tuple[str, ...]
    triton: bool
    features: frozenset[str] = frozenset()
    simulated: bool = False
    emulated: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def torch_device_type(self) -> str:
        """The torch device type tensors are allocated on: `device_type`, or "cpu" when emulated."""
        return "cpu" if self.emulated else self.device_type

    @property
    def torch_dist_backend(self) -> str:
        """The torch.distributed backend processes really use: `dist_backend`, or gloo when emulated."""
        return "gloo" if self.emulated else self.dist_backend

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vendor": self.vendor,
            "device_type": self.device_type,
            "device_name": self.device_name,
            "device_count": self.device_count,
            "capability": self.capability.name,
            "capability_flags": sorted(self.capability.flags),
            "features": sorted(self.features),
            "dispatch_key": self.dispatch_key,
            "dist_backend": self.dist_backend,
            "fp8_dtype": self.fp8_dtype,
            "dtypes": list(self.dtypes),
            "triton": self.triton,
            "simulated": self.simulated,
            "emulated": self.emulated,
            "notes": list(self.notes),
        }

    def replace(self, **changes: Any) -> Platform:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class PlatformFamily:
    """How one vendor family is found and described. Registered through the `anyaccel_platforms` hook.

    probe():               the platform if this family's devices are present, else None. Must be cheap,
                           must not initialise a device runtime that a later fork would inherit, and may
                           raise (the plugin manager records the exception as the reason).
    parse_capability(s):   the Capability named by s ("sm_100"); ValueError listing `examples` otherwise.
    describe(cap, ...):    the Platform for a device of capability `cap` (used by probe and by simulation).
    """

    name: str
    probe: Callable[[], Platform | None]
    parse_capability: Callable[[str], Capability]
    describe: Callable[..., Platform]
    examples: tuple[str, ...]

    def simulate(self, capability: str | None = None) -> Platform:
        cap = self.parse_capability(capability or self.examples[0])
        return self.describe(cap, device_name=f"simulated {self.name} {cap}", device_count=1, simulated=True)

    def emulate(self, capability: str | None = None) -> Platform:
        cap = self.parse_capability(capability or self.examples[0])
        return self.describe(cap, device_name=f"emulated {self.name} {cap}", device_count=1).replace(
            emulated=True
        )


def capability_error(family: str, text: str, examples: Iterable[str]) -> ValueError:
    return ValueError(f"unknown {family} capability {text!r}; expected one of the form {', '.join(examples)}")


def ranked_table(
    family: str, table: dict[str, int], examples: tuple[str, ...]
) -> Callable[[str], Capability]:
    """A capability parser for families whose names are a fixed, ordered vocabulary (npu SoCs, xpu arches)."""

    def parse(text: str) -> Capability:
        key = text.strip().lower()
        if key not in table:
            raise capability_error(family, text, examples)
        return Capability(family, key, table[key])

    return parse
