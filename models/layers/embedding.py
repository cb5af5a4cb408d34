"""Vocab-parallel token embedding and LM head: each rank holds a contiguous slice of the vocabulary
(padded up to a multiple of the tensor-parallel size)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

import anyaccel
from anyaccel.ops.linear import LinearSpec

from ..parallel import SINGLE, Parallel
from .linear import QuantConfig, ReplicatedLinear
from .module import Layer
from .ops import record
from .weights import WeightSlot, sharded_copy


class VocabParallelEmbedding(Layer):
    """weight: [ceil(vocab / world), hidden], rows [start, start + rows) of the vocabulary."""

    def __init__(self, vocab_size: int, hidden_size: int, parallel: Parallel = SINGLE, *, dtype: torch.dtype):
        super().__init__()
        self.vocab_size, self.parallel = vocab_size, parallel
        rows = -(-vocab_size // parallel.world_size)
        self.start = parallel.rank * rows
        self.stored = max(0, min(rows, vocab_size - self.start))  # rows that exist in the checkpoint
        self.weight = nn.Parameter(torch.zeros(rows, hidden_size, dtype=dtype), requires_grad=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids: [T] int64 -> [T, hidden]; ids outside this rank's slice contribute zeros to the sum."""
        if self.parallel.world_size == 1:
            return F.embedding(input_ids, self.weight)
        local = input_ids - self.start
        mine = (local >= 0) & (local < self.weight.shape[0])
        out = F.embedding(local.clamp(0, self.weight.shape[0] - 1), self.weight) * mine.unsqueeze(-1)
        return self.parallel.all_reduce(out)

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        shape = (self.vocab_size, self.weight.shape[1])
        yield WeightSlot(
            f"{prefix}.weight", shape, sharded_copy(self.weight.data, 0, self.start, self.stored)
        )


class ParallelLMHead(VocabParallelEmbedding):
    """logits = hidden @ weight.T over the whole vocabulary (each rank's slice, gathered). With tied
    embeddings the model shares the embedding's weight and this layer reads nothing from the checkpoint.
    `quantize(quant)` gives the head its own quantized weights (module `lm_head.proj`, read from the
    head's tensor, or the embedding's when tied), applied with that scheme's kernel."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        parallel: Parallel = SINGLE,
        *,
        dtype: torch.dtype,
        tied_to: VocabParallelEmbedding | None = None,
    ):
        super().__init__(vocab_size, hidden_size, parallel, dtype=dtype)
        self.tied = tied_to is not None
        self.proj: nn.Module | None = None
        self._gemm: Callable[..., torch.Tensor] | None = None
        self._gemm_weight: torch.Tensor | None = None
        if tied_to is not None:
            self.weight = tied_to.weight

    def quantize(self, quant: QuantConfig) -> None:
        """Compute the logits with `quant`'s scheme on weights of its own (one rank only)."""
        if self.parallel.world_size > 1:
            raise ValueError("a quantized LM head is not split across ranks yet")
        rows, hidden = self.weight.shape
        self.proj = ReplicatedLinear(hidden, rows, dtype=self.weight.dtype, quant=quant)
        if not self.tied:  # the dense copy is never read
            self.weight = nn.Parameter(self.weight.new_empty(0, hidden), requires_grad=False)

    def process_weights_after_loading(self) -> None:
        """Bind linear.gemm for a dense head (a quantized one's `proj` binds its scheme's op). A kernel that
        keeps weights in a layout of its own gets them converted once, into a copy: a tied weight stays
        the embedding's. A copy that is an ordinary tensor with the same values (the weight moved to memory
        the kernel reads faster) becomes the weight itself, so a tied weight is still held once."""
        if self.proj is not None:
            return
        rows, hidden = self.weight.shape
        resolution = anyaccel.resolve("linear.gemm", LinearSpec(self.weight.dtype, rows, hidden))
        record(self, resolution)
        prepared = resolution.prepare_weights({"weight": self.weight.data})["weight"]
        if prepared is not self.weight.data and _same_values(prepared, self.weight.data):
            self.weight.data = prepared
        self._gemm_weight = prepared
        self._gemm = resolution.fn

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden: [N, hidden] -> logits [N, vocab_size] in hidden's dtype."""
        if self.proj is not None:
            return self.proj(hidden)[:, : self.vocab_size]
        if self._gemm is not None and hidden.dim() == 2:
            logits = self._gemm(hidden, self._gemm_weight, None)
        else:  # before loading (or a caller's other shape): the plain product
            logits = F.linear(hidden, self.weight)
        if self.parallel.world_size > 1:
            logits = self.parallel.all_gather(logits, dim=-1)
        return logits[:, : self.vocab_size]

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        if not self.tied and self.proj is None:
            yield from super().weight_slots(prefix)


def _same_values(a: object, b: torch.Tensor) -> bool:
    """a is an ordinary tensor equal to b (shape, dtype, device and every value)."""
    return (
        isinstance(a, torch.Tensor)
        and a.layout == torch.strided
        and not a.is_mkldnn
        and (a.shape, a.dtype, a.device) == (b.shape, b.dtype, b.device)
        and torch.equal(a, b)
    )
