"""AntAngelMed's config class: official defaults for missing keys, YaRN, validation."""

import pytest

from model_plugin.config import YARN_128K, AntAngelMedConfig


def test_missing_keys_mean_official_behaviour():
    # The traps vLLM's built-in falls into when these keys are absent (softmax, LayerNorm, AttributeError).
    c = AntAngelMedConfig.from_dict({"model_type": "bailing_moe_v2", "hidden_size": 256})
    assert c.score_function == "sigmoid"
    assert c.use_rmsnorm is True and c.use_qk_norm is True
    assert c.norm_topk_prob is True
    assert c.moe_router_enable_expert_bias is True
    assert c.routed_scaling_factor == 2.5


def test_defaults_are_antangelmeds_published_sizes_and_partial_rotary():
    c = AntAngelMedConfig()
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads) == (
        4096,
        32,
        32,
        4,
    )
    assert (c.num_experts, c.num_experts_per_tok, c.n_group, c.topk_group) == (256, 8, 8, 4)
    assert c.rotary_dim == 64
    assert c.rope_parameters == {"rope_type": "default", "rope_theta": 600000.0, "partial_rotary_factor": 0.5}
    assert c.shared_expert_intermediate_size == 1024


def test_shipped_rope_scaling_key_turns_on_yarn_and_survives_a_round_trip():
    c = AntAngelMedConfig(
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    )
    assert c.rope_parameters["rope_type"] == "yarn"
    assert c.rope_parameters["factor"] == 4.0
    assert c.rope_parameters["original_max_position_embeddings"] == 32768
    assert c.rope_parameters["partial_rotary_factor"] == 0.5
    # Survives a save/load round trip, as vLLM re-reads configs in every process.
    assert AntAngelMedConfig.from_dict(c.to_dict()).rope_parameters == c.rope_parameters
    assert YARN_128K["factor"] == 4.0


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"score_function": "softplus"}, "score_function"),
        ({"num_experts": 250}, "not divisible by n_group"),
        ({"topk_group": 9}, "topk_group"),
        ({"num_experts_per_tok": 200}, "num_experts_per_tok"),
        ({"partial_rotary_factor": 1.5}, "partial_rotary_factor"),
        ({"rope_scaling": {"type": "yarn"}}, "needs 'factor'"),
    ],
)
def test_invalid_configs_are_refused_naming_the_key(bad, message):
    with pytest.raises(ValueError, match=message):
        AntAngelMedConfig(**bad)


def test_yarn_given_as_an_hf_override_keeps_theta_and_partial_rotary():
    # vLLM applies --hf-overrides with config.update() after construction.
    c = AntAngelMedConfig()
    c.update({"rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}})
    assert c.rope_parameters == {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 32768,
        "rope_theta": 600000.0,
        "partial_rotary_factor": 0.5,
    }
