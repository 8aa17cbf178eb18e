"""AntAngelMed tensor names, shapes and seeded random values.

Values are chosen to exercise the bugs a port can have (see antangelmed.md "Traps"): norms are
1 + noise so swapped or missing norms change the output, router logits have a spread of ~2 so
sigmoid saturation and top-k are both visible, and a float32 expert_bias large enough to change
which experts (and groups) win, so using it for weights, or not at all, is caught.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

STORAGE_DTYPE = torch.bfloat16
NORM_NOISE = 0.2  # norm weights are 1 + NORM_NOISE * N(0, 1)
ROUTER_LOGIT_STD = 2.0  # x is RMS-normalised (~1 per dim): weight std 2/sqrt(h) -> logits std ~2
EXPERT_BIAS_STD = 0.25  # sigmoid scores span ~0.1..0.9, so a bias of this size reorders experts
LM_HEAD_LOGIT_STD = 3.0  # sharp next-token distributions keep greedy decoding away from near-ties


@dataclass(frozen=True)
class TensorSpec:
    """One checkpoint tensor: name, shape, how to draw it."""

    name: str
    shape: tuple[int, ...]
    kind: str  # "embedding" | "norm" | "linear" | "router" | "expert_bias"
    std: float = 1.0
    # lm_head rows >= live_rows (vocab padding past the tokenizer) are zero, so the model
    # practically never emits an id the tokenizer cannot decode (as a trained model would not).
    live_rows: int | None = None

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32 if self.kind == "expert_bias" else STORAGE_DTYPE

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * (4 if self.kind == "expert_bias" else 2)


def _linear(name: str, out_features: int, in_features: int, gain: float = 1.0) -> TensorSpec:
    # std 1/sqrt(fan_in) keeps activations O(1) through every projection.
    return TensorSpec(name, (out_features, in_features), "linear", gain / math.sqrt(in_features))


def _norm(name: str, size: int) -> TensorSpec:
    return TensorSpec(name, (size,), "norm", NORM_NOISE)


def _swiglu(prefix: str, hidden: int, inter: int) -> list[TensorSpec]:
    return [
        _linear(f"{prefix}.gate_proj.weight", inter, hidden),
        _linear(f"{prefix}.up_proj.weight", inter, hidden),
        _linear(f"{prefix}.down_proj.weight", hidden, inter),
    ]


def _attention(prefix: str, cfg: dict[str, Any]) -> list[TensorSpec]:
    h, d = cfg["hidden_size"], cfg["head_dim"]
    q, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    return [
        # Rows are [Q (q*d) | K (kv*d) | V (kv*d)], the fused layout AntAngelMed ships.
        _linear(f"{prefix}.query_key_value.weight", (q + 2 * kv) * d, h),
        _linear(f"{prefix}.dense.weight", h, q * d),
        _norm(f"{prefix}.query_layernorm.weight", d),
        _norm(f"{prefix}.key_layernorm.weight", d),
    ]


def _moe(prefix: str, cfg: dict[str, Any]) -> list[TensorSpec]:
    h, e, inter = cfg["hidden_size"], cfg["num_experts"], cfg["moe_intermediate_size"]
    specs = [
        TensorSpec(f"{prefix}.gate.weight", (e, h), "router", ROUTER_LOGIT_STD / math.sqrt(h)),
        TensorSpec(f"{prefix}.gate.expert_bias", (e,), "expert_bias", EXPERT_BIAS_STD),
    ]
    for idx in range(e):
        specs += _swiglu(f"{prefix}.experts.{idx}", h, inter)
    shared_inter = cfg["moe_shared_expert_intermediate_size"] * cfg["num_shared_experts"]
    specs += _swiglu(f"{prefix}.shared_experts", h, shared_inter)
    return specs


def _decoder_layer(idx: int, cfg: dict[str, Any]) -> list[TensorSpec]:
    h = cfg["hidden_size"]
    prefix = f"model.layers.{idx}"
    specs = [_norm(f"{prefix}.input_layernorm.weight", h)]
    specs += _attention(f"{prefix}.attention", cfg)
    specs.append(_norm(f"{prefix}.post_attention_layernorm.weight", h))
    if idx < cfg["first_k_dense_replace"]:
        specs += _swiglu(f"{prefix}.mlp", h, cfg["intermediate_size"])
    else:
        specs += _moe(f"{prefix}.mlp", cfg)
    return specs


def _mtp_layer(idx: int, cfg: dict[str, Any]) -> list[TensorSpec]:
    # DeepSeek-V3-style MTP block stored as one more layer after the decoder stack.
    h = cfg["hidden_size"]
    prefix = f"model.layers.{idx}"
    return [
        _norm(f"{prefix}.enorm.weight", h),
        _norm(f"{prefix}.hnorm.weight", h),
        _linear(f"{prefix}.eh_proj.weight", h, 2 * h),
        *_decoder_layer(idx, cfg),
        _norm(f"{prefix}.final_layernorm.weight", h),
    ]


def tensor_specs(cfg: dict[str, Any], live_vocab: int | None = None) -> list[TensorSpec]:
    """Every tensor of a checkpoint with this config.json, in file order.

    live_vocab: the tokenizer's size; lm_head rows past it (padding) are zero.
    """
    h, vocab, n_layers = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    specs = [TensorSpec("model.word_embeddings.weight", (vocab, h), "embedding", 1.0)]
    for idx in range(n_layers):
        specs += _decoder_layer(idx, cfg)
    for extra in range(cfg.get("num_nextn_predict_layers", 0)):
        specs += _mtp_layer(n_layers + extra, cfg)
    specs.append(_norm("model.norm.weight", h))
    lm_head = _linear("lm_head.weight", vocab, h, gain=LM_HEAD_LOGIT_STD)
    specs.append(dataclasses.replace(lm_head, live_rows=live_vocab))
    return specs


def tensor_seed(seed: int, name: str) -> int:
    """A per-tensor seed: each tensor depends only on (seed, name), not on generation order."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


# Huge tensors (real-shape embeddings: 644M values) are drawn in chunks so generation never
# holds more than the stored tensor plus one float32 chunk.
CHUNK_ELEMENTS = 1 << 24


def make_tensor(spec: TensorSpec, seed: int) -> torch.Tensor:
    """Draw one tensor deterministically (same seed and name: byte-identical result)."""
    gen = torch.Generator().manual_seed(tensor_seed(seed, spec.name))
    out = torch.empty(spec.shape, dtype=spec.dtype)
    flat = out.view(-1)
    for start in range(0, flat.numel(), CHUNK_ELEMENTS):
        n = min(CHUNK_ELEMENTS, flat.numel() - start)
        values = torch.randn(n, generator=gen, dtype=torch.float32).mul_(spec.std)
        if spec.kind == "norm":
            values.add_(1.0)
        flat[start : start + n].copy_(values)
    if spec.live_rows is not None:
        out[spec.live_rows :] = 0
    return out


def add_bigram(
    lm_head: torch.Tensor, embedding: torch.Tensor, strength: float, seed: int, live_rows: int
) -> torch.Tensor:
    """Give the model a next-token habit: row sigma(x) of lm_head gains strength/h * E[x].

    sigma is a seeded random permutation of the live vocabulary. After the final norm the
    stream keeps a share of the current token's embedding, so the logit of sigma(x_t) rises by
    roughly strength x that share: a random model then continues text partly predictably, as a
    trained LM does locally, which speculative-decoding drafts can learn. 0 keeps it random.
    """
    h = lm_head.shape[1]
    gen = torch.Generator().manual_seed(tensor_seed(seed, "bigram-permutation"))
    sigma = torch.randperm(live_rows, generator=gen)  # token x -> preferred next token sigma[x]
    out = lm_head.float()
    out[sigma] += (strength / h) * embedding[:live_rows].float()
    return out.to(lm_head.dtype)


def iter_tensors(specs: list[TensorSpec], seed: int) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (name, tensor) one at a time so big presets never sit in memory whole."""
    for spec in specs:
        yield spec.name, make_tensor(spec, seed)
