"""The tensors an AntAngelMed checkpoint holds, derived from its config alone.

The model's loader checks every incoming tensor against this table before vLLM's weight loaders
see it, so a checkpoint with an unknown, misshapen or missing tensor fails with a message that
names the tensor instead of an assertion deep inside a sharded loader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class CheckpointError(ValueError):
    """A checkpoint does not match the architecture its config describes."""


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    # Carries a weight_scale_inv twin in block-FP8 checkpoints (model_plugin.fp8.with_scales).
    quantized: bool = False


def _swiglu(prefix: str, hidden: int, inner: int) -> dict[str, TensorSpec]:
    return {
        f"{prefix}.gate_proj.weight": TensorSpec((inner, hidden), True),
        f"{prefix}.up_proj.weight": TensorSpec((inner, hidden), True),
        f"{prefix}.down_proj.weight": TensorSpec((hidden, inner), True),
    }


def decoder_layer_tensors(config, idx: int, prefix: str = "model.layers") -> dict[str, TensorSpec]:
    """Tensors of decoder layer ``idx`` (also the layer inside an MTP block)."""
    h, d = config.hidden_size, config.head_dim
    p = f"{prefix}.{idx}"
    qkv_rows = (config.num_attention_heads + 2 * config.num_key_value_heads) * d
    specs = {
        f"{p}.input_layernorm.weight": TensorSpec((h,)),
        f"{p}.post_attention_layernorm.weight": TensorSpec((h,)),
        f"{p}.attention.query_key_value.weight": TensorSpec((qkv_rows, h), True),
        f"{p}.attention.dense.weight": TensorSpec((h, config.num_attention_heads * d), True),
    }
    if config.use_qk_norm:
        specs[f"{p}.attention.query_layernorm.weight"] = TensorSpec((d,))
        specs[f"{p}.attention.key_layernorm.weight"] = TensorSpec((d,))
    if not config.is_moe_layer(idx):
        specs.update(_swiglu(f"{p}.mlp", h, config.intermediate_size))
        return specs
    specs[f"{p}.mlp.gate.weight"] = TensorSpec((config.num_experts, h))
    if config.moe_router_enable_expert_bias:
        specs[f"{p}.mlp.gate.expert_bias"] = TensorSpec((config.num_experts,))
    for e in range(config.num_experts):
        specs.update(_swiglu(f"{p}.mlp.experts.{e}", h, config.moe_intermediate_size))
    if config.num_shared_experts:
        specs.update(_swiglu(f"{p}.mlp.shared_experts", h, config.shared_expert_intermediate_size))
    return specs


def model_tensors(
    config, layers: Iterable[int] | None = None, *, first: bool = True, last: bool = True
) -> dict[str, TensorSpec]:
    """Tensors of the main model; ``layers``/``first``/``last`` restrict it to one pipeline stage."""
    h, v = config.hidden_size, config.vocab_size
    specs: dict[str, TensorSpec] = {}
    if first:
        specs["model.word_embeddings.weight"] = TensorSpec((v, h))
    for idx in range(config.num_hidden_layers) if layers is None else layers:
        specs.update(decoder_layer_tensors(config, idx))
    if last:
        specs["model.norm.weight"] = TensorSpec((h,))
        if not config.tie_word_embeddings:
            specs["lm_head.weight"] = TensorSpec((v, h))
    return specs


def mtp_tensors(config) -> dict[str, TensorSpec]:
    """Tensors of the MTP block(s) a checkpoint ships when ``num_nextn_predict_layers`` > 0.

    DeepSeek-V3 layout, stored as extra layers after the decoder stack: MTP block ``k`` is
    ``model.layers.{num_hidden_layers + k}`` with enorm, hnorm, eh_proj (2h -> h, never FP8),
    one MoE decoder layer and final_layernorm. Embedding and lm_head are the main model's.
    """
    h = config.hidden_size
    specs: dict[str, TensorSpec] = {}
    for k in range(config.num_nextn_predict_layers):
        idx = config.num_hidden_layers + k
        p = f"model.layers.{idx}"
        specs[f"{p}.enorm.weight"] = TensorSpec((h,))
        specs[f"{p}.hnorm.weight"] = TensorSpec((h,))
        specs[f"{p}.eh_proj.weight"] = TensorSpec((h, 2 * h))
        specs.update(decoder_layer_tensors(config, idx))
        specs[f"{p}.final_layernorm.weight"] = TensorSpec((h,))
    return specs


class SchemaCheck:
    """Streams (name, tensor) pairs through, checking each against the expected table.

    Tensors in ``skip_prefixes`` (another pipeline stage's layers, an MTP block served by its own
    draft model) are known but dropped.
    """

    def __init__(self, expected: dict[str, TensorSpec], skip_prefixes: tuple[str, ...] = ()) -> None:
        self.expected = expected
        self.skip_prefixes = skip_prefixes
        self.seen: set[str] = set()

    def filter(self, weights):
        for name, tensor in weights:
            if name.startswith(self.skip_prefixes):
                continue
            spec = self.expected.get(name)
            if spec is None:
                raise CheckpointError(
                    f"checkpoint tensor {name!r} is not part of this architecture "
                    "(unknown name: wrong model, or a config that does not match the weights)"
                )
            if tuple(tensor.shape) != spec.shape:
                raise CheckpointError(
                    f"checkpoint tensor {name!r} has shape {tuple(tensor.shape)}, "
                    f"expected {spec.shape} from config.json"
                )
            self.seen.add(name)
            yield name, tensor

    def assert_complete(self) -> None:
        missing = sorted(set(self.expected) - self.seen)
        if missing:
            shown = ", ".join(missing[:8]) + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else "")
            raise CheckpointError(f"checkpoint is missing {len(missing)} tensor(s): {shown}")
