"""Checkpoint presets and the config.json they produce.

A preset only fixes the sizes; every other key is AntAngelMed's real value, so a generated
checkpoint exercises the same code paths (sigmoid router, grouped top-k, expert bias, QK-norm,
partial RoPE, dense first layer) as the published model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Keys of AntAngelMed's published config.json whose values do not depend on the preset's size.
# Kept as data so the writer and the tests agree on what "every key" means.
FIXED_CONFIG: dict[str, Any] = {
    "architectures": ["BailingMoeV2ForCausalLM"],
    "model_type": "bailing_moe_v2",
    "hidden_act": "silu",
    "norm_topk_prob": True,
    "score_function": "sigmoid",
    "moe_router_enable_expert_bias": True,
    "router_dtype": "fp32",
    "routed_scaling_factor": 2.5,
    "use_qk_norm": True,
    "use_rmsnorm": True,
    "partial_rotary_factor": 0.5,
    "rope_theta": 600000,
    "rope_scaling": None,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "use_qkv_bias": False,
    "use_bias": False,
    "num_nextn_predict_layers": 0,
    "torch_dtype": "bfloat16",
    "initializer_range": 0.006,
    "output_router_logits": False,
    "use_cache": True,
    "use_sliding_window": False,
    "sliding_window": 4096,
    "embedding_dropout": 0.0,
    "attention_dropout": 0.0,
    "output_dropout": 0.0,
    "transformers_version": "4.52.3",
}

# Every key a generated config.json carries (the tests check this list against the file).
CONFIG_KEYS: tuple[str, ...] = (
    *FIXED_CONFIG,
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "moe_intermediate_size",
    "moe_shared_expert_intermediate_size",
    "num_experts",
    "num_experts_per_tok",
    "num_shared_experts",
    "n_group",
    "topk_group",
    "first_k_dense_replace",
    "max_position_embeddings",
    "max_window_layers",
    "vocab_size",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)

VOCAB_MULTIPLE = 64


@dataclass(frozen=True)
class Preset:
    """Sizes of one generated checkpoint (everything else comes from FIXED_CONFIG)."""

    name: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    moe_intermediate_size: int
    num_experts: int
    num_experts_per_tok: int
    num_shared_experts: int
    n_group: int
    topk_group: int
    first_k_dense_replace: int
    max_position_embeddings: int
    # BPE merges are trained up to this size (the corpus may stop it earlier).
    tokenizer_vocab_size: int
    # None: the trained tokenizer's size rounded up to VOCAB_MULTIPLE.
    vocab_size: int | None = None
    num_nextn_predict_layers: int = 0

    def validate(self) -> None:
        """Refuse sizes the architecture cannot express (raised as ValueError)."""
        if self.num_hidden_layers <= self.first_k_dense_replace:
            raise ValueError(
                f"num_hidden_layers ({self.num_hidden_layers}) must exceed first_k_dense_replace "
                f"({self.first_k_dense_replace}) so at least one MoE layer exists"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.num_experts % self.n_group:
            raise ValueError("num_experts must be a multiple of n_group")
        per_group = self.num_experts // self.n_group
        if per_group < 2:
            raise ValueError("each expert group needs >= 2 experts (group score = top-2 sum)")
        if self.num_experts_per_tok > self.topk_group * per_group:
            raise ValueError("num_experts_per_tok exceeds the experts left in topk_group groups")
        if self.head_dim < 32:
            raise ValueError("head_dim must be >= 32 (vLLM's CPU attention supports no smaller)")

    def with_layers(self, layers: int) -> Preset:
        """The same preset with another layer count (validated)."""
        preset = dataclasses.replace(self, num_hidden_layers=layers)
        preset.validate()
        return preset


PRESETS: dict[str, Preset] = {
    # Seconds on CPU: for tests. head_dim 64 with 4/2 heads keeps attention real (GQA, partial
    # rotary on 32 of 64 dims) while staying tiny; 4 groups of 4 experts with topk_group 2 makes half
    # of the experts unreachable for each token, so group masking bugs change the output.
    "tiny": Preset(
        name="tiny",
        hidden_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        intermediate_size=256,
        moe_intermediate_size=128,  # a multiple of fp8.BLOCK_SIZE: the FP8 twin loads in vLLM GPU kernels
        num_experts=16,
        num_experts_per_tok=4,
        num_shared_experts=1,
        n_group=4,
        topk_group=2,
        first_k_dense_replace=1,
        max_position_embeddings=4096,
        tokenizer_vocab_size=3000,
    ),
    # CPU benchmarks: enough work per token that model speed, not framework overhead, shows.
    "small": Preset(
        name="small",
        hidden_size=512,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=64,
        intermediate_size=1536,
        moe_intermediate_size=256,
        num_experts=64,
        num_experts_per_tok=8,
        num_shared_experts=1,
        n_group=8,
        topk_group=4,
        first_k_dense_replace=1,
        max_position_embeddings=8192,
        tokenizer_vocab_size=3000,
    ),
    # AntAngelMed's exact per-layer shapes (GPU benchmarks); layer count chosen with --layers.
    "real-shape": Preset(
        name="real-shape",
        hidden_size=4096,
        num_hidden_layers=4,
        num_attention_heads=32,
        num_key_value_heads=4,
        head_dim=128,
        intermediate_size=9216,
        moe_intermediate_size=1024,
        num_experts=256,
        num_experts_per_tok=8,
        num_shared_experts=1,
        n_group=8,
        topk_group=4,
        first_k_dense_replace=1,
        max_position_embeddings=32768,
        tokenizer_vocab_size=3000,
        vocab_size=157184,
    ),
}


def get_preset(name: str, layers: int | None = None) -> Preset:
    """Look a preset up by name; ValueError names the known presets."""
    try:
        preset = PRESETS[name]
    except KeyError:
        known = ", ".join(PRESETS)
        raise ValueError(f"unknown preset {name!r} (known: {known})") from None
    if layers is not None:
        return preset.with_layers(layers)
    preset.validate()
    return preset


def round_vocab(n_tokens: int) -> int:
    """Embedding rows for a tokenizer of n_tokens (padded like real checkpoints)."""
    return -(-n_tokens // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def build_config(
    preset: Preset, *, vocab_size: int, bos_token_id: int, eos_token_id: int, pad_token_id: int
) -> dict[str, Any]:
    """The full config.json for a preset and a tokenizer's special ids."""
    config: dict[str, Any] = dict(FIXED_CONFIG)
    config.update(
        hidden_size=preset.hidden_size,
        num_hidden_layers=preset.num_hidden_layers,
        num_attention_heads=preset.num_attention_heads,
        num_key_value_heads=preset.num_key_value_heads,
        head_dim=preset.head_dim,
        intermediate_size=preset.intermediate_size,
        moe_intermediate_size=preset.moe_intermediate_size,
        moe_shared_expert_intermediate_size=preset.moe_intermediate_size,
        num_experts=preset.num_experts,
        num_experts_per_tok=preset.num_experts_per_tok,
        num_shared_experts=preset.num_shared_experts,
        n_group=preset.n_group,
        topk_group=preset.topk_group,
        first_k_dense_replace=preset.first_k_dense_replace,
        max_position_embeddings=preset.max_position_embeddings,
        max_window_layers=preset.num_hidden_layers,
        num_nextn_predict_layers=preset.num_nextn_predict_layers,
        vocab_size=vocab_size,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    missing = set(CONFIG_KEYS) - set(config)
    assert not missing, f"config lacks {sorted(missing)}"  # guards CONFIG_KEYS edits
    return config
