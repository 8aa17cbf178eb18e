"""AntAngelMed's configuration class (BailingMoeV2 / Ling-flash-2.0 family).

Registered with transformers for ``model_type`` ``bailing_moe_v2`` and ``bailing_moe`` so that vLLM
loads AntAngelMed checkpoints without ``--trust-remote-code``: no code shipped inside a checkpoint
(``auto_map``) ever runs.

Every default below is the *official* behaviour of the AntAngelMed modeling code, not a generic
fallback. The official code hard-codes sigmoid scoring, RMSNorm QK-norm and renormalised top-k; a
config that omits those keys must still mean that (vLLM's built-in silently switches to softmax).
"""

from __future__ import annotations

from typing import ClassVar

from transformers.configuration_utils import PreTrainedConfig

from model_plugin import fp8

# The YaRN recipe AntAngelMed documents for 128K context (4 x the 32K it was trained at).
YARN_128K = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}

_SCORE_FUNCTIONS = ("sigmoid", "softmax")
_ROUTER_DTYPES = ("fp32", "bf16", None)


class AntAngelMedConfig(PreTrainedConfig):
    model_type = "bailing_moe_v2"
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["past_key_values"]

    def __init__(
        self,
        vocab_size: int = 157184,
        hidden_size: int = 4096,
        intermediate_size: int = 9216,
        num_hidden_layers: int = 32,
        num_attention_heads: int = 32,
        num_key_value_heads: int = 4,
        head_dim: int | None = 128,
        hidden_act: str = "silu",
        use_qkv_bias: bool = False,
        use_bias: bool = False,
        rms_norm_eps: float = 1e-6,
        max_position_embeddings: int = 32768,
        initializer_range: float = 0.006,
        tie_word_embeddings: bool = False,
        use_cache: bool = True,
        rope_theta: float = 600000.0,
        rope_scaling: dict | None = None,
        rope_parameters: dict | None = None,
        partial_rotary_factor: float = 0.5,
        num_experts: int = 256,
        num_shared_experts: int = 1,
        num_experts_per_tok: int = 8,
        n_group: int | None = 8,
        topk_group: int | None = 4,
        moe_intermediate_size: int = 1024,
        moe_shared_expert_intermediate_size: int | None = None,
        first_k_dense_replace: int = 1,
        norm_topk_prob: bool = True,
        routed_scaling_factor: float = 2.5,
        score_function: str = "sigmoid",
        moe_router_enable_expert_bias: bool = True,
        router_dtype: str | None = "fp32",
        use_qk_norm: bool = True,
        use_rmsnorm: bool = True,
        num_nextn_predict_layers: int = 0,
        embedding_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        output_dropout: float = 0.0,
        output_router_logits: bool = False,
        pad_token_id: int | None = 156892,
        bos_token_id: int | None = 156891,
        eos_token_id: int | list[int] | None = 156892,
        **kwargs,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim or hidden_size // num_attention_heads
        self.hidden_act = hidden_act
        self.use_qkv_bias = use_qkv_bias
        self.use_bias = use_bias
        self.rms_norm_eps = rms_norm_eps
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        self.rope_theta = rope_theta
        self.partial_rotary_factor = partial_rotary_factor
        self.num_experts = num_experts
        self.num_shared_experts = num_shared_experts
        self.num_experts_per_tok = num_experts_per_tok
        self.n_group = n_group
        self.topk_group = topk_group
        self.moe_intermediate_size = moe_intermediate_size
        self.moe_shared_expert_intermediate_size = moe_shared_expert_intermediate_size
        self.first_k_dense_replace = first_k_dense_replace
        self.norm_topk_prob = norm_topk_prob
        self.routed_scaling_factor = routed_scaling_factor
        self.score_function = score_function
        self.moe_router_enable_expert_bias = moe_router_enable_expert_bias
        self.router_dtype = router_dtype
        self.use_qk_norm = use_qk_norm
        self.use_rmsnorm = use_rmsnorm
        self.num_nextn_predict_layers = num_nextn_predict_layers
        self.embedding_dropout = embedding_dropout
        self.attention_dropout = attention_dropout
        self.output_dropout = output_dropout
        self.output_router_logits = output_router_logits
        # Shipped configs say "rope_scaling"; transformers 5 calls it "rope_parameters". Accept both,
        # and keep the checkpoint's own rope_theta / partial factor inside the dict vLLM reads.
        self.rope_parameters = rope_parameters or rope_scaling  # normalised by the property setter
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
        self.validate_antangelmed()

    # vLLM re-reads quantization_config from config.json and assigns it after constructing the
    # config, so the CPU fallback for block-FP8 lives in the setter: on a machine without FP8
    # kernels the dict is moved aside (vLLM then builds BF16 layers) and the loader dequantizes.
    @property
    def quantization_config(self) -> dict:
        try:
            return self.__dict__["quantization_config"]
        except KeyError:
            raise AttributeError("quantization_config") from None

    @quantization_config.setter
    def quantization_config(self, value) -> None:
        if isinstance(value, dict) and fp8.should_dequantize(value):
            self.__dict__[fp8.STASH_KEY] = value
            self.__dict__.pop("quantization_config", None)
        else:
            self.__dict__["quantization_config"] = value

    # `--hf-overrides '{"rope_scaling": {...}}'` (how users turn on YaRN for 128K) reaches the config
    # as a plain assignment after construction; normalise it here too, or the override would drop
    # rope_theta and the partial rotary factor and vLLM would rotate with its defaults.
    @property
    def rope_parameters(self) -> dict:
        return self.__dict__["rope_parameters"]

    @rope_parameters.setter
    def rope_parameters(self, value: dict | None) -> None:
        self.__dict__["rope_parameters"] = _rope_parameters(
            value, self.rope_theta, self.partial_rotary_factor, self.max_position_embeddings
        )

    @property
    def rotary_dim(self) -> int:
        return int(self.head_dim * self.partial_rotary_factor)

    @property
    def shared_expert_intermediate_size(self) -> int:
        per_expert = self.moe_shared_expert_intermediate_size or self.moe_intermediate_size
        return per_expert * self.num_shared_experts

    def is_moe_layer(self, layer_idx: int) -> bool:
        return layer_idx >= self.first_k_dense_replace

    def validate_antangelmed(self) -> None:
        """Refuse configs the architecture cannot mean, with a message naming the key."""
        problems = []
        if self.score_function not in _SCORE_FUNCTIONS:
            problems.append(f"score_function={self.score_function!r} (expected one of {_SCORE_FUNCTIONS})")
        if self.router_dtype not in _ROUTER_DTYPES:
            problems.append(f"router_dtype={self.router_dtype!r} (expected 'fp32' or 'bf16')")
        if self.num_attention_heads % self.num_key_value_heads:
            problems.append("num_attention_heads must be a multiple of num_key_value_heads")
        if not 0.0 < self.partial_rotary_factor <= 1.0:
            problems.append(f"partial_rotary_factor={self.partial_rotary_factor} (expected 0 < f <= 1)")
        if self.rotary_dim % 2:
            problems.append(f"rotary_dim head_dim*partial_rotary_factor={self.rotary_dim} must be even")
        if self.num_experts_per_tok > self.num_experts:
            problems.append("num_experts_per_tok exceeds num_experts")
        if (self.n_group is None) != (self.topk_group is None):
            problems.append("n_group and topk_group must be given together")
        if self.n_group is not None:
            if self.num_experts % self.n_group:
                problems.append(f"num_experts={self.num_experts} is not divisible by n_group={self.n_group}")
            elif not 0 < self.topk_group <= self.n_group:
                problems.append(f"topk_group={self.topk_group} must be in 1..n_group={self.n_group}")
            elif self.num_experts_per_tok > self.num_experts // self.n_group * self.topk_group:
                problems.append("num_experts_per_tok exceeds the experts left in topk_group groups")
        if problems:
            raise ValueError("invalid AntAngelMed config: " + "; ".join(problems))


class AntAngelMedLegacyConfig(AntAngelMedConfig):
    """Same architecture; some AntAngelMed exports write model_type "bailing_moe"."""

    model_type = "bailing_moe"

    # transformers 5 replaces the __init__ of a config subclass that defines none with a generated
    # dataclass __init__, which would skip ours.
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)


def _rope_parameters(
    given: dict | None, rope_theta: float, partial_rotary_factor: float, max_position_embeddings: int
) -> dict:
    params = dict(given or {})
    # Older exports name the scaling kind "type"; vLLM's get_rope reads "rope_type".
    params["rope_type"] = params.pop("type", None) or params.get("rope_type") or "default"
    params.setdefault("rope_theta", rope_theta)
    params["partial_rotary_factor"] = partial_rotary_factor
    if params["rope_type"] == "yarn":
        if "factor" not in params:
            raise ValueError("invalid AntAngelMed config: rope_scaling type 'yarn' needs 'factor'")
        params.setdefault("original_max_position_embeddings", max_position_embeddings)
    return params
