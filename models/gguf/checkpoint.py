"""A GGUF file opened with the `gguf` package's reader (llama.cpp's own; memory-mapped, nothing is
executed or unpickled): its config, its tensors under Hugging Face names, each in the layout the layer's
scheme reads.

`tensor(name)` answers a loader slot's name. For a module whose GGUF tensor is quantized it serves the
scheme parameters below that module:
    4-bit affine types (Q4_0, Q4_1, Q4_K): qweight [N, K/8] int32, scales and qzeros (offsets) [N, K/32]
        in the dtype that holds them exactly, float16 for Q4_0 / Q4_1 as the file stores them, float32 for
        Q4_K (blocks.AFFINE4_SCALES; "w4_affine")
    8-bit types (Q8_0, Q6_K): qweight [N, K] int8, scales [N, K/G] float32 ("w8_group")
and `weight` (float32, dequantized) for layers kept dense. Stacked expert tensors [E, N, K] serve each
expert's slice.
"""

from __future__ import annotations

import functools
import mmap
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import blocks
from .metadata import PERMUTED_QK, GgufError, hf_config, hf_name, unpermute_rows

SCALAR_KEYS = ("general.architecture", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id")
_SHIFTS = np.arange(0, 32, 4, dtype=np.uint32)


def is_gguf(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix.lower() == ".gguf"


def pack_words(q: np.ndarray) -> np.ndarray:
    """q [rows, K] in 0..15 -> int32 [rows, K/8], feature 8c+i in bits 4i of word c (low bits first)."""
    words = (q.reshape(q.shape[0], -1, 8).astype(np.uint32) << _SHIFTS).sum(axis=-1, dtype=np.uint32)
    return words.view(np.int32)


def scheme_for(qtype: str, activations: str = "float") -> dict[str, Any] | None:
    """The quantization_config of the scheme that keeps a GGUF type as stored (None: dense)."""
    if qtype in blocks.AFFINE4:
        return {
            "quant_method": "w4_affine",
            "group_size": blocks.QK,
            "activations": activations,
            "scales_dtype": blocks.AFFINE4_SCALES[qtype],
        }
    if qtype in blocks.INT8:
        return {"quant_method": "w8_group", "group_size": blocks.INT8[qtype], "activations": activations}
    return None


class GgufCheckpoint:
    def __init__(self, path: str | Path) -> None:
        import gguf

        self.path = Path(path)
        try:
            self.reader = gguf.GGUFReader(str(self.path))
        except (ValueError, OSError) as exc:
            raise GgufError(f"{self.path}: not a readable GGUF file ({exc})") from None
        self.fields = {key: self._field(key) for key in self.reader.fields if self._wanted(key)}
        self.fields["tokenizer.ggml.tokens"] = range(self._count("tokenizer.ggml.tokens"))  # only its size
        self.has_tokenizer = "tokenizer.ggml.model" in self.reader.fields
        self.gguf_tensors = {t.name: t for t in self.reader.tensors}
        self.config = hf_config(str(self.path), self.fields, set(self.gguf_tensors))
        self.arch = self.fields["general.architecture"]
        # Hugging Face module (".weight" / ".bias" stripped) -> (GGUF tensor name, expert index or None)
        self.modules: dict[str, tuple[str, int | None]] = {}
        self.biases: dict[str, str] = {}
        for name, t in self.gguf_tensors.items():
            mapped = hf_name(name)
            if mapped is None:
                continue
            hf, expert = mapped
            module, _, kind = hf.rpartition(".")
            if kind == "bias":
                self.biases[module] = name
            elif expert is None:
                self.modules[module] = (name, None)
            else:
                for e in range(int(t.shape[-1])):  # GGUF lists dims innermost first: [K, N, E]
                    self.modules[module.format(e=e)] = (name, e)
        if self.config["tie_word_embeddings"]:
            self.modules["lm_head"] = self.modules["model.embed_tokens"]
        if "lm_head" in self.modules:  # a quantized head's own linear layer (ParallelLMHead.quantize)
            self.modules["lm_head.proj"] = self.modules["lm_head"]

    @property
    def parameters(self) -> int:
        """Values stored in the file's tensors (the model's parameter count)."""
        return sum(int(t.n_elements) for t in self.gguf_tensors.values())

    def _wanted(self, key: str) -> bool:
        return not key.startswith("tokenizer.ggml.") or key in SCALAR_KEYS

    def _count(self, key: str) -> int:
        field = self.reader.fields.get(key)
        return 0 if field is None else len(field.data)

    def _field(self, key: str) -> Any:
        value = self.reader.fields[key].contents()
        return value

    def type_of(self, module: str) -> str:
        """The GGUF type name of the tensor behind a Hugging Face module ("F32", "Q4_1", ...)."""
        name, _ = self._locate(module)
        return self.gguf_tensors[name].tensor_type.name

    def _locate(self, module: str) -> tuple[str, int | None]:
        try:
            return self.modules[module]
        except KeyError:
            raise GgufError(f"{self.path}: no GGUF tensor for {module}") from None

    def has(self, name: str) -> bool:
        module, _, kind = name.rpartition(".")
        if kind == "bias":
            return module in self.biases
        return kind in ("weight", "qweight", "scales", "qzeros") and module in self.modules

    def tensor(self, name: str) -> torch.Tensor:
        """The tensor a slot named `name` reads (full, unsharded)."""
        module, _, kind = name.rpartition(".")
        if kind == "bias":
            if module not in self.biases:
                raise GgufError(f"{self.path}: no GGUF tensor for {name}")
            return self._dense(self.biases[module], None, module)
        gguf_name, expert = self._locate(module)
        qtype = self.gguf_tensors[gguf_name].tensor_type.name
        if kind == "weight":
            return self._dense(gguf_name, expert, module)
        parts = self._quantized(gguf_name, expert, module)
        if kind not in parts:
            raise GgufError(f"{self.path}: a {qtype} tensor ({gguf_name}) has no {kind} for {name}")
        return parts[kind]

    def _raw(self, gguf_name: str, expert: int | None) -> tuple[str, np.ndarray, tuple[int, ...]]:
        t = self.gguf_tensors[gguf_name]
        qtype = t.tensor_type.name
        if qtype not in blocks.SUPPORTED:
            raise GgufError(f"{self.path}: tensor {gguf_name}: {blocks.unsupported(qtype)}")
        shape = tuple(int(d) for d in reversed(t.shape))  # row-major: [(E,) N, K]
        data = t.data
        if expert is not None:
            data, shape = data[expert], shape[1:]
        return qtype, np.asarray(data), shape

    def _rows(self, module: str) -> int | None:
        """Heads whose rows llama.cpp permuted in this module's tensor (None: not permuted)."""
        if self.arch not in PERMUTED_QK:
            return None
        if module.endswith("self_attn.q_proj"):
            return self.config["num_attention_heads"]
        if module.endswith("self_attn.k_proj"):
            return self.config["num_key_value_heads"]
        return None

    def _release(self, gguf_name: str) -> None:
        """Drop a tensor's pages of the memory-mapped file from this process's resident memory once it has
        been converted (the results are copies: the map is read-only). They stay in the page cache, and a
        later read (a tied head reading the embedding again) faults them back in. Without this, every page
        the load touched would stay resident beside the model's own copy: 540 MB more for a float32
        SmolLM2-135M."""
        view = getattr(self.reader.data, "_mmap", None)  # np.memmap's map of the whole file
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if view is None or advice is None:
            return
        t = self.gguf_tensors[gguf_name]
        start = int(t.data_offset) // mmap.PAGESIZE * mmap.PAGESIZE
        end = int(t.data_offset) + int(t.n_bytes)
        end = (end // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages only: the next tensor may share the last
        if end > start:
            view.madvise(advice, start, end - start)

    def _dense(self, gguf_name: str, expert: int | None, module: str) -> torch.Tensor:
        qtype, raw, shape = self._raw(gguf_name, expert)
        values = blocks.dequantize(qtype, raw, shape)
        heads = self._rows(module)
        if heads is not None:
            values = unpermute_rows(values, heads)
        out = torch.from_numpy(np.require(values, requirements=["C", "W"]))
        self._release(gguf_name)
        return out

    @functools.lru_cache(maxsize=8)  # noqa: B019  (one checkpoint per engine; a few tensors at a time)
    def _quantized(self, gguf_name: str, expert: int | None, module: str) -> dict[str, torch.Tensor]:
        qtype, raw, shape = self._raw(gguf_name, expert)
        raw = raw.reshape(-1, raw.shape[-1])
        heads = self._rows(module)

        def rows(a: np.ndarray) -> torch.Tensor:
            if heads is not None:
                a = unpermute_rows(a, heads)
            return torch.from_numpy(np.require(a, requirements=["C", "W"]))

        parts: dict[str, torch.Tensor] = {}
        if qtype in blocks.AFFINE4:
            q, scale, offset = blocks.affine4(qtype, raw)
            stored = np.dtype(blocks.AFFINE4_SCALES[qtype])
            with np.errstate(over="ignore"):  # an overflow is reported below, naming the tensor
                scale, offset = scale.astype(stored), offset.astype(stored)
            if np.isinf(offset).any():  # Q4_0's -8d past float16's 65504: no finite weight is that large
                raise GgufError(
                    f"{self.path}: {gguf_name}: {qtype} offsets -8d overflow float16 (|d| > 8188)"
                )
            parts = {"qweight": rows(pack_words(q)), "scales": rows(scale), "qzeros": rows(offset)}
        elif qtype in blocks.INT8:
            q, scale = blocks.int8(qtype, raw)
            parts = {"qweight": rows(q), "scales": rows(scale)}
        if parts:
            self._release(gguf_name)
        return parts
