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
class _Graph:
    graph: HostGraph | None  # None: this batch size runs eagerly
    logits: torch.Tensor | None = None
    checked: bool = False


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
        self.inputs: dict[int, ForwardMetadata] = {}
        self.ids: dict[int, torch.Tensor] = {}
        self.graphs: dict[int, _Graph] = {}
        self.rows: dict[int, list[tuple[int, list[int]]]] = {}  # per batch size and row: (seq id, table)

    def _buffers(self, b: int) -> tuple[torch.Tensor, ForwardMetadata]:
        if b not in self.inputs:

            def zeros(*shape: int, dtype: torch.dtype) -> torch.Tensor:
                return torch.zeros(*shape, dtype=dtype, device=self.device)

            self.ids[b] = zeros(b, dtype=torch.int64)
            self.inputs[b] = ForwardMetadata(
                num_prefill_tokens=0,
                num_decode_tokens=b,
                slot_mapping=zeros(b, dtype=torch.int64),
                positions=zeros(b, dtype=torch.int64),
                decode_seq_lens=zeros(b, dtype=torch.int32),
                decode_max_seq_len=self.max_model_len,
                decode_block_tables=zeros(b, self.width, dtype=torch.int32),
            )
            self.rows[b] = [(-1, [])] * b
        return self.ids[b], self.inputs[b]

    def _fill(self, seqs: list[Sequence]) -> tuple[torch.Tensor, ForwardMetadata]:
        """This step's inputs written into batch size len(seqs)'s tensors; of the block tables only what
        changed since the row was last written (a new sequence in the row, or blocks added to its table)."""
        b = len(seqs)
        ids, meta = self._buffers(b)
        assert meta.decode_block_tables is not None and meta.decode_seq_lens is not None
        ids.copy_(torch.tensor([s.token_ids[-1] for s in seqs]))
        meta.positions.copy_(torch.tensor([len(s) - 1 for s in seqs]))
        meta.slot_mapping.copy_(torch.tensor([s.slot(len(s) - 1) for s in seqs]))
        meta.decode_seq_lens.copy_(torch.tensor([len(s) for s in seqs], dtype=torch.int32))
        rows = self.rows[b]
        for i, seq in enumerate(seqs):
            table, (seq_id, written) = seq.block_table, rows[i]
            start = len(written) if seq_id == seq.id and table[: len(written)] == written else 0
            if start < len(table):
                new = torch.tensor(table[start:], dtype=torch.int32)
                meta.decode_block_tables[i, start : len(table)].copy_(new)
                rows[i] = (seq.id, list(table))
        return ids, meta

    @property
    def held_bytes(self) -> int:
        """Memory the recorded graphs hold."""
        return sum(g.graph.nbytes for g in self.graphs.values() if g.graph is not None)

    def _eager(self, ids: torch.Tensor, meta: ForwardMetadata) -> torch.Tensor:
        return self.model.compute_logits(self.model(ids, meta.positions, meta))

    def run(self, seqs: list[Sequence]) -> torch.Tensor | None:
        if any(len(s.block_table) > self.width for s in seqs):
            return None
        ids, meta = self._fill(seqs)
        b = len(seqs)
        entry = self.graphs.get(b)
        if entry is None:
            try:
                graph, logits = HostGraph.capture(lambda: self._eager(ids, meta))
            except NotCapturable as exc:
                log.info("decode steps of batch size %d run eagerly: %s", b, exc)
                self.graphs[b] = _Graph(None)
                return self._eager(ids, meta)  # the step the refusal cut short, whole again
            left = self.budget_bytes - self.held_bytes
            if graph.nbytes > left:
                why = "decode steps of batch size %d run eagerly: a graph would hold %d bytes, %d are left"
                log.info(why, b, graph.nbytes, left)
                self.graphs[b] = _Graph(None)
                return logits
            self.graphs[b] = _Graph(graph, logits)
            return logits.clone()  # the graph writes the next step's logits there
        if entry.graph is None or entry.logits is None:
            return self._eager(ids, meta)
        try:
            entry.graph.replay()
        except ReplayMismatch as exc:  # the eager kernels raise their own error, or succeed
            log.info("decode graph of batch size %d: %s; running the step eagerly", b, exc)
            return self._eager(ids, meta)
        if not entry.checked:
            eager = self._eager(ids, meta)
            if not torch.equal(eager, entry.logits):
                log.warning("decode graph of batch size %d differs from the eager step: not used", b)
                self.graphs[b] = _Graph(None)
                return eager
            entry.checked = True
        return entry.logits.clone()
