"""The paged cache's block allocator, with prefix caching.

A full block is identified by a hash of its tokens and of every token before it (the hash chain). When a
new sequence's leading full blocks match cached ones, it shares them (reference counts) and skips computing
those tokens. Freed blocks keep their hash until reused, so a later identical prefix still hits.
"""

from __future__ import annotations

from collections import deque

from .sequence import Sequence


class Block:
    def __init__(self, block_id: int):
        self.id = block_id
        self.ref_count = 0
        self.hash: int | None = None
        self.token_ids: list[int] = []


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int):
        self.block_size = block_size
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free: deque[int] = deque(range(num_blocks))
        self.by_hash: dict[int, int] = {}

    def _take(self) -> Block:
        """A free block, forgetting the prefix it held."""
        block = self.blocks[self.free.popleft()]
        if block.hash is not None and self.by_hash.get(block.hash) == block.id:
            del self.by_hash[block.hash]
        block.ref_count, block.hash, block.token_ids = 1, None, []
        return block

    def _publish(self, block: Block, token_ids: list[int], prefix_hash: int | None) -> int:
        block.hash, block.token_ids = hash((prefix_hash, tuple(token_ids))), list(token_ids)
        self.by_hash[block.hash] = block.id
        return block.hash

    def can_allocate(self, seq: Sequence) -> bool:
        return len(self.free) >= seq.num_blocks

    def allocate(self, seq: Sequence) -> None:
        """Blocks for every token of `seq`. Leading full blocks found in the cache are shared; the block
        holding the last token is always computed (its logits are needed)."""
        assert not seq.block_table
        prefix_hash, hit = None, True
        for i in range(seq.num_blocks):
            tokens = seq.block_tokens(i)
            full = len(tokens) == self.block_size and (i + 1) * self.block_size < len(seq)
            block_id = self.by_hash.get(hash((prefix_hash, tuple(tokens)))) if full and hit else None
            found = self.blocks[block_id] if block_id is not None else None
            if found is not None and found.token_ids == tokens:
                block = found
                if block.ref_count == 0:
                    self.free.remove(block.id)
                block.ref_count += 1
                seq.num_cached_tokens += self.block_size
                prefix_hash = block.hash
            else:
                hit = False
                block = self._take()
                if full:
                    prefix_hash = self._publish(block, tokens, prefix_hash)
            seq.block_table.append(block.id)

    def deallocate(self, seq: Sequence) -> None:
        for block_id in reversed(seq.block_table):
            block = self.blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                self.free.append(block_id)
        seq.block_table.clear()
        seq.num_cached_tokens = 0

    def can_append(self, seq: Sequence) -> bool:
        """Whether the token about to be appended to `seq` has a slot (a new block when the last is full)."""
        return len(seq) <= len(seq.block_table) * self.block_size or len(self.free) > 0

    def append_slot(self, seq: Sequence) -> None:
        """Before a decode step: gives the newest token (position len(seq) - 1) a slot, taking a new block
        when it starts one, and publishes its block for prefix caching when the token fills it."""
        if len(seq) > len(seq.block_table) * self.block_size:
            seq.block_table.append(self._take().id)
        if len(seq) % self.block_size == 0:
            i = len(seq) // self.block_size - 1
            prev = self.blocks[seq.block_table[i - 1]].hash if i > 0 else None
            block = self.blocks[seq.block_table[i]]
            if block.hash is None and (i == 0 or prev is not None):
                self._publish(block, seq.block_tokens(i), prev)
