"""Choosing each sequence's next token from its logits (greedy, temperature, top-k, top-p, seeded)."""

from __future__ import annotations

import torch

from .sequence import Sequence


def _filter(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """logits [V] float32 with everything outside the top-k / top-p set at -inf."""
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = sorted_logits.softmax(-1)
        # keep a token when the mass before it is below top_p (so the most likely token always stays)
        drop = (probs.cumsum(-1) - probs) >= top_p
        logits = logits.scatter(0, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits


def sample(logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
    """logits: [len(seqs), V] float32 -> one token id per sequence."""
    greedy = logits.argmax(-1).tolist()
    tokens = []
    for row, seq, best in zip(logits, seqs, greedy, strict=True):
        p = seq.params
        if p.temperature == 0:
            tokens.append(best)
            continue
        probs = _filter(row / p.temperature, p.top_k, p.top_p).softmax(-1).cpu()
        tokens.append(int(torch.multinomial(probs, 1, generator=seq.generator)))
    return tokens
