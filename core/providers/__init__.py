"""Built-in providers: `reference` (plain torch, runs everywhere) and `triton` (portable GPU kernels)."""
