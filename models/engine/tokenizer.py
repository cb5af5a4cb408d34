"""Tokenizers: the checkpoint's own (tokenizer files in its directory, or a GGUF file's tokenizer and chat
template, through transformers), or the byte-level tokenizer for checkpoints that ship none (such as the
built-in demo): token i < 256 is byte i.

A GGUF file's tokenizer is converted by transformers from the file's metadata, every token and merge read
through the gguf package's reader: 3-5 s for SmolLM2's 49K tokens, on every load. The converted tokenizer is
therefore saved once (save_pretrained: JSON files only) under the cache directory, keyed by the file's
resolved path, size and modification time and by transformers' version, and later loads read that (a
fraction of a second). A cache entry that fails to load is rebuilt from the file.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


class ByteTokenizer:
    """UTF-8 bytes as token ids; ids >= 256 (none are produced by encode) decode to nothing."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, token_ids: list[int]) -> str:
        return bytes(t for t in token_ids if t < 256).decode("utf-8", errors="replace")


def load_tokenizer(
    model_dir: Path, vocab_size: int, gguf_tokenizer: bool = True, *, trust_remote_code: bool = False
) -> Any:
    """An object with encode(text) -> ids and decode(ids) -> text (and chat(messages) -> ids when the
    checkpoint has a chat template). model_dir: a checkpoint directory or a GGUF file (gguf_tokenizer: the
    file has tokenizer metadata). trust_remote_code is always passed to transformers, never left None:
    None makes it ask on stdin, so whatever a pipe feeds it could run the checkpoint's code."""
    if model_dir.is_file() and model_dir.suffix.lower() == ".gguf" and gguf_tokenizer:
        return _HFTokenizer(_gguf_tokenizer(model_dir, trust_remote_code))
    if any((model_dir / name).is_file() for name in TOKENIZER_FILES):
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
        return _HFTokenizer(hf)
    if vocab_size < 256:
        raise ValueError(
            f"{model_dir}: no tokenizer files, and the vocabulary ({vocab_size}) is too small for the "
            "byte-level tokenizer; pass token ids instead of text"
        )
    return ByteTokenizer()


def gguf_tokenizer_cache(path: Path) -> Path:
    """Where the converted tokenizer of the GGUF file at `path` is kept (see the module docstring)."""
    import transformers

    from anyaccel.env import cache_dir

    resolved = path.resolve()
    stat = resolved.stat()
    key = f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}\0{transformers.__version__}"
    return cache_dir() / "gguf-tokenizers" / hashlib.sha256(key.encode()).hexdigest()[:16]


def _gguf_tokenizer(path: Path, trust_remote_code: bool) -> Any:
    from transformers import AutoTokenizer

    cached = gguf_tokenizer_cache(path)
    if cached.is_dir():
        try:
            return AutoTokenizer.from_pretrained(str(cached), trust_remote_code=trust_remote_code)
        except Exception:  # whatever is wrong with a cache entry, the file can rebuild it
            shutil.rmtree(cached, ignore_errors=True)
    hf = AutoTokenizer.from_pretrained(
        str(path.parent), gguf_file=path.name, trust_remote_code=trust_remote_code
    )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=cached.parent))
    except OSError:  # a read-only cache directory: nothing is kept
        return hf
    try:  # saved aside and renamed into place: a partial entry is never read
        hf.save_pretrained(str(staging))
        staging.rename(cached)
    except OSError:  # a concurrent load saved it first (its entry is as good)
        shutil.rmtree(staging, ignore_errors=True)
    return hf


class _HFTokenizer:
    def __init__(self, hf: Any):
        self.hf = hf

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text)

    def decode(self, token_ids: list[int]) -> str:
        return self.hf.decode(token_ids, skip_special_tokens=True)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.hf, "chat_template", None))

    def chat(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of `messages` ([{"role": ..., "content": ...}]) through the chat template, ending with
        the assistant's turn opened."""
        ids = self.hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
