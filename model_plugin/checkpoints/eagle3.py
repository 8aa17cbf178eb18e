"""A one-layer EAGLE3 draft for a generated (or any BailingMoeV2) target checkpoint.

Written in the layout vLLM's ``LlamaForCausalLMEagle3`` loads (the format of the published
EAGLE3 heads): ``fc`` fuses the target's aux hidden states (residual stream at the input of the
layers in ``eagle_aux_hidden_state_layer_ids``), ``midlayer`` is a Llama decoder layer whose
attention reads [embedding | hidden] (2 x hidden), and ``lm_head`` scores a trimmed draft
vocabulary mapped back to target ids by ``d2t`` (target_id = draft_id + d2t[draft_id]).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tokenizers import Tokenizer

from .tokenizer import SPECIAL_TOKENS, corpus_lines
from .weights import NORM_NOISE
from .writer import CheckpointError, atomic_dir, single_thread, write_json

DEFAULT_DRAFT_VOCAB = 1024
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# Role markers of the chat template: a draft must be able to propose them.
CHAT_PIECES = ("<role>SYSTEM</role>", "<role>HUMAN</role>", "<role>ASSISTANT</role>")


def default_aux_layer_ids(num_layers: int) -> list[int]:
    """vLLM's default (2, N//2, N-3), de-duplicated and kept inside [0, N).

    Small targets (N < 5) would get repeated or negative ids; those fall back to the first,
    middle and last layer inputs.
    """
    ids = sorted({2, num_layers // 2, num_layers - 3})
    if len(ids) == 3 and all(0 <= i < num_layers for i in ids):
        return ids
    return sorted({0, num_layers // 2, num_layers - 1})


def select_draft_vocab(
    tok: Tokenizer,
    size: int,
    texts: Iterable[str] | None = None,
    token_counts: Mapping[int, int] | None = None,
) -> list[int]:
    """Target ids of the draft vocabulary, ascending: special and chat-role tokens first, then
    the most frequent tokens (token_counts, else counted over `texts`, else over the embedded
    corpus), ties by lower id."""
    required: list[int] = []
    for token in SPECIAL_TOKENS:
        idx = tok.token_to_id(token)
        if idx is not None:
            required.append(idx)
    for piece in CHAT_PIECES:
        required += tok.encode(piece).ids
    counts: Counter[int] = Counter(token_counts or {})
    if token_counts is None:
        for line in corpus_lines() if texts is None else texts:
            counts.update(tok.encode(line).ids)
    chosen = list(dict.fromkeys(required))
    for idx, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(chosen) >= size:
            break
        if idx not in chosen:
            chosen.append(idx)
    # The corpus may not cover `size` distinct tokens: fill with the lowest unused ids (bytes).
    for idx in range(tok.get_vocab_size()):
        if len(chosen) >= size:
            break
        if idx not in set(chosen):
            chosen.append(idx)
    return sorted(chosen[:size])


def draft_config(
    target_cfg: dict[str, Any], draft_vocab_size: int, aux_layer_ids: list[int]
) -> dict[str, Any]:
    """config.json of the draft (a LlamaConfig vLLM reads as LlamaForCausalLMEagle3)."""
    h = target_cfg["hidden_size"]
    eagle = {"eagle_aux_hidden_state_layer_ids": aux_layer_ids, "use_aux_hidden_state": True}
    return {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": h,
        "target_hidden_size": h,
        "intermediate_size": target_cfg["intermediate_size"],
        "num_hidden_layers": 1,
        "num_attention_heads": target_cfg["num_attention_heads"],
        "num_key_value_heads": target_cfg["num_key_value_heads"],
        "head_dim": target_cfg["head_dim"],
        "hidden_act": "silu",
        "rms_norm_eps": target_cfg["rms_norm_eps"],
        "max_position_embeddings": target_cfg["max_position_embeddings"],
        "rope_theta": target_cfg["rope_theta"],
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "vocab_size": target_cfg["vocab_size"],
        "draft_vocab_size": draft_vocab_size,
        "bos_token_id": target_cfg["bos_token_id"],
        "eos_token_id": target_cfg["eos_token_id"],
        "pad_token_id": target_cfg.get("pad_token_id"),
        "torch_dtype": "bfloat16",
        # vLLM reads the ids top-level (model runner) and under eagle_config (draft model).
        "eagle_aux_hidden_state_layer_ids": aux_layer_ids,
        "eagle_config": eagle,
        "transformers_version": "4.52.3",
    }


def draft_shapes(cfg: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every float tensor of the draft and its shape (d2t / t2d come on top)."""
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    q = cfg["num_attention_heads"] * cfg["head_dim"]
    kv = cfg["num_key_value_heads"] * cfg["head_dim"]
    n_aux = len(cfg["eagle_config"]["eagle_aux_hidden_state_layer_ids"])
    return {
        "embed_tokens.weight": (cfg["vocab_size"], h),
        "fc.weight": (h, n_aux * cfg["target_hidden_size"]),
        "midlayer.hidden_norm.weight": (h,),
        "midlayer.input_layernorm.weight": (h,),
        "midlayer.self_attn.q_proj.weight": (q, 2 * h),  # reads [embedding | hidden]
        "midlayer.self_attn.k_proj.weight": (kv, 2 * h),
        "midlayer.self_attn.v_proj.weight": (kv, 2 * h),
        "midlayer.self_attn.o_proj.weight": (h, q),
        "midlayer.post_attention_layernorm.weight": (h,),
        "midlayer.mlp.gate_proj.weight": (inter, h),
        "midlayer.mlp.up_proj.weight": (inter, h),
        "midlayer.mlp.down_proj.weight": (h, inter),
        "norm.weight": (h,),
        "lm_head.weight": (cfg["draft_vocab_size"], h),
    }


def vocab_maps(draft_ids: list[int], target_vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(d2t int64 [draft]: target_id - draft_id, t2d bool [target]: in the draft vocab)."""
    ids = torch.tensor(draft_ids, dtype=torch.int64)
    d2t = ids - torch.arange(len(draft_ids), dtype=torch.int64)
    t2d = torch.zeros(target_vocab, dtype=torch.bool)
    t2d[ids] = True
    return d2t, t2d


def _read_target_tensor(target: Path, name: str) -> torch.Tensor:
    index = target / "model.safetensors.index.json"
    fname = json.loads(index.read_text())["weight_map"][name] if index.exists() else "model.safetensors"
    with safe_open(str(target / fname), framework="pt") as f:
        return f.get_tensor(name)


def _random_tensors(cfg: dict[str, Any], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, shape in draft_shapes(cfg).items():
        noise = torch.randn(shape, generator=gen)
        if len(shape) == 1:
            out[name] = 1.0 + NORM_NOISE * noise
        else:
            out[name] = noise / math.sqrt(shape[1])  # activations stay O(1)
    return out


def build_draft_tensors(
    target: Path, cfg: dict[str, Any], draft_ids: list[int], seed: int
) -> dict[str, torch.Tensor]:
    """Random draft weights, except embeddings and lm_head rows taken from the target, so an
    untrained draft already speaks the target's token space (a better start for distillation)."""
    with single_thread():
        tensors = _random_tensors(cfg, seed)
    tensors["embed_tokens.weight"] = _read_target_tensor(target, "model.word_embeddings.weight")
    lm_head = _read_target_tensor(target, "lm_head.weight")
    tensors["lm_head.weight"] = lm_head[torch.tensor(draft_ids)].clone()
    return tensors


def check_draft_tensors(cfg: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse a tensor set whose names or shapes do not match the draft config."""
    shapes = draft_shapes(cfg)
    missing = set(shapes) - set(tensors)
    unknown = set(tensors) - set(shapes)
    if missing or unknown:
        raise CheckpointError(f"draft tensors: missing {sorted(missing)}, unknown {sorted(unknown)}")
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(
                f"draft tensor {name} has shape {tuple(tensors[name].shape)}, expected {shape}"
            )


TARGET_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "rms_norm_eps",
    "rope_theta",
)


def load_target(target: Path) -> tuple[dict[str, Any], Tokenizer]:
    """The target's config and tokenizer, or one clear CheckpointError."""
    for fname in ("config.json", "tokenizer.json"):
        if not (target / fname).is_file():
            raise CheckpointError(f"--target {str(target)!r} has no {fname}: not a checkpoint dir")
    try:
        cfg = json.loads((target / "config.json").read_text())
    except ValueError as exc:
        raise CheckpointError(f"{target / 'config.json'} is not valid JSON ({exc})") from None
    missing = [k for k in TARGET_KEYS if k not in cfg]
    if missing:
        raise CheckpointError(f"target config.json lacks {missing}")
    return cfg, Tokenizer.from_file(str(target / "tokenizer.json"))


@dataclass(frozen=True)
class DraftPlan:
    """What a draft for one target looks like before any weights exist."""

    target: Path
    target_config: dict[str, Any]
    config: dict[str, Any]
    draft_ids: list[int]  # target ids of the draft vocabulary, ascending


def plan_eagle3_draft(
    target: Path,
    *,
    draft_vocab_size: int | None = None,
    aux_layer_ids: list[int] | None = None,
    texts: Iterable[str] | None = None,
    token_counts: Mapping[int, int] | None = None,
) -> DraftPlan:
    """Validate the target and choose the aux layers and the draft vocabulary."""
    target = Path(target)
    target_cfg, tok = load_target(target)
    n_layers = target_cfg["num_hidden_layers"]
    aux = sorted(aux_layer_ids) if aux_layer_ids else default_aux_layer_ids(n_layers)
    # Id k is the residual stream entering layer k; id N (the number of layers) is the stream
    # leaving the last layer, before the final norm: the target plugin collects it too, and it is
    # where an SGLang-trained draft's id N-1 lands after `eagle_aux_layer_id_shift: 1`.
    if any(not 0 <= i <= n_layers for i in aux) or len(set(aux)) != len(aux):
        raise CheckpointError(f"aux layer ids {aux} must be distinct and in [0, {n_layers}]")
    size = min(draft_vocab_size or DEFAULT_DRAFT_VOCAB, tok.get_vocab_size())
    if size >= target_cfg["vocab_size"]:
        raise CheckpointError("the draft vocabulary must be smaller than the target's")
    draft_ids = select_draft_vocab(tok, size, texts, token_counts)
    return DraftPlan(target, target_cfg, draft_config(target_cfg, len(draft_ids), aux), draft_ids)


def save_eagle3_draft(plan: DraftPlan, out: Path, tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write the draft dir atomically: config.json, model.safetensors (bf16 + d2t/t2d), tokenizer."""
    check_draft_tensors(plan.config, tensors)
    d2t, t2d = vocab_maps(plan.draft_ids, plan.target_config["vocab_size"])
    stored = {name: t.detach().to(torch.bfloat16).contiguous() for name, t in tensors.items()}
    stored |= {"d2t": d2t, "t2d": t2d}
    with atomic_dir(Path(out)) as tmp:
        write_json(tmp / "config.json", plan.config)
        save_file(stored, str(tmp / "model.safetensors"), {"format": "pt"})
        for fname in TOKENIZER_FILES:
            if (plan.target / fname).exists():
                shutil.copyfile(plan.target / fname, tmp / fname)
    return Path(out).resolve()


def write_eagle3_draft(
    target: Path,
    out: Path,
    *,
    seed: int = 0,
    draft_vocab_size: int | None = None,
    aux_layer_ids: list[int] | None = None,
    tensors: Mapping[str, torch.Tensor] | None = None,
    texts: Iterable[str] | None = None,
    token_counts: Mapping[int, int] | None = None,
) -> Path:
    """Write an EAGLE3 draft for the checkpoint at `target` into `out` (absent or empty).

    tensors: trained weights to store instead of the random initialisation (names and shapes
    as in draft_shapes); texts / token_counts: where the draft vocabulary's token frequencies
    come from (default: the embedded corpus).
    """
    plan = plan_eagle3_draft(
        target,
        draft_vocab_size=draft_vocab_size,
        aux_layer_ids=aux_layer_ids,
        texts=texts,
        token_counts=token_counts,
    )
    if tensors is None:
        tensors = build_draft_tensors(plan.target, plan.config, plan.draft_ids, seed)
    return save_eagle3_draft(plan, out, tensors)
