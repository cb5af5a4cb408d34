"""The attention every emulated attention API computes: anyaccel's shared emulator arithmetic
(anyaccel.emulated_attention), re-exported for this plugin's emulators."""

from anyaccel.emulated_attention import attend, gather_pages

__all__ = ["attend", "gather_pages"]
