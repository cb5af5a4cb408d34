"""Attention arithmetic shared by the emulated attention functions: anyaccel's emulator arithmetic
(anyaccel.emulated_attention), fp32, one sequence at a time."""

from __future__ import annotations

from anyaccel.emulated_attention import attend_visible as attend

__all__ = ["attend"]
