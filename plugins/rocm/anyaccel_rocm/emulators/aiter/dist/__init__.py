"""aiter.dist: AITER's distributed helpers (the custom and the quick all-reduce communicators are
emulated)."""
