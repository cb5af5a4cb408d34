"""Which kernels a conformance run asks for: an op, a provider, one kernel, one plugin, or all of them."""

from __future__ import annotations

from dataclasses import dataclass

from anyaccel.registry import Kernel


@dataclass(frozen=True)
class Selection:
    """op: "attention.decode"; provider: "triton"; kernel: "cpu.rms_norm"; plugin: a distribution name
    ("anyaccel-cuda"). Naming a provider, kernel or plugin also lets those kernels run off their platforms
    where their records allow it (Triton's interpreter, MLX's CPU build)."""

    op: str | None = None
    provider: str | None = None
    kernel: str | None = None
    plugin: str | None = None

    @property
    def relaxed(self) -> bool:
        return any((self.provider, self.kernel, self.plugin))

    def matches(self, k: Kernel, owner: str) -> bool:
        return (
            (self.provider is None or k.provider == self.provider)
            and (self.kernel is None or k.name == self.kernel)
            and (self.plugin is None or owner == self.plugin)
        )

    def describe(self) -> str:
        parts = [
            f"kernel {self.kernel}" if self.kernel else "",
            f"provider {self.provider}" if self.provider and not self.kernel else "",
            f"plugin {self.plugin}" if self.plugin else "",
            f"op {self.op}" if self.op else "",
        ]
        return " and ".join(p for p in parts if p) or "any kernel"
