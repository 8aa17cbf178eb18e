"""AntAngelMed's MTP layer as a vLLM speculative draft (method "mtp").

DeepSeek-V3-style multi-token prediction, as the BailingMoeV2 family defines it: MTP block ``k``
sits after the decoder stack as ``model.layers.{num_hidden_layers + k}`` and predicts the token
after next from the target's final hidden state at position t and the embedding of token t + 1:

    x = eh_proj([enorm(embed(token[t + 1])) | hnorm(hidden[t])])      # [T, 2H] -> [T, H]
    x = decoder_layer(x)                                               # attention + MoE, own KV cache
    h = final_layernorm(x)        # fed to lm_head, and back in as hidden[t] for the next draft step
    logits = lm_head(h)

The embedding and lm_head are the target's: vLLM's proposer attaches them to every MTP draft
after loading (``embed_tokens`` on the inner model, ``lm_head`` on this class), so the draft
allocates neither. The block reuses the main model's decoder layer, so its tensors keep the
checkpoint's names and load through the same strict schema check (missing, unknown or
misshapen tensors fail with their name) and the same block-FP8 dequantize-at-load fallback.

vLLM reaches this class through a draft directory whose config says ``model_type: "mtp"`` (see
``model_plugin.mtp.draft``); the returned hidden state is after ``final_layernorm``, as in the
Megatron and SGLang implementations of this architecture, so multi-step drafting (k > 1) feeds
the block its own normed output.
"""

from collections.abc import Iterable

import torch
from torch import nn
from vllm.config import CacheConfig, VllmConfig
from vllm.distributed import get_pp_group
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import ReplicatedLinear
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.quantization import QuantizationConfig
from vllm.model_executor.models.utils import maybe_prefix
from vllm.sequence import IntermediateTensors

from model_plugin import fp8
from model_plugin.checkpoint_schema import mtp_tensors
from model_plugin.models.antangelmed import AntAngelMedDecoderLayer, AntAngelMedForCausalLM, load_checked

# Copies of the shared weights that some MTP exports store inside the block; the draft always
# uses the target's, so these are known and skipped rather than refused as unknown.
_SHARED_COPIES = ("embed_tokens.", "word_embeddings.", "shared_head.head.")


class AntAngelMedMTPLayer(AntAngelMedDecoderLayer):
    """One MTP block: the main decoder layer plus enorm, hnorm, eh_proj and final_layernorm."""

    def __init__(
        self,
        config,
        cache_config: CacheConfig | None,
        quant_config: QuantizationConfig | None,
        prefix: str = "",
    ) -> None:
        super().__init__(config, cache_config, quant_config, prefix=prefix)
        h = config.hidden_size
        self.enorm = RMSNorm(h, eps=config.rms_norm_eps)
        self.hnorm = RMSNorm(h, eps=config.rms_norm_eps)
        # Exports keep eh_proj in BF16 (FP8 checkpoints too); it is small, so every TP rank holds it.
        self.eh_proj = ReplicatedLinear(2 * h, h, bias=False, quant_config=None, prefix=f"{prefix}.eh_proj")
        self.final_layernorm = RMSNorm(h, eps=config.rms_norm_eps)

    def forward(
        self, positions: torch.Tensor, inputs_embeds: torch.Tensor, previous_hidden_states: torch.Tensor
    ) -> torch.Tensor:
        # Order matters: the embedding half comes first in eh_proj's input columns.
        x = torch.cat([self.enorm(inputs_embeds), self.hnorm(previous_hidden_states)], dim=-1)  # [T, 2H]
        x, _ = self.eh_proj(x)  # [T, H]
        x, residual = super().forward(positions, x, None)
        x, _ = self.final_layernorm(x, residual)  # fused residual add + norm
        return x


class AntAngelMedMTPModel(nn.Module):
    """The MTP blocks, keyed by their checkpoint layer index (``model.layers.{N + k}``)."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.mtp_start_layer_idx = config.num_hidden_layers
        self.num_mtp_layers = config.num_nextn_predict_layers
        self.layers = nn.ModuleDict(
            {
                str(idx): AntAngelMedMTPLayer(
                    config,
                    vllm_config.cache_config,
                    vllm_config.quant_config,
                    prefix=f"{prefix}.layers.{idx}",
                )
                for idx in range(self.mtp_start_layer_idx, self.mtp_start_layer_idx + self.num_mtp_layers)
            }
        )
        # `embed_tokens` (the target's word_embeddings) is attached by vLLM's proposer.

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        embed = getattr(self, "embed_tokens", None)
        if embed is None:
            raise RuntimeError(
                "the AntAngelMed MTP draft has no embedding of its own: it runs only as a "
                "vLLM speculative draft, which shares the target's"
            )
        return embed(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        hidden_states: torch.Tensor,
        inputs_embeds: torch.Tensor | None = None,
        spec_step_idx: int = 0,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.embed_input_ids(input_ids)
        # With fewer blocks than draft steps, vLLM reuses them in turn.
        layer = self.layers[str(self.mtp_start_layer_idx + spec_step_idx % self.num_mtp_layers)]
        return layer(positions, inputs_embeds, hidden_states)


class AntAngelMedMTP(nn.Module):
    """The draft vLLM builds for ``architectures: ["AntAngelMedMTP"]`` (speculative method "mtp")."""

    packed_modules_mapping = AntAngelMedForCausalLM.packed_modules_mapping

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        if config.num_nextn_predict_layers < 1:
            raise ValueError(
                "AntAngelMed MTP draft: config.json has num_nextn_predict_layers = 0 "
                "(this checkpoint ships no MTP layer)"
            )
        if get_pp_group().world_size > 1:
            # vLLM shares the target's embedding and lm_head with MTP drafts only without PP.
            raise NotImplementedError("the AntAngelMed MTP draft needs pipeline_parallel_size 1")
        self.config = config
        self.param_dtype = vllm_config.model_config.dtype
        self.model = AntAngelMedMTPModel(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model"))
        self.logits_processor = LogitsProcessor(config.vocab_size)
        # `lm_head` (the target's) is attached by vLLM's proposer.

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        hidden_states: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
        spec_step_idx: int = 0,
    ) -> torch.Tensor:
        return self.model(input_ids, positions, hidden_states, inputs_embeds, spec_step_idx)

    def compute_logits(self, hidden_states: torch.Tensor, spec_step_idx: int = 0) -> torch.Tensor | None:
        return self.logits_processor(self.lm_head, hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return load_checked(
            self, weights, self._expected_tensors(), self._target_prefixes(), self.param_dtype
        )

    def _expected_tensors(self):
        return fp8.expected_tensors(mtp_tensors(self.config), self.config)

    def _target_prefixes(self) -> tuple[str, ...]:
        """The target's own tensors (read by the target model) and shared-weight copies: skipped."""
        n = self.config.num_hidden_layers
        prefixes = [f"model.layers.{i}." for i in range(n)]
        prefixes += ["model.word_embeddings.", "model.norm.", "lm_head."]
        prefixes += [f"model.layers.{idx}.{name}" for idx in self.model.layers for name in _SHARED_COPIES]
        return tuple(prefixes)
