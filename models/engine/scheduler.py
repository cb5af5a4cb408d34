"""Continuous batching: every step runs the running sequences' next tokens (decode) together with as many
waiting prompts as the token budget and the cache allow (prefill); finished sequences leave and waiting ones
join between steps. When the cache is full, the most recently admitted sequence is preempted: its blocks are
freed and it waits to be recomputed (prefix caching makes that cheap)."""

from __future__ import annotations

from collections import deque

from .block_manager import BlockManager
from .sequence import Sequence, Status


class Scheduler:
    def __init__(
        self, blocks: BlockManager, max_num_seqs: int, max_num_batched_tokens: int, eos_token_ids: set[int]
    ):
        self.blocks, self.max_num_seqs, self.max_tokens = blocks, max_num_seqs, max_num_batched_tokens
        self.eos = eos_token_ids
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []

    def add(self, seq: Sequence) -> None:
        if seq.num_blocks > len(self.blocks.blocks):
            raise ValueError(
                f"a sequence of {len(seq)} tokens needs {seq.num_blocks} cache blocks; the cache has "
                f"{len(self.blocks.blocks)}"
            )
        self.waiting.append(seq)

    @property
    def done(self) -> bool:
        return not self.waiting and not self.running

    def schedule(self) -> tuple[list[Sequence], list[Sequence]]:
        """(prefill sequences, decode sequences) of the next step; never both empty while work remains."""
        decode: list[Sequence] = []
        for seq in list(self.running):
            if seq.status is not Status.RUNNING:
                continue  # preempted below by an earlier sequence of this loop
            while not self.blocks.can_append(seq) and self.running[-1] is not seq:
                self._preempt(self.running[-1])
            if not self.blocks.can_append(seq):
                self._preempt(seq)
                continue
            self.blocks.append_slot(seq)
            decode.append(seq)
        prefill: list[Sequence] = []
        budget = self.max_tokens - len(decode)
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            if not self.blocks.can_allocate(seq):
                break
            self.blocks.allocate(seq)
            new_tokens = len(seq) - seq.num_cached_tokens
            if new_tokens > budget and (prefill or decode):
                self.blocks.deallocate(seq)
                break
            budget -= new_tokens
            seq.status = Status.RUNNING
            self.running.append(self.waiting.popleft())
            prefill.append(seq)
        return prefill, decode

    def _preempt(self, seq: Sequence) -> None:
        self.running.remove(seq)
        self.blocks.deallocate(seq)
        seq.status = Status.WAITING
        self.waiting.appendleft(seq)

    def finish_step(self, seqs: list[Sequence], tokens: list[int]) -> list[Sequence]:
        """Appends each sequence's new token; returns the sequences that finished (their blocks are freed)."""
        finished = []
        for seq, token in zip(seqs, tokens, strict=True):
            seq.token_ids.append(token)
            seq.num_cached_tokens = len(seq) - 1
            p = seq.params
            if len(seq.completion_token_ids) >= p.max_tokens or (not p.ignore_eos and token in self.eos):
                seq.status = Status.FINISHED
                self.running.remove(seq)
                self.blocks.deallocate(seq)
                finished.append(seq)
        return finished
