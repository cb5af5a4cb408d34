"""Emulator of the `flash_attn` package as FlashAttention-4 (flash-attn-4 4.0.0b36) installs it: only its
`flash_attn.cute` subpackage is emulated (see cute.py)."""
