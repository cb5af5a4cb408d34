"""Platform descriptors and detection: one small file per vendor family (rule 1 of the house)."""

from .base import Capability, CapabilityRange, Platform, PlatformFamily

__all__ = ["Capability", "CapabilityRange", "Platform", "PlatformFamily"]
