"""Oracles for comm.*: the collective's result on every rank, computed in one process from all ranks' inputs,
in float64, with explicit loops over ranks and rows.

Each oracle takes one (args, kwargs) per rank, in rank order, exactly as that rank calls the op except for
group_name (see conformance/distributed.py), and returns one expected output per rank.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from anyaccel.ops import comm as contract

from ..case import Inputs


def _arguments(stub: Any, inputs: Inputs) -> dict[str, Any]:
    """A rank's call arguments by name, defaults filled in, as the op's contract reads them."""
    args, kwargs = inputs
    bound = inspect.signature(stub).bind(*args, group_name="", **kwargs)
    bound.apply_defaults()
    return bound.arguments


def _total(xs: list[torch.Tensor]) -> torch.Tensor:
    total = torch.zeros(xs[0].shape, dtype=torch.float64)
    for x in xs:
        total += x.double()
    return total


def all_reduce(*ranks: Inputs) -> list[torch.Tensor]:
    total = _total([_arguments(contract.all_reduce, r)["x"] for r in ranks])
    return [total.clone() for _ in ranks]


def all_gather(*ranks: Inputs) -> list[torch.Tensor]:
    calls = [_arguments(contract.all_gather, r) for r in ranks]
    gathered = torch.cat([c["x"].double() for c in calls], dim=calls[0]["dim"])
    return [gathered.clone() for _ in ranks]


def reduce_scatter(*ranks: Inputs) -> list[torch.Tensor]:
    calls = [_arguments(contract.reduce_scatter, r) for r in ranks]
    total, dim = _total([c["x"] for c in calls]), calls[0]["dim"]
    chunk = total.shape[dim] // len(ranks)
    return [total.narrow(dim, rank * chunk, chunk).clone() for rank in range(len(ranks))]


def all_to_all(*ranks: Inputs) -> list[torch.Tensor]:
    calls = [_arguments(contract.all_to_all, r) for r in ranks]
    world = len(ranks)
    sent: list[list[torch.Tensor]] = []  # sent[src][dst]: the rows rank src sends to rank dst
    for call in calls:
        x, splits = call["x"].double(), call["input_split_sizes"]
        splits = splits if splits is not None else [x.shape[0] // world] * world
        start, pieces = 0, []
        for rows in splits:
            pieces.append(x[start : start + rows])
            start += rows
        sent.append(pieces)
    return [torch.cat([sent[src][dst] for src in range(world)]) for dst in range(world)]


def broadcast(*ranks: Inputs) -> list[torch.Tensor]:
    calls = [_arguments(contract.broadcast, r) for r in ranks]
    source = calls[0]["src"]
    return [calls[source]["x"].double().clone() for _ in ranks]
