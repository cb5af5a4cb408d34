"""What the engine accepts, checked before a request joins the scheduler, and what it undoes when a step
fails, so that nothing one request does leaves the LLM unusable for the next generate().

A request is admitted only if it can finish: a prompt of at least one token, every token id in the
vocabulary (an id past the embedding would fail inside a step), prompt + max_tokens within max_model_len,
and the cache blocks its longest form needs no more than the cache holds (else it would be preempted and
re-admitted for ever). The last sampled token is never run, so its key and value are never stored.
"""

from __future__ import annotations

import operator
from collections import abc

from .block_manager import BlockManager
from .sampling import SamplingParams
from .scheduler import Scheduler
from .sequence import Sequence


def _in_vocab(token: object, vocab_size: int) -> bool:
    try:
        return not isinstance(token, bool) and 0 <= operator.index(token) < vocab_size  # type: ignore[arg-type]
    except TypeError:
        return False


def rejection(
    ids: list[int], params: SamplingParams, vocab_size: int, max_model_len: int, blocks: BlockManager
) -> str | None:
    """Why a request of prompt `ids` can never finish here, or None."""
    if not ids:
        return "a prompt must have at least one token"
    bad = next((t for t in ids if not _in_vocab(t, vocab_size)), None)
    if bad is not None:
        return f"token id {bad!r} is not an integer in the vocabulary [0, {vocab_size})"
    longest = len(ids) + params.max_tokens
    asked = f"prompt of {len(ids)} tokens + max_tokens {params.max_tokens}"
    if longest > max_model_len:
        return f"{asked} exceeds max_model_len {max_model_len}"
    needed = -(-(longest - 1) // blocks.block_size)
    if needed > len(blocks.blocks):
        size, held = blocks.block_size, len(blocks.blocks)
        return f"{asked} needs {needed} KV-cache blocks of {size}; the cache holds {held}"
    return None


def check_requests(reasons: abc.Sequence[str | None]) -> None:
    """Raises ValueError naming every rejected request (by its index) and why; admits all or none."""
    rejected = [f"request {i}: {reason}" for i, reason in enumerate(reasons) if reason]
    if rejected:
        raise ValueError("; ".join(rejected))


def abort(scheduler: Scheduler, seqs: abc.Iterable[Sequence]) -> None:
    """Takes `seqs` out of the scheduler and frees their blocks after a failed step. Their blocks also lose
    their prefix hashes: a block is published when allocated, before the step that computes it, so a hash
    left behind could hand a later request keys and values that were never written."""
    blocks = scheduler.blocks
    for seq in seqs:
        if seq in scheduler.running:
            scheduler.running.remove(seq)
        if seq in scheduler.waiting:
            scheduler.waiting.remove(seq)
        for block_id in seq.block_table:
            block = blocks.blocks[block_id]
            if block.hash is not None and blocks.by_hash.get(block.hash) == block_id:
                del blocks.by_hash[block.hash]
            block.hash, block.token_ids = None, []
        blocks.deallocate(seq)
