"""The reference router on hand-computed cases: the bias picks experts but never weights them,
groups outside topk_group are never used, group strength is the top-2 sum, weights sum to
routed_scaling_factor."""

from __future__ import annotations

import math

import pytest
import torch

from model_plugin.reference import route

SCALE = 2.5


def logits_for(scores: list[float]) -> torch.Tensor:
    """Router logits whose sigmoid is exactly the given scores (one token)."""
    p = torch.tensor([scores], dtype=torch.float64)
    return torch.log(p / (1 - p)).float()


def ids_and_weights(scores: list[float], bias: list[float] | None, **kw) -> tuple[list[int], list[float]]:
    args = {"n_group": 4, "topk_group": 2, "top_k": 2, "routed_scaling_factor": SCALE, "norm_topk_prob": True}
    args.update(kw)
    b = None if bias is None else torch.tensor(bias, dtype=torch.float32)
    w, ids = route(logits_for(scores), b, **args)
    order = ids[0].argsort()
    return ids[0][order].tolist(), w[0][order].tolist()


# 8 experts in 4 groups of 2: groups sum to g0 1.0, g1 0.9, g2 0.8, g3 1.1.
SCORES = [0.9, 0.1, 0.7, 0.2, 0.4, 0.4, 0.6, 0.5]


def test_groups_outside_topk_group_are_never_chosen() -> None:
    ids, w = ids_and_weights(SCORES, None)
    # Groups g3 and g0 win; expert 2 (0.7) outranks expert 6 (0.6) but sits in group g1.
    assert ids == [0, 6]
    assert w == pytest.approx([0.9 / 1.5 * SCALE, 0.6 / 1.5 * SCALE], rel=1e-5)


def test_bias_changes_choice_but_not_weights() -> None:
    # Expert 7 (score 0.5) overtakes expert 6 (0.6) only through its bias.
    bias = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.35]
    ids, w = ids_and_weights(SCORES, bias)
    assert ids == [0, 7]
    # Weights come from the UNBIASED scores 0.9 and 0.5, not from 0.9 and 0.85.
    assert w == pytest.approx([0.9 / 1.4 * SCALE, 0.5 / 1.4 * SCALE], rel=1e-5)
    assert w != pytest.approx([0.9 / 1.75 * SCALE, 0.85 / 1.75 * SCALE], rel=1e-3)


def test_bias_changes_which_groups_survive() -> None:
    # The bias lifts group g1 to 1.4, pushing g0, which holds the best raw expert (0.9), out.
    bias = [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]
    ids, w = ids_and_weights(SCORES, bias)
    assert ids == [2, 6]
    assert w == pytest.approx([0.7 / 1.3 * SCALE, 0.6 / 1.3 * SCALE], rel=1e-5)


def test_group_strength_is_sum_of_top_two() -> None:
    # 3 groups of 4; one group survives. max() would pick group A, the sum of all four group C;
    # the top-2 sum picks group B.
    scores = [0.9, 0.1, 0.1, 0.1, 0.8, 0.7, 0.1, 0.1, 0.5, 0.5, 0.5, 0.5]
    ids, w = ids_and_weights(scores, None, n_group=3, topk_group=1)
    assert ids == [4, 5]
    assert w == pytest.approx([0.8 / 1.5 * SCALE, 0.7 / 1.5 * SCALE], rel=1e-5)


def test_without_renormalisation_weights_are_scaled_scores() -> None:
    ids, w = ids_and_weights(SCORES, None, norm_topk_prob=False)
    assert ids == [0, 6]
    assert w == pytest.approx([0.9 * SCALE, 0.6 * SCALE], rel=1e-5)


def test_scores_are_sigmoid_not_softmax() -> None:
    _, w = ids_and_weights(SCORES, None, norm_topk_prob=False, routed_scaling_factor=1.0)
    # Softmax over 8 experts could not give 0.9 and 0.6 (they would have to sum to <= 1).
    assert w == pytest.approx([0.9, 0.6], rel=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_routing_invariants_hold_on_random_logits(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n_tok, n_exp, n_group, topk_group, top_k = 257, 64, 8, 4, 8
    logits = 2.0 * torch.randn(n_tok, n_exp, generator=gen)
    bias = 0.25 * torch.randn(n_exp, generator=gen)
    w, ids = route(logits, bias, n_group, topk_group, top_k, SCALE, True)
    assert w.shape == ids.shape == (n_tok, top_k) and w.dtype == torch.float32
    # Distinct experts, drawn from at most topk_group groups.
    assert all(len(set(row)) == top_k for row in ids.tolist())
    for row in (ids // (n_exp // n_group)).tolist():
        assert len(set(row)) <= topk_group
    assert torch.allclose(w.sum(-1), torch.full((n_tok,), SCALE), atol=1e-5)
    # Weights are the renormalised unbiased sigmoid scores of the chosen experts.
    s = torch.sigmoid(logits).gather(1, ids)
    assert torch.allclose(w, s / s.sum(-1, keepdim=True) * SCALE, atol=1e-6)
    # Shifting every bias by the same constant changes nothing.
    w2, ids2 = route(logits, bias + 0.3, n_group, topk_group, top_k, SCALE, True)
    assert torch.equal(ids2, ids) and torch.equal(w2, w)
    # The bias matters: without it some tokens pick different experts.
    _, ids0 = route(logits, None, n_group, topk_group, top_k, SCALE, True)
    changed = (ids0.sort(-1).values != ids.sort(-1).values).any(-1).float().mean()
    assert changed > 0.1


def test_matches_transformers_sigmoid_group_router() -> None:
    """Cross-check against an independent implementation of the same router (transformers'
    GLM-4-MoE / DeepSeek-V3 style TopkRouter), on random inputs."""
    transformers = pytest.importorskip("transformers")
    from transformers.models.glm4_moe import modeling_glm4_moe as glm

    cfg = transformers.Glm4MoeConfig(
        hidden_size=32,
        n_routed_experts=64,
        num_experts_per_tok=8,
        n_group=8,
        topk_group=4,
        norm_topk_prob=True,
        routed_scaling_factor=SCALE,
    )
    router = glm.Glm4MoeTopkRouter(cfg)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        router.weight.copy_(torch.randn(64, 32, generator=gen) * 2 / math.sqrt(32))
        router.e_score_correction_bias.copy_(0.25 * torch.randn(64, generator=gen))
    x = torch.randn(300, 32, generator=gen)
    out = router(x)
    ref_w, ref_ids = out[1], out[2]  # (router_logits, topk_weights, topk_indices)
    logits = x @ router.weight.T
    w, ids = route(logits, router.e_score_correction_bias, 8, 4, 8, SCALE, True)
    o1, o2 = ids.argsort(-1), ref_ids.argsort(-1)
    assert torch.equal(ids.gather(1, o1), ref_ids.gather(1, o2))
    assert torch.allclose(w.gather(1, o1), ref_w.float().gather(1, o2), atol=1e-5)
