"""GGUF checkpoints (llama.cpp's format), read with the `gguf` package: config, tokenizer and weights, the
quantized ones kept in the layouts our quantized GEMMs read. See docs/models.md."""

from .checkpoint import GgufCheckpoint, is_gguf
from .load import GgufLoad, assign_schemes, load_gguf
from .metadata import GgufError

__all__ = ["GgufCheckpoint", "GgufError", "GgufLoad", "assign_schemes", "is_gguf", "load_gguf"]
