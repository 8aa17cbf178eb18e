"""The router our model configures in vLLM (sigmoid, expert_bias, groups, renormalise, scale) picks the
same experts with the same weights as AntAngelMed's routing math (model_plugin.reference.route).

On CPU, vLLM's FusedMoE routes through `cpu_router._grouped_topk`; we call it with exactly the
arguments AntAngelMedMoE passes to FusedMoEFactory.
"""

import pytest
import torch

from model_plugin.reference import route

grouped_topk = pytest.importorskip("vllm.model_executor.layers.fused_moe.router.cpu_router")._grouped_topk

E, G, TOPK_GROUP, K, SCALE = 32, 8, 4, 8, 2.5


def _vllm_route(logits: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return grouped_topk(
        logits,
        topk=K,
        renormalize=True,
        num_expert_group=G,
        topk_group=TOPK_GROUP,
        scoring_func="sigmoid",
        routed_scaling_factor=SCALE,
        e_score_correction_bias=bias,
    )


def _by_expert(weights: torch.Tensor, ids: torch.Tensor) -> list[dict[int, float]]:
    return [{int(i): float(w) for i, w in zip(row_ids, row_w)} for row_ids, row_w in zip(ids, weights)]


@pytest.mark.parametrize("seed", range(5))
def test_vllm_cpu_router_matches_reference_routing(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(64, E, generator=g) * 2.0  # [T, E], spread like the real router's
    bias = torch.randn(E, generator=g) * 0.25  # large enough to change choices
    ref_w, ref_ids = route(logits, bias, G, TOPK_GROUP, K, SCALE, True)
    got_w, got_ids = _vllm_route(logits, bias)
    for ours, theirs in zip(_by_expert(got_w, got_ids), _by_expert(ref_w, ref_ids)):
        assert ours.keys() == theirs.keys()
        for expert in ours:
            assert ours[expert] == pytest.approx(theirs[expert], rel=1e-5)
    assert torch.allclose(got_w.sum(-1), torch.full((64,), SCALE), atol=1e-5)


def test_bias_steers_choice_not_weight_in_vllm_router():
    logits = torch.zeros(1, E)
    logits[0, 0] = 3.0  # expert 0 has the best raw score
    bias = torch.zeros(E)
    bias[E - 1] = 10.0  # expert 31 (another group) is forced in by the bias alone
    weights, ids = _vllm_route(logits, bias)
    chosen = _by_expert(weights, ids)[0]
    assert E - 1 in chosen and 0 in chosen
    # Its weight comes from its unbiased score sigmoid(0) = 0.5, not from 0.5 + 10.
    assert chosen[E - 1] / chosen[0] == pytest.approx(0.5 / torch.sigmoid(torch.tensor(3.0)).item(), rel=1e-5)
