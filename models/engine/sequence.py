"""Sequence: one request's tokens, its cache blocks and its progress."""

from __future__ import annotations

import itertools
from enum import Enum, auto

import torch

from .sampling import SamplingParams

_ids = itertools.count()


class Status(Enum):
    WAITING = auto()
    RUNNING = auto()
    FINISHED = auto()


class Sequence:
    """token_ids: prompt then completion. num_cached_tokens: tokens whose keys/values are already in the cache
    (a reused prefix, or everything computed so far); block_table: its cache blocks in order."""

    def __init__(self, prompt_token_ids: list[int], params: SamplingParams, block_size: int):
        if not prompt_token_ids:
            raise ValueError("a prompt must have at least one token")
        self.id = next(_ids)
        self.token_ids = list(prompt_token_ids)
        self.num_prompt_tokens = len(prompt_token_ids)
        self.params, self.block_size = params, block_size
        self.status = Status.WAITING
        self.block_table: list[int] = []
        self.num_cached_tokens = 0
        self.logits: list[torch.Tensor] = []
        self.generator = None if params.seed is None else torch.Generator().manual_seed(params.seed)

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def completion_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def num_blocks(self) -> int:
        return -(-len(self) // self.block_size)

    def block_tokens(self, i: int) -> list[int]:
        return self.token_ids[i * self.block_size : (i + 1) * self.block_size]

    def slot(self, position: int) -> int:
        return self.block_table[position // self.block_size] * self.block_size + position % self.block_size
