"""Decode steps replayed from host graphs (anyaccel.graphs): one graph per decode batch size.

A decode-only step of B sequences always makes the same kernel calls on the same shapes, given inputs of
fixed shape: the token ids, positions and cache slots [B], the lengths [B], block tables padded to the
widest a sequence can need [B, ceil(max_model_len / block_size)], and max_seq_len pinned to max_model_len
(an upper bound, as the contract allows). The first such step of each B runs eagerly while it is recorded;
the next one replays the graph and, once, runs eagerly as well to check the replay gives the same logits
bit for bit. From then on each step writes its inputs into the graph's tensors and replays it. A graph
holds every intermediate tensor of its step (an eager step frees each layer's as it goes), so graphs share a
memory budget (`budget_bytes`, 256 MiB by default): a batch size whose graph would exceed what is left runs
eagerly.

Graphs are used only where replay is exact by construction (`reason_off` says why not otherwise): host
tensors, one rank, no torch.compile, every kernel the model bound declares itself capturable. A capture
that meets something it cannot repeat, a replay that differs from the eager run, or a kernel status that
differs from the captured one (a bad block id, say) sends that batch size back to eager steps, which raise
the kernels' own errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from anyaccel.graphs import HostGraph, NotCapturable, ReplayMismatch

from ..decoder import CausalLM
from ..layers.attention import ForwardMetadata
from ..layers.ops import resolutions
from .sequence import Sequence

log = logging.getLogger(__name__)


def reason_off(model: nn.Module, device: torch.device, world_size: int, compiled: bool) -> str | None:
    """None when decode steps may be replayed from host graphs, else why not."""
    if device.type != "cpu":
        return f"tensors live on {device.type}, host graphs replay host kernels only"
    if world_size > 1:
        return "the model is split across ranks (collectives are not recorded)"
    if compiled:
        return "torch.compile runs the model"
    for res in resolutions(model):
        if res.op == "attention.prefill":  # prefill steps run eagerly
            continue
        if res.selected is not None and not res.selected.capturable:
            return f"{res.op} runs {res.selected.name}, which is not capturable"
    return None


@dataclass
class _Batch:
    """One decode batch size: the tensors its steps read (written in place before each step), the rows'
    block tables as last written, and its graph once recorded (None: not yet, or this size runs eagerly)."""

    ids: torch.Tensor  # [B] int64
    meta: ForwardMetadata
    rows: list[tuple[int, list[int]]]  # per row: (sequence id, its block table as written)
    graph: HostGraph | None = None
    logits: torch.Tensor | None = None  # the graph's output, overwritten by each replay
    eager: bool = False
    checked: bool = False  # the first replay matched an eager step


class DecodeGraphs:
    """One instance per runner. `run(seqs)` returns the logits [B, vocab] of a decode-only step, or None
    for a step the graphs cannot take (a block table wider than max_model_len needs): the runner then
    runs it eagerly."""

    def __init__(
        self,
        model: CausalLM,
        device: torch.device,
        max_model_len: int,
        block_size: int,
        budget_bytes: int = 256 << 20,
    ):
        self.model, self.device, self.budget_bytes = model, device, budget_bytes
        self.max_model_len, self.width = max_model_len, -(-max_model_len // block_size)
        self.batches: dict[int, _Batch] = {}

    @property
    def held_bytes(self) -> int:
        """Memory the recorded graphs hold."""
        return sum(b.graph.nbytes for b in self.batches.values() if b.graph is not None)

    def _batch(self, b: int) -> _Batch:
        if b not in self.batches:

            def zeros(*shape: int, dtype: torch.dtype) -> torch.Tensor:
                return torch.zeros(*shape, dtype=dtype, device=self.device)

            meta = ForwardMetadata(
                num_prefill_tokens=0,
                num_decode_tokens=b,
                slot_mapping=zeros(b, dtype=torch.int64),
                positions=zeros(b, dtype=torch.int64),
                decode_seq_lens=zeros(b, dtype=torch.int32),
                decode_max_seq_len=self.max_model_len,
                decode_block_tables=zeros(b, self.width, dtype=torch.int32),
            )
            self.batches[b] = _Batch(zeros(b, dtype=torch.int64), meta, [(-1, [])] * b)
        return self.batches[b]

    def _fill(self, seqs: list[Sequence]) -> _Batch:
        """This step's inputs written into its batch size's tensors; of the block tables only what changed
        since the row was last written (a new sequence in the row, or blocks added to its table)."""
        batch = self._batch(len(seqs))
        meta = batch.meta
        assert meta.decode_block_tables is not None and meta.decode_seq_lens is not None
        batch.ids.copy_(torch.tensor([s.token_ids[-1] for s in seqs]))
        meta.positions.copy_(torch.tensor([len(s) - 1 for s in seqs]))
        meta.slot_mapping.copy_(torch.tensor([s.slot(len(s) - 1) for s in seqs]))
        meta.decode_seq_lens.copy_(torch.tensor([len(s) for s in seqs], dtype=torch.int32))
        for i, seq in enumerate(seqs):
            table, (seq_id, written) = seq.block_table, batch.rows[i]
            start = len(written) if seq_id == seq.id and table[: len(written)] == written else 0
            if start < len(table):
                new = torch.tensor(table[start:], dtype=torch.int32)
                meta.decode_block_tables[i, start : len(table)].copy_(new)
                batch.rows[i] = (seq.id, list(table))
        return batch

    def _eager(self, batch: _Batch) -> torch.Tensor:
        return self.model.compute_logits(self.model(batch.ids, batch.meta.positions, batch.meta))

    def _record(self, batch: _Batch) -> torch.Tensor:
        """The step run eagerly while it is recorded; the graph kept if the budget allows it."""
        b = len(batch.rows)
        try:
            graph, logits = HostGraph.capture(lambda: self._eager(batch))
        except NotCapturable as exc:
            log.info("decode steps of batch size %d run eagerly: %s", b, exc)
            batch.eager = True
            return self._eager(batch)  # the step the refusal cut short, whole again
        left = self.budget_bytes - self.held_bytes
        if graph.nbytes > left:
            why = "decode steps of batch size %d run eagerly: a graph would hold %d bytes, %d are left"
            log.info(why, b, graph.nbytes, left)
            batch.eager = True
            return logits
        batch.graph, batch.logits = graph, logits
        return logits.clone()  # the graph writes the next step's logits there

    def run(self, seqs: list[Sequence]) -> torch.Tensor | None:
        if any(len(s.block_table) > self.width for s in seqs):
            return None
        batch = self._fill(seqs)
        if batch.eager:
            return self._eager(batch)
        if batch.graph is None or batch.logits is None:
            return self._record(batch)
        try:
            batch.graph.replay()
        except ReplayMismatch as exc:  # the eager kernels raise their own error, or succeed
            log.info("decode graph of batch size %d: %s; running the step eagerly", len(seqs), exc)
            return self._eager(batch)
        if not batch.checked:
            eager = self._eager(batch)
            if not torch.equal(eager, batch.logits):
                log.warning("decode graph of batch size %d differs from the eager step: not used", len(seqs))
                batch.graph, batch.logits, batch.eager = None, None, True
                return eager
            batch.checked = True
        return batch.logits.clone()
