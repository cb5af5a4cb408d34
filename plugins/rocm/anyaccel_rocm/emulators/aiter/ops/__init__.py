"""aiter.ops: the package of AITER's op modules (only aiter.ops.shuffle is emulated as a submodule)."""
