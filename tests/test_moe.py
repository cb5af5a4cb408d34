"""moe.topk and moe.experts: the torch reference against the conformance kit, plus targeted checks."""

from __future__ import annotations

import pytest
import torch

import anyaccel
from anyaccel.ops.base import ContractError
from anyaccel.ops.moe import TOPK, MoESpec, TopKSpec
from anyaccel.providers.reference import moe as ref


@pytest.mark.anyaccel_conformance(provider="reference", op="moe.topk")
def test_topk_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


@pytest.mark.anyaccel_conformance(provider="reference", op="moe.experts")
def test_experts_conformance(anyaccel_case):
    anyaccel_case.assert_passes()


def _rows_as_sets(weights: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    order = ids.long().argsort(dim=1)
    return weights.gather(1, order), ids.long().gather(1, order)


def test_deepseek_v3_routing_matches_transformers():
    modeling = pytest.importorskip("transformers.models.deepseek_v3.modeling_deepseek_v3")
    from transformers import DeepseekV3Config

    config = DeepseekV3Config(
        hidden_size=32,
        n_routed_experts=64,
        num_experts_per_tok=8,
        n_group=8,
        topk_group=4,
        routed_scaling_factor=2.5,
        norm_topk_prob=True,
    )
    router = modeling.DeepseekV3TopkRouter(config)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        router.weight.copy_(torch.randn(64, 32, generator=g))
        router.e_score_correction_bias.copy_(torch.rand(64, generator=g) * 0.2 - 0.1)
        logits, want_w, want_ids = router(torch.randn(19, 32, generator=g))
    got_w, got_ids = ref.topk(logits, 8, "sigmoid", True, 8, 4, router.e_score_correction_bias, 2.5)
    got_w, got_ids = _rows_as_sets(got_w, got_ids)
    want_w, want_ids = _rows_as_sets(want_w, want_ids)
    assert torch.equal(got_ids, want_ids)
    torch.testing.assert_close(got_w, want_w)


def test_bias_chooses_but_does_not_weigh():
    # expert 1 has the lower score but the bias makes it the choice; its weight is its own score
    logits = torch.tensor([[2.0, 1.0, -3.0, -3.0]])
    bias = torch.tensor([0.0, 0.5, 0.0, 0.0])
    weights, ids = ref.topk(logits, 1, "sigmoid", renormalize=False, correction_bias=bias)
    assert ids.tolist() == [[1]]
    torch.testing.assert_close(weights, torch.sigmoid(torch.tensor([[1.0]])))


def test_grouped_selection_excludes_losing_groups():
    # two groups of two: group 0 = {0.9, 0.0} (top-2 sum 0.9), group 1 = {0.6, 0.5} (sum 1.1); with one
    # group kept, expert 0 (the single best) is not eligible
    scores = torch.tensor([[0.9, 0.0, 0.6, 0.5]])
    logits = torch.log(scores / (1 - scores)).nan_to_num(neginf=-30.0)
    _, ids = ref.topk(logits, 2, "sigmoid", False, n_group=2, topk_group=1, correction_bias=torch.zeros(4))
    assert sorted(ids[0].tolist()) == [2, 3]


def test_topk_contract_rejects_too_few_eligible_experts():
    spec = TopKSpec(torch.float32, 64, 8, "sigmoid", True, True)
    with pytest.raises(ContractError, match="moe.topk: top_k=8 exceeds"):
        TOPK.check_args(spec, torch.zeros(3, 64), 8, "sigmoid", True, 16, 1, torch.zeros(64))


def test_experts_spec_names_unknown_expert_placements():
    with pytest.raises(ContractError, match="moe.experts: expert_placement must be one of"):
        anyaccel.resolve("moe.experts", MoESpec(expert_parallel=True, expert_placement="random"))


def test_expert_parallel_ranks_sum_to_the_whole():
    g = torch.Generator().manual_seed(0)
    e, t, h, i, k = 8, 11, 32, 16, 2
    hidden = torch.randn(t, h, generator=g)
    w13, w2 = torch.randn(e, 2 * i, h, generator=g), torch.randn(e, h, i, generator=g)
    ids = torch.stack([torch.randperm(e, generator=g)[:k] for _ in range(t)]).to(torch.int32)
    weights = torch.rand(t, k, generator=g)
    whole = ref.experts(hidden, w13, w2, weights, ids)
    parts = []
    for held in (torch.tensor([0, 2, 4, 6]), torch.tensor([1, 3, 5, 7])):
        expert_map = torch.full((e,), -1, dtype=torch.int32)
        expert_map[held] = torch.arange(4, dtype=torch.int32)
        parts.append(ref.experts(hidden, w13[held], w2[held], weights, ids, expert_map=expert_map))
    torch.testing.assert_close(parts[0] + parts[1], whole, rtol=1e-5, atol=1e-5)
    remote_only = (ids % 2 == 1).all(dim=1)  # tokens routed only to rank 1's experts
    assert remote_only.any() and (parts[0][remote_only] == 0).all()
