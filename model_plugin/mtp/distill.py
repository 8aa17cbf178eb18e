"""Distil a checkpoint's MTP layer from its own main model on CPU, so MTP acceptance is real.

The generator's MTP layer (``--mtp``) is random, so vLLM's method "mtp" never gets a draft
accepted. This trains it the way the EAGLE3 distiller trains its head (same teacher data: the
pure-PyTorch reference forward on chat-formatted corpus prompts, the target's own greedy
continuations and random sequences), but on the MTP block as vLLM runs it
(``model_plugin.mtp.model``; vLLM 0.32 feeds the target's *final-normed* hidden
state, the output of ``model.norm``, and the MTP block's own ``final_layernorm`` output on later
speculative steps):

    x      = eh_proj([enorm(embed(token_{t+1})) | hnorm(hidden_t)])        # [.., 2H] -> [.., H]
    x      = x + dense(attn(input_layernorm(x)))                            # QK-norm, partial RoPE
    x      = x + moe(post_attention_layernorm(x))                           # sigmoid router, experts
    hidden = final_layernorm(x);  logits = lm_head(hidden)                  # -> token t + 2

Every tensor of the block is trained (enorm, hnorm, eh_proj, the decoder layer's norms,
attention, router gate, routed and shared experts, final_layernorm) except the float32
``expert_bias`` (a load-balancing statistic, not a gradient-trained weight); the embedding and
lm_head are the target's, shared and frozen, as vLLM shares them. The MoE is computed by the
reference's own ``moe`` (a loop over the chosen experts), so the trained block keeps the
checkpoint's structure, names and shapes. The result is a copy of the target checkpoint in
which only ``model.layers.{N}.*`` (the MTP block) differs.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from model_plugin.checkpoints.eagle3 import load_target
from model_plugin.checkpoints.eagle3_distill import (
    Sample,
    acceptance,
    collate,
    teacher_data,
    train_student,
    unrolled_attention,
)
from model_plugin.checkpoints.writer import (
    CheckpointError,
    atomic_dir,
    check_output_dir,
    single_thread,
    write_json,
)
from model_plugin.reference import ReferenceModel, apply_partial_neox_rope, rms_norm

GENERATOR_RECORD = "generator.json"


@dataclass
class MTPDistillResult:
    path: Path
    acceptance_before: float  # first-token acceptance of the untrained MTP (held-out)
    acceptance_after: float
    loss_before: float  # held-out cross-entropy of the first MTP token (nats)
    loss_after: float
    train_positions: int
    accepted_per_proposal: list[float]  # index k-1: mean tokens accepted with k drafts


def mtp_layer_index(config: dict) -> int:
    """Checkpoint index of the (single) MTP block, or a CheckpointError saying why there is none."""
    n_mtp = int(config.get("num_nextn_predict_layers") or 0)
    if n_mtp == 0:
        raise CheckpointError(
            "the target has no MTP layer (num_nextn_predict_layers is 0 or absent); generate it with --mtp"
        )
    if n_mtp > 1:
        raise CheckpointError(
            f"the target has {n_mtp} MTP layers; only one is supported (vLLM 0.32 "
            "drafts every step with the first)"
        )
    if config.get("quantization_config"):
        raise CheckpointError(
            "the target is quantized (quantization_config); distil the BF16 checkpoint's MTP layer instead"
        )
    return int(config["num_hidden_layers"])


class MTPStudent(nn.Module):
    """A trainable float32 MTP block over the target's frozen reference, unrolled over the
    speculative steps the way vLLM drafts with it (shares the EAGLE3 student's unroll)."""

    def __init__(self, ref: ReferenceModel, names: list[str]) -> None:
        super().__init__()
        self.idx = ref.num_layers
        self.prefix = f"model.layers.{self.idx}"
        self.eps, self.theta = ref.eps, float(ref.config["rope_theta"])
        self.n_heads, self.n_kv, self.head_dim = ref.n_heads, ref.n_kv, ref.head_dim
        self.p = nn.ParameterDict(
            {name.replace(".", "__"): nn.Parameter(ref.w[name].float().clone()) for name in names}
        )
        # A view of the reference whose MTP weights are these parameters: its moe() (router,
        # experts, shared expert) then runs on them, differentiably, and the rest stays frozen.
        self.ref = copy.copy(ref)
        self.ref.w = dict(ref.w) | {name: self.p[name.replace(".", "__")] for name in names}

    def w(self, suffix: str) -> torch.Tensor:
        return self.ref.w[f"{self.prefix}.{suffix}"]

    def step(
        self,
        tokens: torch.Tensor,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        keys: list[tuple[torch.Tensor, torch.Tensor]],
        causal: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One draft step over [B, n] rows -> (logits [B, n, V], final-normed hidden [B, n, H]);
        appends this step's keys/values to `keys`."""
        d, (b, n) = self.head_dim, tokens.shape
        emb = rms_norm(self.ref.w["model.word_embeddings.weight"][tokens], self.w("enorm.weight"), self.eps)
        hid = rms_norm(hidden, self.w("hnorm.weight"), self.eps)
        x = torch.cat([emb, hid], dim=-1) @ self.w("eh_proj.weight").T  # embedding half first
        a = (
            rms_norm(x, self.w("input_layernorm.weight"), self.eps)
            @ self.w("attention.query_key_value.weight").T
        )
        q, k, v = a.split([self.n_heads * d, self.n_kv * d, self.n_kv * d], dim=-1)
        q = rms_norm(q.reshape(b, n, self.n_heads, d), self.w("attention.query_layernorm.weight"), self.eps)
        k = rms_norm(k.reshape(b, n, self.n_kv, d), self.w("attention.key_layernorm.weight"), self.eps)
        q = apply_partial_neox_rope(q, positions, self.ref.rotary_dim, self.theta)
        k = apply_partial_neox_rope(k, positions, self.ref.rotary_dim, self.theta)
        rep = self.n_heads // self.n_kv
        keys.append((k.repeat_interleave(rep, -2), v.reshape(b, n, self.n_kv, d).repeat_interleave(rep, -2)))
        attn = unrolled_attention(q, keys, causal).reshape(b, n, self.n_heads * d)
        x = x + attn @ self.w("attention.dense.weight").T
        m = rms_norm(x, self.w("post_attention_layernorm.weight"), self.eps)
        moe_out, _ = self.ref.moe(m.reshape(b * n, -1), f"{self.prefix}.mlp")
        x = x + moe_out.reshape(b, n, -1)
        hidden = rms_norm(x, self.w("final_layernorm.weight"), self.eps)
        return hidden @ self.ref.w["lm_head.weight"].T, hidden

    def forward(self, tokens: torch.Tensor, hidden: torch.Tensor, steps: int = 1) -> list[torch.Tensor]:
        """MTP logits [(B,) T-1, V] for speculative steps 1..steps.

        tokens [(B,) T]; hidden [(B,) T, H]: the target's final-normed hidden states. Row i is a
        proposal made after the target verified tokens[:i+1]: step 1 reads (tokens[i+1],
        hidden[i]) at position i, step k reads (tokens[i+k], step k-1's output at row i) at
        position i+k-1 and attends to the step-1 keys of rows <= i and its own earlier steps'.
        """
        single = tokens.dim() == 1
        if single:
            tokens, hidden = tokens[None], hidden[None]
        n = tokens.shape[1] - 1
        rows = torch.arange(n)
        causal = rows[None, :] <= rows[:, None]
        hidden = hidden[:, :n]
        keys: list[tuple[torch.Tensor, torch.Tensor]] = []
        logits = []
        for step in range(1, steps + 1):
            step_logits, hidden = self.step(
                tokens[:, (rows + step).clamp(max=n)], hidden, rows + step - 1, keys, causal
            )
            logits.append(step_logits[0] if single else step_logits)
        return logits

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name.replace("__", "."): p.detach().clone() for name, p in self.p.items()}


def trainable_names(ref: ReferenceModel) -> list[str]:
    """The MTP block's tensors the distiller trains: all but the expert bias."""
    return sorted(n for n in ref.expected_mtp_names() if not n.endswith("expert_bias"))


def heldout_loss(student: MTPStudent, samples: list[Sample]) -> float:
    """Mean cross-entropy of the first MTP token on the target's greedy token t + 2."""
    with torch.no_grad():
        tokens, hidden, labels = collate(samples, 1)
        logits = student(tokens, hidden, 1)[0]
        return F.cross_entropy(logits.flatten(0, 1), labels[0].flatten(), ignore_index=-1).item()


def save_mtp_checkpoint(target: Path, out: Path, tensors: dict[str, torch.Tensor], record: dict) -> Path:
    """Copy `target` to `out` with the MTP tensors replaced (each in its stored dtype); every other
    tensor and file byte-identical, `generator.json` gains the distillation record."""
    target = Path(target)
    config = json.loads((target / "config.json").read_text())
    prefix = f"model.layers.{mtp_layer_index(config)}."
    with atomic_dir(Path(out)) as tmp:
        written: set[str] = set()
        for src in sorted(target.iterdir()):
            if not src.is_file() or src.name.startswith("."):
                continue
            if src.suffix == ".safetensors":
                with safe_open(str(src), framework="pt") as f:
                    names = list(f.keys())
                    if any(name in tensors for name in names):
                        stored = {}
                        for name in names:
                            t = f.get_tensor(name)
                            if name in tensors:
                                if tuple(tensors[name].shape) != tuple(t.shape):
                                    raise CheckpointError(
                                        f"trained {name} has shape "
                                        f"{tuple(tensors[name].shape)}, stored {tuple(t.shape)}"
                                    )
                                t = tensors[name].to(t.dtype).contiguous()
                                written.add(name)
                            stored[name] = t
                        save_file(stored, str(tmp / src.name), {"format": "pt"})
                        continue
            shutil.copyfile(src, tmp / src.name)
        missing = set(tensors) - written
        if missing or not all(name.startswith(prefix) for name in tensors):
            raise CheckpointError(f"trained tensors not in the target's MTP layer: {sorted(missing)[:5]}")
        gen_path = target / GENERATOR_RECORD
        gen = json.loads(gen_path.read_text()) if gen_path.exists() else {}
        write_json(tmp / GENERATOR_RECORD, gen | {"mtp_distill": record})
    return Path(out).resolve()


def distill_mtp(
    target: Path,
    out: Path,
    *,
    steps: int = 400,
    seed: int = 0,
    gen_prompts: int = 48,
    gen_tokens: int = 48,
    random_sequences: int = 512,
    batch: int = 8,
    lr: float = 3e-3,
    unroll: int = 3,
    log: Callable[[str], None] | None = None,
) -> MTPDistillResult:
    """Train the MTP layer of `target` on its own main model; write the checkpoint to `out`."""
    log = log or (lambda _msg: None)
    target = Path(target)
    check_output_dir(Path(out).resolve())  # fail before minutes of training, not after
    config, tok = load_target(target)
    mtp_layer_index(config)
    if steps < 1:
        raise CheckpointError("MTP distillation needs at least one step")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    with single_thread():
        try:
            ref = ReferenceModel.from_pretrained(target, dtype=torch.float32)
        except (ValueError, OSError, KeyError) as exc:
            raise CheckpointError(f"cannot read the target checkpoint: {exc}") from None
        log(
            f"teacher: corpus prompts, {gen_prompts} continued for {gen_tokens} tokens, "
            f"{random_sequences} random sequences"
        )
        train, evals = teacher_data(
            ref,
            tok,
            lambda fwd: fwd.final_hidden,
            gen_prompts=gen_prompts,
            gen_tokens=gen_tokens,
            random_sequences=random_sequences,
            rng=rng,
            seed=seed,
        )
        student = MTPStudent(ref, trainable_names(ref))
        vocab = torch.arange(ref.config["vocab_size"])  # full vocabulary: draft id = target id
        before, loss_before = acceptance(student, evals, vocab), heldout_loss(student, evals)
        train_student(student, train, vocab, steps=steps, batch=batch, lr=lr, rng=rng, unroll=unroll, log=log)
        after, loss_after = acceptance(student, evals, vocab), heldout_loss(student, evals)
        accepted = [acceptance(student, evals, vocab, k) for k in range(1, unroll + 1)]
    log(
        f"first-token acceptance on held-out target generations: {before:.3f} -> {after:.3f} "
        f"(held-out loss {loss_before:.3f} -> {loss_after:.3f})"
    )
    log(
        "mean accepted tokens per proposal of k drafts: "
        + ", ".join(f"k={k}: {a:.2f}" for k, a in enumerate(accepted, start=1))
    )
    record = {
        "steps": steps,
        "seed": seed,
        "unroll": unroll,
        "acceptance_before": before,
        "acceptance_after": after,
        "accepted_per_proposal": accepted,
    }
    path = save_mtp_checkpoint(target, out, student.tensors(), record)
    return MTPDistillResult(
        path, before, after, loss_before, loss_after, sum(len(s.tokens) - 1 for s in train), accepted
    )
