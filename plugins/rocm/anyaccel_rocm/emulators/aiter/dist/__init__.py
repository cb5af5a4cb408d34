"""aiter.dist: AITER's distributed helpers (only the custom all-reduce communicator is emulated)."""
