"""The pure-PyTorch reference forward: causal, deterministic, residual stream per layer, and
agreeing with an independent implementation of the same math (transformers' GLM-4-MoE, which
shares AntAngelMed's QK-norm, partial NeoX RoPE and sigmoid group router) on the tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model_plugin.checkpoints import get_preset, write_checkpoint
from model_plugin.reference import ReferenceModel, apply_partial_neox_rope, load_safetensors


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Many small ops: on the shared 2-core machine one thread is much faster.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(get_preset("tiny"), tmp_path_factory.mktemp("ref") / "tiny", seed=0)


@pytest.fixture(scope="module")
def model(tiny: Path) -> ReferenceModel:
    return ReferenceModel.from_pretrained(tiny)


def prompt(n: int, seed: int = 0, vocab: int = 1900) -> torch.Tensor:
    return torch.randint(5, vocab, (n,), generator=torch.Generator().manual_seed(seed))


def test_logits_are_finite_and_activations_stay_order_one(model: ReferenceModel) -> None:
    logits = model.forward(prompt(24))
    assert logits.shape == (24, model.config["vocab_size"]) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert 0.5 < float(logits.std()) < 20  # activations stayed O(1) through the layers


def test_forward_is_causal_and_a_prefix_gives_the_prefix_logits(model: ReferenceModel) -> None:
    ids = prompt(20)
    changed = ids.clone()
    changed[12:] = prompt(8, seed=1)
    a, b = model.forward(ids), model.forward(changed)
    assert torch.allclose(a[:12], b[:12], atol=1e-5)  # positions < 12 never see the change
    assert not torch.allclose(a[12:], b[12:], atol=1e-2)
    assert torch.allclose(model.forward(ids[:7]), a[:7], atol=1e-5)  # a prefix is a prefix


def test_forward_is_deterministic_across_loads(tiny: Path, model: ReferenceModel) -> None:
    ids = prompt(16)
    again = ReferenceModel.from_pretrained(tiny)
    assert torch.equal(model.forward(ids), model.forward(ids))
    assert torch.equal(model.forward(ids), again.forward(ids))


def test_every_layer_input_is_recorded_starting_from_the_embedding(model: ReferenceModel) -> None:
    ids = prompt(10)
    out = model.forward_with_states(ids)
    n = model.num_layers
    assert len(out.layer_inputs) == n + 1 and len(model.residual_stream(ids)) == n
    # Layer 0's input is the embedding; every layer changes the stream.
    assert torch.equal(out.layer_inputs[0], model.w["model.word_embeddings.weight"][ids].float())
    for k in range(n):
        assert not torch.allclose(out.layer_inputs[k], out.layer_inputs[k + 1])
    assert set(out.expert_ids) == set(range(model.first_dense, n))


def test_greedy_generate_matches_argmax(model: ReferenceModel) -> None:
    ids = prompt(6)
    new = model.greedy_generate(ids, 5)
    assert len(new) == 5
    full = torch.cat([ids, torch.tensor(new)])
    logits = model.forward(full)
    assert logits[len(ids) - 1 : -1].argmax(-1).tolist() == new
    assert model.greedy_generate(ids.tolist(), 5) == new


def test_kv_cache_matches_full_recompute(model: ReferenceModel) -> None:
    from model_plugin.reference import KVCache

    ids = prompt(30)
    full = model.forward_with_states(ids)
    cache = KVCache()
    parts = [
        model.forward_with_states(ids[:17], cache),
        model.forward_with_states(ids[17:18], cache),
        model.forward_with_states(ids[18:], cache),
    ]
    assert cache.length == 30
    assert torch.allclose(torch.cat([p.logits for p in parts]), full.logits, atol=1e-5)
    for k in range(model.num_layers):
        assert torch.allclose(torch.cat([p.layer_inputs[k] for p in parts]), full.layer_inputs[k], atol=1e-5)
    for seed in range(3):
        start = prompt(9, seed=seed)
        assert model.greedy_generate(start, 20) == model.greedy_generate(start, 20, use_cache=False)


def test_bf16_stays_close_to_fp32_where_routing_agrees(tiny: Path, model: ReferenceModel) -> None:
    """bf16 stays within bf16 tolerance wherever it routes like fp32. A near-tie between the
    k-th and (k+1)-th expert can flip under bf16 rounding (a discrete jump); such flips must be
    rare, and they are visible in expert_ids so comparisons can account for them."""
    ids = prompt(64)
    ref = model.forward_with_states(ids)
    bf16 = ReferenceModel.from_pretrained(tiny, dtype=torch.bfloat16).forward_with_states(ids)
    flipped = torch.zeros(len(ids), dtype=torch.bool)
    for layer, chosen in ref.expert_ids.items():
        flipped |= (chosen.sort(-1).values != bf16.expert_ids[layer].sort(-1).values).any(-1)
    assert flipped.float().mean() < 0.1
    err = (bf16.logits - ref.logits).abs().amax(-1)  # [T]
    assert err[~flipped].max() < 0.05 * ref.logits.abs().max()


def test_partial_rope_leaves_tail_and_position_zero() -> None:
    x = torch.randn(3, 2, 64)
    out = apply_partial_neox_rope(x, torch.tensor([0, 1, 2]), 32, 600000.0)
    assert torch.equal(out[..., 32:], x[..., 32:])  # only the first half rotates
    assert torch.allclose(out[0], x[0])  # position 0 is the identity

    # NeoX pairs (i, i + 16) rotate by angle pos * theta^(-2i/32): norms of pairs are kept.
    def pair(t: torch.Tensor) -> torch.Tensor:
        return t[..., :16] ** 2 + t[..., 16:32] ** 2

    assert torch.allclose(pair(out), pair(x), atol=1e-5)
    assert torch.allclose(
        out[1, :, 0],
        x[1, :, 0] * torch.cos(torch.tensor(1.0)) - x[1, :, 16] * torch.sin(torch.tensor(1.0)),
        atol=1e-6,
    )


def test_yarn_is_refused(tiny: Path) -> None:
    config = json.loads((tiny / "config.json").read_text())
    config["rope_scaling"] = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    with pytest.raises(NotImplementedError, match="rope_scaling"):
        ReferenceModel(config, load_safetensors(tiny))


def test_missing_or_unknown_tensor_is_named(tiny: Path) -> None:
    config = json.loads((tiny / "config.json").read_text())
    weights = load_safetensors(tiny)
    w = dict(weights)
    del w["model.layers.2.mlp.experts.5.up_proj.weight"]
    with pytest.raises(ValueError, match=r"experts\.5\.up_proj"):
        ReferenceModel(config, w)
    w = dict(weights, **{"model.layers.1.mlp.gate.extra": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"gate\.extra"):
        ReferenceModel(config, w)


@pytest.mark.parametrize("bug", ["ignore_bias", "swap_qk_norm", "unit_norms"])
def test_checkpoint_exposes_common_bugs(tiny: Path, model: ReferenceModel, bug: str) -> None:
    """The tiny checkpoint's values make typical port bugs change the greedy tokens."""
    config = json.loads((tiny / "config.json").read_text())
    w = load_safetensors(tiny)
    for name in list(w):
        if bug == "ignore_bias" and name.endswith("expert_bias"):
            w[name] = torch.zeros_like(w[name])
        if bug == "swap_qk_norm" and name.endswith("query_layernorm.weight"):
            k = name.replace("query_layernorm", "key_layernorm")
            w[name], w[k] = w[k], w[name]
        if bug == "unit_norms" and "layernorm" in name:
            w[name] = torch.ones_like(w[name])
    broken = ReferenceModel(config, w)
    ids = prompt(32)
    good, bad = model.forward(ids).argmax(-1), broken.forward(ids).argmax(-1)
    assert (good != bad).float().mean() > 0.05


def _glm4_moe_from(tiny: Path):  # type: ignore[no-untyped-def]
    transformers = pytest.importorskip("transformers")
    c = json.loads((tiny / "config.json").read_text())
    cfg = transformers.Glm4MoeConfig(
        vocab_size=c["vocab_size"],
        hidden_size=c["hidden_size"],
        intermediate_size=c["intermediate_size"],
        num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        num_key_value_heads=c["num_key_value_heads"],
        head_dim=c["head_dim"],
        max_position_embeddings=c["max_position_embeddings"],
        rms_norm_eps=c["rms_norm_eps"],
        tie_word_embeddings=False,
        attention_bias=False,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": c["rope_theta"],
            "partial_rotary_factor": c["partial_rotary_factor"],
        },
        moe_intermediate_size=c["moe_intermediate_size"],
        num_experts_per_tok=c["num_experts_per_tok"],
        n_shared_experts=c["num_shared_experts"],
        n_routed_experts=c["num_experts"],
        routed_scaling_factor=c["routed_scaling_factor"],
        n_group=c["n_group"],
        topk_group=c["topk_group"],
        first_k_dense_replace=c["first_k_dense_replace"],
        norm_topk_prob=c["norm_topk_prob"],
        use_qk_norm=True,
        attn_implementation="eager",
    )
    hf = transformers.Glm4MoeForCausalLM(cfg).float().eval()
    w = {k: v.float() for k, v in load_safetensors(tiny).items()}
    q, kv = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    sd: dict[str, torch.Tensor] = {
        "model.embed_tokens.weight": w["model.word_embeddings.weight"],
        "model.norm.weight": w["model.norm.weight"],
        "lm_head.weight": w["lm_head.weight"],
    }
    for i in range(c["num_hidden_layers"]):
        a, b = f"model.layers.{i}", f"model.layers.{i}"
        qw, kw, vw = w[f"{a}.attention.query_key_value.weight"].split([q, kv, kv])
        sd |= {
            f"{b}.self_attn.q_proj.weight": qw,
            f"{b}.self_attn.k_proj.weight": kw,
            f"{b}.self_attn.v_proj.weight": vw,
            f"{b}.self_attn.o_proj.weight": w[f"{a}.attention.dense.weight"],
            f"{b}.self_attn.q_norm.weight": w[f"{a}.attention.query_layernorm.weight"],
            f"{b}.self_attn.k_norm.weight": w[f"{a}.attention.key_layernorm.weight"],
            f"{b}.input_layernorm.weight": w[f"{a}.input_layernorm.weight"],
            f"{b}.post_attention_layernorm.weight": w[f"{a}.post_attention_layernorm.weight"],
        }
        proj = ("gate_proj", "up_proj", "down_proj")
        if i < c["first_k_dense_replace"]:
            sd |= {f"{b}.mlp.{p}.weight": w[f"{a}.mlp.{p}.weight"] for p in proj}
            continue
        e = range(c["num_experts"])
        sd |= {
            f"{b}.mlp.gate.weight": w[f"{a}.mlp.gate.weight"],
            f"{b}.mlp.gate.e_score_correction_bias": w[f"{a}.mlp.gate.expert_bias"],
            f"{b}.mlp.experts.gate_up_proj": torch.stack(
                [
                    torch.cat(
                        [w[f"{a}.mlp.experts.{j}.gate_proj.weight"], w[f"{a}.mlp.experts.{j}.up_proj.weight"]]
                    )
                    for j in e
                ]
            ),
            f"{b}.mlp.experts.down_proj": torch.stack(
                [w[f"{a}.mlp.experts.{j}.down_proj.weight"] for j in e]
            ),
        }
        sd |= {f"{b}.mlp.shared_experts.{p}.weight": w[f"{a}.mlp.shared_experts.{p}.weight"] for p in proj}
    hf.load_state_dict(sd, strict=True)
    return hf


def test_matches_transformers_glm4_moe_loaded_with_the_same_weights(
    tiny: Path, model: ReferenceModel
) -> None:
    hf = _glm4_moe_from(tiny)
    ids = prompt(40)
    with torch.no_grad():
        theirs = hf(input_ids=ids[None]).logits[0].float()
    ours = model.forward(ids)
    assert (ours - theirs).abs().max() < 1e-4 * max(1.0, float(ours.abs().max()))
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))


@pytest.fixture(scope="module")
def tiny_mtp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import dataclasses

    preset = dataclasses.replace(get_preset("tiny"), num_nextn_predict_layers=1)
    return write_checkpoint(preset, tmp_path_factory.mktemp("mtp") / "tiny-mtp", seed=0)


def test_mtp_forward_reads_the_next_token_and_the_hidden_state_causally(
    tiny: Path, tiny_mtp: Path, model: ReferenceModel
) -> None:
    mtp = ReferenceModel.from_pretrained(tiny_mtp)
    assert mtp.num_mtp_layers == 1 and model.num_mtp_layers == 0
    ids = prompt(14)
    out = mtp.forward_with_states(ids)
    # Tensors depend only on (seed, name): the main model is the MTP-less checkpoint's.
    assert torch.equal(out.logits, model.forward(ids))
    logits = mtp.mtp_forward(ids[1:], out.final_hidden[:-1])  # row t predicts token t + 2
    assert logits.shape == (13, mtp.config["vocab_size"]) and torch.isfinite(logits).all()
    # Causal over the MTP sequence, and it really reads both inputs.
    other = ids.clone()
    other[10:] = prompt(4, seed=3)
    changed = mtp.mtp_forward(other[1:], out.final_hidden[:-1])
    assert torch.allclose(changed[:9], logits[:9], atol=1e-5)
    assert not torch.allclose(changed[9:], logits[9:], atol=1e-3)
    moved = mtp.mtp_forward(ids[1:], out.final_hidden[:-1].roll(1, dims=0))
    assert not torch.allclose(moved, logits, atol=1e-3)
    with pytest.raises(ValueError, match="MTP"):
        model.mtp_forward(ids[1:], out.final_hidden[:-1])


def test_mtp_tensors_checked_only_when_announced(tiny_mtp: Path) -> None:
    config = json.loads((tiny_mtp / "config.json").read_text())
    weights = load_safetensors(tiny_mtp)
    w = dict(weights)
    del w["model.layers.3.eh_proj.weight"]
    with pytest.raises(ValueError, match="eh_proj"):
        ReferenceModel(config, w)
    # A chat checkpoint (num_nextn_predict_layers 0) that still ships MTP tensors loads.
    ReferenceModel(dict(config, num_nextn_predict_layers=0), weights)
