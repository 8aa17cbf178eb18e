"""AntAngelMed (BailingMoeV2 / Ling-flash-2.0) for vLLM, built on vLLM's parallel building blocks.

Ladder: Attention -> MLP -> MoE -> DecoderLayer -> Model -> ForCausalLM. Modules are named after
the checkpoint (``query_key_value``, ``dense``, ``gate``, ``shared_experts``) so loading is one
mapping table; tensor parallelism, pipeline parallelism and vLLM's quantization configs apply
because every projection is a vLLM parallel linear layer.

Differences from vLLM's built-in ``BailingMoeV2ForCausalLM`` that matter to users:
- router logits stay float32 from the gate to expert selection (the built-in rounds them to BF16
  before top-k, which can flip which experts are chosen);
- EAGLE3 target support (aux hidden states, PP aware) with a layer-id shift for SGLang drafts;
- strict loading: unknown, misshapen or missing tensors fail with the tensor's name;
- a CPU fallback that dequantizes block-FP8 checkpoints at load (see ``model_plugin.fp8``).
"""

from collections.abc import Iterable
from itertools import islice
from typing import ClassVar

import torch
from torch import nn
from vllm.compilation.decorators import support_torch_compile
from vllm.config import CacheConfig, VllmConfig
from vllm.distributed import get_pp_group, get_tensor_model_parallel_world_size
from vllm.model_executor.layers.activation import SiluAndMul
from vllm.model_executor.layers.attention import Attention
from vllm.model_executor.layers.fused_moe import FusedMoEFactory, GateLinear
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import (
    MergedColumnParallelLinear,
    QKVParallelLinear,
    RowParallelLinear,
)
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.quantization import QuantizationConfig
from vllm.model_executor.layers.rotary_embedding import get_rope
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.models.interfaces import EagleModelMixin, SupportsEagle3, SupportsPP
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    PPMissingLayer,
    WeightsMapper,
    make_empty_intermediate_tensors_factory,
    make_layers,
    maybe_prefix,
)
from vllm.sequence import IntermediateTensors

from model_plugin import fp8
from model_plugin.checkpoint_schema import SchemaCheck, model_tensors

_ROUTER_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, None: None}


class AntAngelMedMLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)). Dense layers and the shared expert."""

    def __init__(
        self,
        config,
        intermediate_size: int,
        quant_config: QuantizationConfig | None,
        reduce_results: bool = True,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.gate_up_proj = MergedColumnParallelLinear(
            config.hidden_size,
            [intermediate_size] * 2,
            bias=config.use_bias,
            quant_config=quant_config,
            prefix=f"{prefix}.gate_up_proj",
        )
        self.down_proj = RowParallelLinear(
            intermediate_size,
            config.hidden_size,
            bias=config.use_bias,
            quant_config=quant_config,
            reduce_results=reduce_results,
            prefix=f"{prefix}.down_proj",
        )
        self.act_fn = SiluAndMul()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up, _ = self.gate_up_proj(x)  # [T, 2I]
        out, _ = self.down_proj(self.act_fn(gate_up))  # [T, H]
        return out


class AntAngelMedMoE(nn.Module):
    """Sigmoid-scored, group-limited top-k MoE with an unscaled shared expert.

    Routing (all float32): scores = sigmoid(x @ gate.T); the expert_bias is added only to choose
    groups and experts; the chosen experts' *unbiased* scores are renormalised and scaled by
    routed_scaling_factor. vLLM's FusedMoE router and kernels carry it out.
    """

    def __init__(self, config, quant_config: QuantizationConfig | None, prefix: str = "") -> None:
        super().__init__()
        self.router_dtype = _ROUTER_DTYPES[config.router_dtype]
        self.gate = GateLinear(
            config.hidden_size,
            config.num_experts,
            out_dtype=self.router_dtype,
            params_dtype=self.router_dtype,
            prefix=f"{prefix}.gate",
        )
        # The bias is a selection-only correction; the checkpoint stores it in float32.
        self.gate.expert_bias = (
            nn.Parameter(torch.empty(config.num_experts, dtype=torch.float32), requires_grad=False)
            if config.moe_router_enable_expert_bias
            else None
        )
        self.shared_experts = (
            AntAngelMedMLP(
                config,
                config.shared_expert_intermediate_size,
                quant_config,
                reduce_results=False,
                prefix=f"{prefix}.shared_experts",
            )
            if config.num_shared_experts
            else None
        )
        self.experts = FusedMoEFactory(
            shared_experts=self.shared_experts,
            num_experts=config.num_experts,
            top_k=config.num_experts_per_tok,
            hidden_size=config.hidden_size,
            intermediate_size=config.moe_intermediate_size,
            renormalize=config.norm_topk_prob,
            quant_config=quant_config,
            prefix=f"{prefix}.experts",
            scoring_func=config.score_function,
            e_score_correction_bias=self.gate.expert_bias,
            use_grouped_topk=config.n_group is not None,
            num_expert_group=config.n_group,
            topk_group=config.topk_group,
            router_logits_dtype=self.router_dtype,
            routed_scaling_factor=config.routed_scaling_factor,
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        router_logits, _ = self.gate(hidden_states)  # [T, E], float32: never rounded before top-k
        return self.experts(hidden_states=hidden_states, router_logits=router_logits)


class AntAngelMedAttention(nn.Module):
    """GQA with a fused [Q | K | V] projection, per-head RMSNorm on q and k BEFORE partial NeoX RoPE."""

    def __init__(
        self,
        config,
        cache_config: CacheConfig | None,
        quant_config: QuantizationConfig | None,
        prefix: str = "",
    ) -> None:
        super().__init__()
        tp_size = get_tensor_model_parallel_world_size()
        self.head_dim = config.head_dim
        self.num_heads = config.num_attention_heads // tp_size
        self.num_kv_heads = max(1, config.num_key_value_heads // tp_size)
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_kv_heads * self.head_dim
        self.query_key_value = QKVParallelLinear(
            config.hidden_size,
            self.head_dim,
            config.num_attention_heads,
            config.num_key_value_heads,
            bias=config.use_qkv_bias or config.use_bias,
            quant_config=quant_config,
            prefix=f"{prefix}.query_key_value",
        )
        self.dense = RowParallelLinear(
            config.num_attention_heads * self.head_dim,
            config.hidden_size,
            bias=config.use_bias,
            quant_config=quant_config,
            prefix=f"{prefix}.dense",
        )
        # The official code always uses RMSNorm here; LayerNorm would not even load the checkpoint.
        self.use_qk_norm = config.use_qk_norm
        if self.use_qk_norm:
            self.query_layernorm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
            self.key_layernorm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        # rope_parameters carries partial_rotary_factor, so only the first half of each head rotates.
        self.rotary_emb = get_rope(
            self.head_dim,
            max_position=config.max_position_embeddings,
            is_neox_style=True,
            rope_parameters=config.rope_parameters,
        )
        self.attn = Attention(
            self.num_heads,
            self.head_dim,
            self.head_dim**-0.5,
            num_kv_heads=self.num_kv_heads,
            cache_config=cache_config,
            quant_config=quant_config,
            prefix=f"{prefix}.attn",
        )

    def _qk_norm(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # One RMSNorm row per head: [T, heads*D] viewed as [T, heads, D] (no copy of the qkv slice).
        q = self.query_layernorm(q.unflatten(-1, (self.num_heads, self.head_dim))).flatten(-2)
        k = self.key_layernorm(k.unflatten(-1, (self.num_kv_heads, self.head_dim))).flatten(-2)
        return q, k

    def forward(self, positions: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.query_key_value(hidden_states)  # [T, (Hq + 2 Hkv) * D]
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        if self.use_qk_norm:
            q, k = self._qk_norm(q, k)
        q, k = self.rotary_emb(positions, q, k)
        out, _ = self.dense(self.attn(q, k, v))  # [T, H]
        return out


class AntAngelMedDecoderLayer(nn.Module):
    def __init__(
        self,
        config,
        cache_config: CacheConfig | None,
        quant_config: QuantizationConfig | None,
        prefix: str = "",
    ) -> None:
        super().__init__()
        layer_idx = int(prefix.rsplit(".", 1)[-1])
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.attention = AntAngelMedAttention(
            config, cache_config, quant_config, prefix=f"{prefix}.attention"
        )
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = (
            AntAngelMedMoE(config, quant_config, prefix=f"{prefix}.mlp")
            if config.is_moe_layer(layer_idx)
            else AntAngelMedMLP(config, config.intermediate_size, quant_config, prefix=f"{prefix}.mlp")
        )

    def forward(
        self, positions: torch.Tensor, hidden_states: torch.Tensor, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Pre-norm with the residual add fused into the norm (vLLM's RMSNorm(x, residual)).
        if residual is None:
            residual = hidden_states
            hidden_states = self.input_layernorm(hidden_states)
        else:
            hidden_states, residual = self.input_layernorm(hidden_states, residual)
        hidden_states = self.attention(positions, hidden_states)
        hidden_states, residual = self.post_attention_layernorm(hidden_states, residual)
        return self.mlp(hidden_states), residual


@support_torch_compile
class AntAngelMedModel(nn.Module, EagleModelMixin):
    supports_aux_hidden_states_over_pp = True

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        pp = get_pp_group()
        self.word_embeddings = (
            VocabParallelEmbedding(
                config.vocab_size,
                config.hidden_size,
                quant_config=vllm_config.quant_config,
                prefix=f"{prefix}.word_embeddings",
            )
            if pp.is_first_rank
            else PPMissingLayer()
        )
        self.start_layer, self.end_layer, self.layers = make_layers(
            config.num_hidden_layers,
            lambda prefix: AntAngelMedDecoderLayer(
                config, vllm_config.cache_config, vllm_config.quant_config, prefix=prefix
            ),
            prefix=f"{prefix}.layers",
        )
        self.norm = (
            RMSNorm(config.hidden_size, eps=config.rms_norm_eps) if pp.is_last_rank else PPMissingLayer()
        )
        self.make_empty_intermediate_tensors = make_empty_intermediate_tensors_factory(
            ["hidden_states", "residual"], config.hidden_size
        )

    @property
    def embed_tokens(self) -> nn.Module:
        # vLLM's EAGLE3 proposer shares the target's input embedding under this name.
        return self.word_embeddings

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors | tuple[torch.Tensor, list[torch.Tensor]]:
        pp = get_pp_group()
        if pp.is_first_rank:
            hidden_states = inputs_embeds if inputs_embeds is not None else self.embed_input_ids(input_ids)
            residual = None
        else:
            hidden_states = intermediate_tensors["hidden_states"]
            residual = intermediate_tensors["residual"]
        # EAGLE3: aux state k is the residual stream entering layer k (collected by the mixin).
        remote_aux = self.collect_remote_aux_hidden_states(intermediate_tensors)
        aux: list[torch.Tensor] = []
        if pp.is_first_rank:
            self._maybe_add_hidden_state(aux, self.start_layer, hidden_states, residual)
        for idx, layer in enumerate(
            islice(self.layers, self.start_layer, self.end_layer), start=self.start_layer
        ):
            hidden_states, residual = layer(positions, hidden_states, residual)
            self._maybe_add_hidden_state(aux, idx + 1, hidden_states, residual)
        if not pp.is_last_rank:
            return IntermediateTensors(
                {
                    "hidden_states": hidden_states,
                    "residual": residual,
                    **self.pack_local_aux_hidden_states(aux),
                }
            )
        hidden_states, _ = self.norm(hidden_states, residual)
        aux = remote_aux + aux
        return (hidden_states, aux) if aux else hidden_states


def load_checked(
    module: nn.Module,
    weights: Iterable[tuple[str, torch.Tensor]],
    expected: dict,
    skip_prefixes: tuple[str, ...],
    param_dtype: torch.dtype,
) -> set[str]:
    """Load checkpoint tensors into ``module``: each checked against ``expected`` (name and shape),
    block-FP8 pairs dequantized when the CPU fallback is on, completeness asserted at the end."""
    check = SchemaCheck(expected, skip_prefixes=skip_prefixes)
    weights = check.filter(weights)
    if fp8.dequantize_on_load(module.config):
        # Straight to the parameters' dtype: a detour through BF16 would round the fp8*scale product.
        weights = fp8.dequantized(weights, fp8.block_size(module.config), dtype=param_dtype)
    loaded = AutoWeightsLoader(module).load_weights(weights, mapper=AntAngelMedForCausalLM.hf_to_vllm_mapper)
    check.assert_complete()
    return loaded


class AntAngelMedForCausalLM(nn.Module, SupportsPP, SupportsEagle3):
    packed_modules_mapping: ClassVar[dict[str, list[str]]] = {
        "query_key_value": ["query_key_value"],
        "gate_up_proj": ["gate_proj", "up_proj"],
    }
    # Checkpoint name -> (our fused parameter, shard). Experts are mapped by vLLM's MoE runner.
    hf_to_vllm_mapper = WeightsMapper(
        orig_to_new_stacked={
            ".mlp.gate_proj": (".mlp.gate_up_proj", 0),
            ".mlp.up_proj": (".mlp.gate_up_proj", 1),
            ".shared_experts.gate_proj": (".shared_experts.gate_up_proj", 0),
            ".shared_experts.up_proj": (".shared_experts.gate_up_proj", 1),
        }
    )

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        self.quant_config = vllm_config.quant_config
        self.param_dtype = vllm_config.model_config.dtype
        self.model = AntAngelMedModel(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model"))
        if get_pp_group().is_last_rank:
            self.lm_head = ParallelLMHead(
                config.vocab_size,
                config.hidden_size,
                quant_config=vllm_config.quant_config,
                prefix=maybe_prefix(prefix, "lm_head"),
            )
            if config.tie_word_embeddings:
                self.lm_head = self.lm_head.tie_weights(self.model.word_embeddings)
            self.logits_processor = LogitsProcessor(config.vocab_size)
        else:
            self.lm_head = PPMissingLayer()
        self.make_empty_intermediate_tensors = self.model.make_empty_intermediate_tensors

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)

    def set_aux_hidden_state_layers(self, layers: tuple[int, ...]) -> None:
        # Drafts trained with SGLang-based tooling count one layer later than vLLM (SGLang id k is the
        # output of layer k, vLLM id k its input). `--hf-overrides '{"eagle_aux_layer_id_shift": 1}'`
        # makes such a draft read the layers it was trained on.
        shift = int(getattr(self.config, "eagle_aux_layer_id_shift", 0) or 0)
        shifted = tuple(layer + shift for layer in layers)
        bad = [layer for layer in shifted if not 0 <= layer <= self.config.num_hidden_layers]
        if bad:
            raise ValueError(
                f"EAGLE3 aux hidden-state layer ids {bad} are outside 0..{self.config.num_hidden_layers} "
                f"(ids {layers}, eagle_aux_layer_id_shift={shift})"
            )
        self.model._set_aux_hidden_state_layers(shifted)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ):
        return self.model(input_ids, positions, intermediate_tensors, inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.logits_processor(self.lm_head, hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return load_checked(
            self, weights, self._expected_tensors(), self._foreign_prefixes(), self.param_dtype
        )

    def _expected_tensors(self):
        pp = get_pp_group()
        specs = model_tensors(
            self.config,
            range(self.model.start_layer, self.model.end_layer),
            first=pp.is_first_rank,
            last=pp.is_last_rank,
        )
        return fp8.expected_tensors(specs, self.config)

    def _foreign_prefixes(self) -> tuple[str, ...]:
        """Tensors that belong to another pipeline stage or to the MTP draft: known, not ours to load."""
        pp = get_pp_group()
        n = self.config.num_hidden_layers
        other_layers = [
            i
            for i in range(n + self.config.num_nextn_predict_layers)
            if not self.model.start_layer <= i < self.model.end_layer
        ]
        prefixes = [f"model.layers.{i}." for i in other_layers]
        if not pp.is_first_rank:
            prefixes.append("model.word_embeddings.")
        if not pp.is_last_rank:
            prefixes += ["model.norm.", "lm_head."]
        return tuple(prefixes)
