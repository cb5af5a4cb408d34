"""ModelRunner: builds the model, loads its weights, allocates the paged KV cache and runs one batch per step.

Per step it builds the AttentionMetadata once (prefill sequences first, then one token per decode
sequence), lets every selected attention kernel plan from it, runs the model and returns the logits of
the last position of every sequence.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import torch

import anyaccel
from anyaccel.errors import ResolutionError

from ..config import ModelConfig, resolve_dtype
from ..gguf import GgufCheckpoint, GgufLoad, assign_schemes, load_gguf
from ..layers.attention import DEFAULT_BLOCK_SIZE, Attention, CacheConfig, ForwardMetadata
from ..layers.ops import resolutions
from ..loader import CheckpointError, load_weights
from ..parallel import Parallel
from ..registry import build_model
from .decode_graphs import DecodeGraphs, reason_off
from .sequence import Sequence


def platform_device() -> torch.device:
    """The device anyaccel detected (with this rank's index under torchrun on accelerators); the host on an
    emulated platform."""
    kind = anyaccel.get_platform().torch_device_type
    if kind == "cpu":
        return torch.device("cpu")
    return torch.device(kind, int(os.environ.get("LOCAL_RANK", "0")))


class ModelRunner:
    def __init__(
        self,
        model_dir: Path,
        config: ModelConfig,
        parallel: Parallel,
        *,
        dtype: str | torch.dtype,
        cache: CacheConfig,
        max_model_len: int,
        num_blocks: int | None,
        kv_cache_bytes: int,
        max_num_seqs: int,
        compile: bool = False,
        progress: bool = True,
        gguf: GgufCheckpoint | None = None,
        dequantize: bool = False,
        allow_nonfinite_weights: bool = False,
        activations: str = "float",
        enforce_eager: bool = False,
    ):
        self.device = platform_device()
        if self.device.type == "cpu":
            # fp32 arithmetic on subnormal numbers (attention weights of far-off keys, say) runs 10-100x
            # slower on CPUs; flushing them to zero changes results by less than 1.2e-38 (process-wide).
            torch.set_flush_denormal(True)
        self.dtype = resolve_dtype(dtype, config, anyaccel.get_platform().dtypes)
        try:
            self.model = build_model(config, parallel, self.dtype, cache, self.device)
        except ValueError as exc:  # a scheme refusing the checkpoint's quantization here: name the checkpoint
            raise CheckpointError(f"{model_dir}: {exc}") from None
        self.gguf_load: GgufLoad | None = None
        if gguf is not None:
            with torch.device(self.device):
                self.gguf_load = assign_schemes(
                    self.model, gguf, dequantize=dequantize, activations=activations
                )
            load_gguf(self.model, gguf, progress=progress)
        else:
            load_weights(self.model, model_dir, progress=progress, allow_nonfinite=allow_nonfinite_weights)
        self.layers = [m for m in self.model.modules() if isinstance(m, Attention)]
        self.block_size = self._block_size()
        self.attention_resolutions = [r for r in resolutions(self.model) if r.op.startswith("attention.")]
        self.num_blocks = num_blocks or self._fit_blocks(max_model_len, max_num_seqs, kv_cache_bytes)
        self.cache_bytes = sum(layer.allocate_cache(self.num_blocks, self.device) for layer in self.layers)
        self.forward = (
            torch.compile(self.model.forward, fullgraph=True, dynamic=True) if compile else self.model.forward
        )
        # why decode steps run eagerly (None: they replay host graphs, see decode_graphs)
        self.graphs_off = (
            "enforce_eager=True"
            if enforce_eager
            else reason_off(self.model, self.device, parallel.world_size, compile)
        )
        self.max_model_len = max_model_len
        self.decode_graphs: DecodeGraphs | None = None
        self.reset_graphs()

    def reset_graphs(self) -> None:
        """Drop the recorded decode graphs; the next decode steps record new ones. Graphs replay the calls
        the model made when they were recorded: writes into its tensors (param.data.copy_) are seen, but a
        model changed in Python afterwards (a module, a bound kernel or a parameter object replaced) is
        not, until this is called."""
        if not self.graphs_off:
            self.decode_graphs = DecodeGraphs(self.model, self.device, self.max_model_len, self.block_size)

    def _block_size(self) -> int:
        """The cache block size every layer's kernels read (each layer chose it with its decode kernel)."""
        sizes = sorted({layer.spec.block_size for layer in self.layers})
        if len(sizes) > 1:
            raise ResolutionError(
                f"the layers' attention kernels read KV blocks of different sizes {sizes}; "
                "pass block_size= one size they all read (anyaccel explain attention.decode lists them)"
            )
        return sizes[0] if sizes else DEFAULT_BLOCK_SIZE

    def _fit_blocks(self, max_model_len: int, max_num_seqs: int, budget: int) -> int:
        """Enough blocks for max_num_seqs full-length sequences, limited by `budget` bytes (at least one)."""
        per_block = sum(
            2
            * self.block_size
            * layer.spec.num_kv_heads
            * layer.spec.head_dim
            * layer.spec.cache_dtype.itemsize
            for layer in self.layers
        )
        blocks_per_seq = -(-max_model_len // self.block_size)
        return max(blocks_per_seq, min(blocks_per_seq * max_num_seqs, budget // per_block))

    def _tensor(self, values: list, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype, device=self.device)

    def _block_tables(self, seqs: list[Sequence]) -> torch.Tensor:
        width = max(len(s.block_table) for s in seqs)
        return self._tensor([s.block_table + [0] * (width - len(s.block_table)) for s in seqs], torch.int32)

    def prepare(self, prefill: list[Sequence], decode: list[Sequence]):
        """(input_ids [T], positions [T], metadata, indices [len(prefill) + len(decode)] of the rows whose
        logits are sampled)."""
        ids: list[int] = []
        positions: list[int] = []
        slots: list[int] = []
        cu: list[int] = [0]
        last: list[int] = []
        for seq in prefill:
            start = seq.num_cached_tokens
            ids += seq.token_ids[start:]
            positions += range(start, len(seq))
            slots += [seq.slot(p) for p in range(start, len(seq))]
            cu.append(cu[-1] + len(seq) - start)
            last.append(cu[-1] - 1)
        for seq in decode:
            ids.append(seq.token_ids[-1])
            positions.append(len(seq) - 1)
            slots.append(seq.slot(len(seq) - 1))
            last.append(len(ids) - 1)
        meta = ForwardMetadata(
            num_prefill_tokens=cu[-1],
            num_decode_tokens=len(decode),
            slot_mapping=self._tensor(slots, torch.int64),
            positions=self._tensor(positions, torch.int64),
        )
        if prefill:
            meta.cu_seqlens_q = self._tensor(cu, torch.int32)
            meta.max_seqlen_q = max(b - a for a, b in itertools.pairwise(cu))
            meta.prefill_seq_lens = self._tensor([len(s) for s in prefill], torch.int32)
            meta.prefill_max_seq_len = max(len(s) for s in prefill)
            meta.prefill_block_tables = self._block_tables(prefill)
            meta.has_prefix = any(s.num_cached_tokens for s in prefill)
        if decode:
            meta.decode_seq_lens = self._tensor([len(s) for s in decode], torch.int32)
            meta.decode_max_seq_len = max(len(s) for s in decode)
            meta.decode_block_tables = self._block_tables(decode)
        return self._tensor(ids, torch.int64), meta.positions, meta, self._tensor(last, torch.int64)

    @torch.inference_mode()
    def run(self, prefill: list[Sequence], decode: list[Sequence]) -> torch.Tensor:
        """Logits [len(prefill) + len(decode), vocab] float32 for the next token of each sequence."""
        if not prefill and self.decode_graphs is not None:
            logits = self.decode_graphs.run(decode)
            if logits is not None:
                return logits.float()
        input_ids, positions, meta, last = self.prepare(prefill, decode)
        for resolution in self.attention_resolutions:
            resolution.plan(meta)
        hidden = self.forward(input_ids, positions, meta)
        return self.model.compute_logits(hidden[last]).float()
