"""A pure PyTorch reference of AntAngelMed's forward pass (BailingMoeV2), for tests.

Written straight from the math in the architecture notes, HF style: dense matmuls, a Python loop
over experts, full recomputation per step. It shares no code with vLLM or transformers' modeling
files, so agreement with the plugin is evidence, not tautology. Single sequence, causal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import safe_open

# Added to the renormalisation denominator, as the official code does, so an all-zero row of
# selected scores cannot divide by zero.
NORM_TOPK_EPS = 1e-20


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim, computed in float32, cast back to x's dtype."""
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return (normed * weight.float()).to(x.dtype)


def route(
    logits_fp32: torch.Tensor,
    expert_bias: torch.Tensor | None,
    n_group: int,
    topk_group: int,
    top_k: int,
    routed_scaling_factor: float,
    norm_topk_prob: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """AntAngelMed's router: sigmoid scores, bias-for-selection-only, group-limited top-k.

    logits_fp32: [T, E] router logits. Returns (weights [T, k] float32, ids [T, k] int64),
    ids sorted by descending biased score.
    """
    scores = torch.sigmoid(logits_fp32.float())  # [T, E]
    biased = scores if expert_bias is None else scores + expert_bias.float()  # [T, E]
    n_tokens, n_experts = scores.shape
    per_group = n_experts // n_group
    # A group's strength is the sum of its two best (biased) experts.
    group_scores = biased.view(n_tokens, n_group, per_group).topk(2, dim=-1).values.sum(-1)  # [T, G]
    best_groups = group_scores.topk(topk_group, dim=-1).indices  # [T, topk_group]
    group_keep = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, best_groups, True)
    expert_keep = group_keep.repeat_interleave(per_group, dim=1)  # [T, E]
    masked = biased.masked_fill(~expert_keep, float("-inf"))
    ids = masked.topk(top_k, dim=-1).indices  # [T, k]
    weights = scores.gather(1, ids)  # the UNBIASED scores weight the experts
    if norm_topk_prob:
        weights = weights / (weights.sum(-1, keepdim=True) + NORM_TOPK_EPS)
    return weights * routed_scaling_factor, ids


def rope_inv_freq(rotary_dim: int, theta: float) -> torch.Tensor:
    return 1.0 / (theta ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim))


def apply_partial_neox_rope(
    x: torch.Tensor, positions: torch.Tensor, rotary_dim: int, theta: float
) -> torch.Tensor:
    """Rotate the first rotary_dim dims of each head (pairs i, i + rotary_dim/2); keep the rest.

    x: [T, heads, head_dim]; positions: [T].
    """
    freqs = positions.double()[:, None] * rope_inv_freq(rotary_dim, theta)[None, :]  # [T, rot/2]
    cos = freqs.cos().to(torch.float32)[:, None, :]  # [T, 1, rot/2]
    sin = freqs.sin().to(torch.float32)[:, None, :]
    half = rotary_dim // 2
    x32 = x.float()
    x1, x2 = x32[..., :half], x32[..., half:rotary_dim]
    rotated = torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, x32[..., rotary_dim:]], dim=-1)
    return rotated.to(x.dtype)


@dataclass
class KVCache:
    """Keys and values of the tokens seen so far, per layer (after QK-norm and RoPE), so that
    decoding can process one new token at a time; mathematically the same as recomputing."""

    keys: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> [T, Hkv, d]
    values: dict[int, torch.Tensor] = field(default_factory=dict)
    length: int = 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's k, v for `layer`; return all keys and values so far."""
        if layer in self.keys:
            k = torch.cat([self.keys[layer], k])
            v = torch.cat([self.values[layer], v])
        self.keys[layer], self.values[layer] = k, v
        return k, v


@dataclass
class ForwardOutput:
    """logits [T, V] (float32); layer_inputs[k] = residual stream entering layer k ([T, H]),
    with layer_inputs[num_layers] the stream before the final norm; expert_ids[k] = [T, top_k]
    experts chosen at MoE layer k; final_hidden = [T, H] after the final norm."""

    logits: torch.Tensor
    layer_inputs: list[torch.Tensor]
    expert_ids: dict[int, torch.Tensor] = field(default_factory=dict)
    final_hidden: torch.Tensor | None = None  # [T, H] after model.norm (what the MTP layer reads)


class ReferenceModel:
    """AntAngelMed forward over a dict of checkpoint tensors (names as in the checkpoint)."""

    def __init__(
        self, config: dict[str, Any], weights: dict[str, torch.Tensor], dtype: torch.dtype = torch.float32
    ) -> None:
        if config.get("rope_scaling"):
            raise NotImplementedError(
                f"the reference forward does not implement rope_scaling {config['rope_scaling']!r}"
            )
        if config.get("score_function", "sigmoid") != "sigmoid":
            raise NotImplementedError("the reference implements score_function 'sigmoid' only")
        self.config = config
        self.dtype = dtype
        # expert_bias stays float32 (the router runs in float32); the rest in the compute dtype.
        self.w = {
            name: t.float() if name.endswith("expert_bias") else t.to(dtype) for name, t in weights.items()
        }
        c = config
        self.num_layers: int = c["num_hidden_layers"]
        self.hidden: int = c["hidden_size"]
        self.n_heads: int = c["num_attention_heads"]
        self.n_kv: int = c["num_key_value_heads"]
        self.head_dim: int = c.get("head_dim") or self.hidden // self.n_heads
        self.rotary_dim: int = int(self.head_dim * c.get("partial_rotary_factor", 1.0))
        self.eps: float = c["rms_norm_eps"]
        self.first_dense: int = c.get("first_k_dense_replace", 0)
        self._check_weights()

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype = torch.float32) -> ReferenceModel:
        """Load config.json and (sharded) safetensors; block-FP8 weights are dequantized."""
        path = Path(path)
        config = json.loads((path / "config.json").read_text())
        return cls(config, load_safetensors(path), dtype)

    def _layer_names(self, idx: int) -> set[str]:
        c = self.config
        p = f"model.layers.{idx}"
        names = {f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight"}
        names |= {
            f"{p}.attention.{n}.weight"
            for n in ("query_key_value", "dense", "query_layernorm", "key_layernorm")
        }
        proj = ("gate_proj", "up_proj", "down_proj")
        if idx < self.first_dense:
            return names | {f"{p}.mlp.{n}.weight" for n in proj}
        names.add(f"{p}.mlp.gate.weight")
        if c.get("moe_router_enable_expert_bias", True):
            names.add(f"{p}.mlp.gate.expert_bias")
        names |= {f"{p}.mlp.experts.{e}.{n}.weight" for e in range(c["num_experts"]) for n in proj}
        if c.get("num_shared_experts", 0):
            names |= {f"{p}.mlp.shared_experts.{n}.weight" for n in proj}
        return names

    def expected_names(self) -> set[str]:
        """Tensor names of the main model (MTP layers excluded)."""
        names = {"model.word_embeddings.weight", "model.norm.weight", "lm_head.weight"}
        for idx in range(self.num_layers):
            names |= self._layer_names(idx)
        return names

    def expected_mtp_names(self) -> set[str]:
        names: set[str] = set()
        for k in range(int(self.config.get("num_nextn_predict_layers") or 0)):
            idx = self.num_layers + k
            p = f"model.layers.{idx}"
            names |= {f"{p}.{n}.weight" for n in ("enorm", "hnorm", "eh_proj", "final_layernorm")}
            names |= self._layer_names(idx)
        return names

    def _check_weights(self) -> None:
        # MTP tensors must be complete when the config announces MTP layers; a chat checkpoint
        # that ships MTP tensors without announcing them has them ignored (as vLLM does).
        announced = self.expected_mtp_names()
        have = set(self.w)
        if not announced:
            have = {n for n in have if not _is_mtp_name(n, self.num_layers)}
        expected = self.expected_names() | announced
        missing = expected - have
        unknown = have - expected
        if missing or unknown:
            raise ValueError(
                f"checkpoint mismatch: missing {sorted(missing)[:5]}, unknown {sorted(unknown)[:5]}"
            )

    # ---- blocks ----------------------------------------------------------------------------
    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ self.w[name].T

    def _swiglu(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        gate = self._linear(x, f"{prefix}.gate_proj.weight")
        up = self._linear(x, f"{prefix}.up_proj.weight")
        return self._linear(F.silu(gate) * up, f"{prefix}.down_proj.weight")

    def attention(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        prefix: str,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> torch.Tensor:
        """x: [T, H] (already input-normed) at absolute `positions` -> [T, H]. With a cache,
        earlier tokens' keys/values come from it and this step's are appended."""
        n_tok, d = x.shape[0], self.head_dim
        qkv = self._linear(x, f"{prefix}.query_key_value.weight")  # [T, (Hq + 2 Hkv) d]
        q, k, v = qkv.split([self.n_heads * d, self.n_kv * d, self.n_kv * d], dim=-1)
        q = q.reshape(n_tok, self.n_heads, d)
        k = k.reshape(n_tok, self.n_kv, d)
        v = v.reshape(n_tok, self.n_kv, d)
        # QK-norm per head over the full head_dim, BEFORE rotary.
        q = rms_norm(q, self.w[f"{prefix}.query_layernorm.weight"], self.eps)
        k = rms_norm(k, self.w[f"{prefix}.key_layernorm.weight"], self.eps)
        theta = float(self.config["rope_theta"])
        q = apply_partial_neox_rope(q, positions, self.rotary_dim, theta)
        k = apply_partial_neox_rope(k, positions, self.rotary_dim, theta)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        # GQA: query head h reads kv head h // (Hq / Hkv).
        rep = self.n_heads // self.n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q.float(), k.float()) / math.sqrt(d)  # [Hq, T, Tk]
        # Keys sit at positions 0.. of the cache, else at the queries' own positions.
        key_pos = torch.arange(k.shape[0]) if cache is not None else positions
        causal = key_pos[None, :] <= positions[:, None]  # [T, Tk]
        scores = scores.masked_fill(~causal, float("-inf"))
        probs = scores.softmax(-1)
        out = torch.einsum("hqk,khd->qhd", probs, v.float()).to(x.dtype)  # [T, Hq, d]
        return self._linear(out.reshape(n_tok, self.n_heads * d), f"{prefix}.dense.weight")

    def router(self, x: torch.Tensor, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        logits = x.float() @ self.w[f"{prefix}.gate.weight"].float().T  # [T, E], float32 router
        return route(
            logits,
            self.w.get(f"{prefix}.gate.expert_bias"),
            n_group=c.get("n_group") or 1,
            topk_group=c.get("topk_group") or 1,
            top_k=c["num_experts_per_tok"],
            routed_scaling_factor=c.get("routed_scaling_factor", 1.0),
            norm_topk_prob=c.get("norm_topk_prob", True),
        )

    def moe(self, x: torch.Tensor, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """x: [T, H] (post-attention-normed) -> ([T, H], chosen ids [T, k])."""
        weights, ids = self.router(x, prefix)
        out = torch.zeros_like(x, dtype=torch.float32)
        for expert in ids.unique().tolist():
            tok, slot = (ids == expert).nonzero(as_tuple=True)
            y = self._swiglu(x[tok], f"{prefix}.experts.{expert}")
            out.index_add_(0, tok, y.float() * weights[tok, slot, None])
        if self.config.get("num_shared_experts", 0):
            out += self._swiglu(x, f"{prefix}.shared_experts").float()  # not scaled
        return out.to(x.dtype), ids

    def decoder_layer(
        self, h: torch.Tensor, positions: torch.Tensor, idx: int, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        p = f"model.layers.{idx}"
        x = rms_norm(h, self.w[f"{p}.input_layernorm.weight"], self.eps)
        h = h + self.attention(x, positions, f"{p}.attention", cache, idx)
        x = rms_norm(h, self.w[f"{p}.post_attention_layernorm.weight"], self.eps)
        if idx < self.first_dense:
            return h + self._swiglu(x, f"{p}.mlp"), None
        y, ids = self.moe(x, f"{p}.mlp")
        return h + y, ids

    # ---- public API ---------------------------------------------------------------------
    @torch.no_grad()
    def forward_with_states(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> ForwardOutput:
        """Forward of one sequence: logits, residual stream per layer, routing.

        With a cache, input_ids continue the tokens already in it (outputs cover the new
        tokens only) and the cache is extended.
        """
        input_ids = torch.as_tensor(input_ids, dtype=torch.long).reshape(-1)
        start = cache.length if cache is not None else 0
        positions = torch.arange(start, start + input_ids.numel())
        h = self.w["model.word_embeddings.weight"][input_ids]  # [T, H]
        layer_inputs: list[torch.Tensor] = []
        expert_ids: dict[int, torch.Tensor] = {}
        for idx in range(self.num_layers):
            layer_inputs.append(h.float().clone())
            h, ids = self.decoder_layer(h, positions, idx, cache)
            if ids is not None:
                expert_ids[idx] = ids
        layer_inputs.append(h.float().clone())
        if cache is not None:
            cache.length += input_ids.numel()
        h = rms_norm(h, self.w["model.norm.weight"], self.eps)
        logits = self._linear(h, "lm_head.weight").float()  # [T, V]
        return ForwardOutput(logits, layer_inputs, expert_ids, h.float())

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits [T, V] (float32) for one causal sequence."""
        return self.forward_with_states(input_ids).logits

    __call__ = forward

    def residual_stream(self, input_ids: torch.Tensor) -> list[torch.Tensor]:
        """[T, H] float32 per layer k: the stream entering layer k (vLLM's EAGLE3 aux id k)."""
        return self.forward_with_states(input_ids).layer_inputs[: self.num_layers]

    @property
    def num_mtp_layers(self) -> int:
        return int(self.config.get("num_nextn_predict_layers") or 0)

    @torch.no_grad()
    def mtp_forward(
        self,
        next_ids: torch.Tensor,
        prev_hidden: torch.Tensor,
        positions: torch.Tensor | None = None,
        mtp_index: int = 0,
    ) -> torch.Tensor:
        """Logits [T, V] of MTP layer `mtp_index` (DeepSeek-V3 style, as the notes describe).

        next_ids[t]: the token after position t; prev_hidden[t]: the main model's final-normed
        hidden state at position t (ForwardOutput.final_hidden), so row t predicts token t + 2.
            h = eh_proj([enorm(embed(next_ids)) | hnorm(prev_hidden)])
            h = decoder_layer(h)            # attention over the MTP sequence, MoE MLP
            logits = lm_head(final_layernorm(h))   # embedding and lm_head shared with the model
        """
        if mtp_index >= self.num_mtp_layers:
            raise ValueError(f"checkpoint has {self.num_mtp_layers} MTP layers, not {mtp_index + 1}")
        idx = self.num_layers + mtp_index
        p = f"model.layers.{idx}"
        next_ids = torch.as_tensor(next_ids, dtype=torch.long).reshape(-1)
        if positions is None:
            positions = torch.arange(next_ids.numel())
        emb = rms_norm(
            self.w["model.word_embeddings.weight"][next_ids], self.w[f"{p}.enorm.weight"], self.eps
        )
        hid = rms_norm(prev_hidden.to(self.dtype), self.w[f"{p}.hnorm.weight"], self.eps)
        h = self._linear(torch.cat([emb, hid], dim=-1), f"{p}.eh_proj.weight")  # [T, H]
        h, _ = self.decoder_layer(h, positions, idx)
        h = rms_norm(h, self.w[f"{p}.final_layernorm.weight"], self.eps)
        return self._linear(h, "lm_head.weight").float()

    @torch.no_grad()
    def greedy_generate(
        self,
        input_ids: list[int] | torch.Tensor,
        n: int,
        stop_ids: set[int] | None = None,
        use_cache: bool = True,
    ) -> list[int]:
        """Greedy-decode n new tokens; stops early at stop_ids. use_cache=False recomputes the
        whole sequence every step (the plainest form, for cross-checking the cache)."""
        ids = torch.as_tensor(input_ids, dtype=torch.long).reshape(-1).tolist()
        cache = KVCache() if use_cache else None
        step_input = ids
        new: list[int] = []
        for _ in range(n):
            if cache is None:
                logits = self.forward(torch.tensor(ids))
            else:
                logits = self.forward_with_states(torch.tensor(step_input), cache).logits
            nxt = int(logits[-1].argmax())
            new.append(nxt)
            ids.append(nxt)
            step_input = [nxt]
            if stop_ids and nxt in stop_ids:
                break
        return new


def _is_mtp_name(name: str, num_layers: int) -> bool:
    parts = name.split(".")
    return len(parts) > 2 and parts[:2] == ["model", "layers"] and int(parts[2]) >= num_layers


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint dir (single file or HF index); block-FP8 is dequantized."""
    index = path / "model.safetensors.index.json"
    files = (
        sorted(set(json.loads(index.read_text())["weight_map"].values()))
        if index.exists()
        else ["model.safetensors"]
    )
    tensors: dict[str, torch.Tensor] = {}
    for fname in files:
        with safe_open(str(path / fname), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                tensors[name] = f.get_tensor(name)
    scales = [n for n in tensors if n.endswith(".weight_scale_inv")]
    if scales:
        from model_plugin.fp8 import BLOCK_SIZE, dequantize_block_fp8

        config = json.loads((path / "config.json").read_text())
        block = tuple(config.get("quantization_config", {}).get("weight_block_size", BLOCK_SIZE))
        for sname in scales:
            wname = sname.removesuffix("_scale_inv")
            tensors[wname] = dequantize_block_fp8(tensors[wname], tensors.pop(sname), block)
    return tensors
