"""MTP distillation (model_plugin.mtp.distill): the student computes what the reference MTP block
computes (which tests/model_plugin/mtp/test_model_in_vllm.py checks against vLLM), training makes
its first draft match the target's greedy token after next, and the written checkpoint differs
from the target only in the MTP layer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from model_plugin.checkpoints import CheckpointError, get_preset, write_checkpoint
from model_plugin.reference import KVCache, ReferenceModel, rms_norm

REPO = Path(__file__).resolve().parents[3]


def _mtp_preset():
    import dataclasses

    return dataclasses.replace(get_preset("tiny"), num_nextn_predict_layers=1)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(_mtp_preset(), tmp_path_factory.mktemp("mtp") / "target", seed=0, bigram=40.0)


@pytest.fixture(scope="module")
def distilled(target: Path):
    from model_plugin.mtp.distill import distill_mtp

    return distill_mtp(
        target,
        target.parent / "distilled",
        steps=80,
        gen_prompts=8,
        gen_tokens=24,
        random_sequences=64,
        unroll=2,
        batch=16,
    )


def _mtp_step_with_cache(
    ref: ReferenceModel, token: int | list[int], hidden: torch.Tensor, start: int, cache: KVCache
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference MTP block over new rows at positions start.., its KV cache extended (as
    vLLM's draft KV cache is between speculative steps): (logits, final-normed hidden)."""
    n = ref.num_layers
    p = f"model.layers.{n}"
    ids = torch.tensor(token).reshape(-1)
    emb = rms_norm(ref.w["model.word_embeddings.weight"][ids], ref.w[f"{p}.enorm.weight"], ref.eps)
    hid = rms_norm(hidden, ref.w[f"{p}.hnorm.weight"], ref.eps)
    h = torch.cat([emb, hid], -1) @ ref.w[f"{p}.eh_proj.weight"].T
    h, _ = ref.decoder_layer(h, torch.arange(start, start + len(ids)), n, cache)
    cache.length += len(ids)
    h = rms_norm(h, ref.w[f"{p}.final_layernorm.weight"], ref.eps)
    return h @ ref.w["lm_head.weight"].T, h


def test_student_is_the_reference_mtp_block_unrolled_like_vllm(target: Path) -> None:
    """Step 1 equals the reference's mtp_forward (target final hidden + next token); steps 2..3
    equal drafting row by row: one new query reading the previous step's output, attending to
    the prefix's step-1 keys and its own earlier steps'."""
    from model_plugin.checkpoints.eagle3_distill import collate, teacher_samples
    from model_plugin.mtp.distill import MTPStudent, trainable_names

    ref = ReferenceModel.from_pretrained(target)
    student = MTPStudent(ref, trainable_names(ref))
    seq = [5, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160]
    sample = teacher_samples(ref, lambda out: out.final_hidden, [seq], 0)[0]
    with torch.no_grad():
        batched = student(sample.tokens, sample.aux, 3)
        expected = ref.mtp_forward(sample.tokens[1:], sample.aux[:-1])
        assert torch.allclose(batched[0], expected, atol=1e-4)
        short = teacher_samples(ref, lambda out: out.final_hidden, [[5, 61, 71]], 0)[0]
        tokens, hidden, _ = collate([short, sample], 3)
        padded = student(tokens, hidden, 3)
        for step in range(3):
            assert torch.allclose(padded[step][1], batched[step], atol=1e-4)
        for i in (0, 4, 7):
            cache = KVCache()
            logits, out = _mtp_step_with_cache(ref, seq[1 : i + 2], sample.aux[: i + 1], 0, cache)
            assert torch.allclose(logits[i], batched[0][i], atol=1e-4)
            out = out[i : i + 1]
            for step in (2, 3):
                logits, out = _mtp_step_with_cache(ref, seq[i + step], out, i + step - 1, cache)
                assert torch.allclose(logits[0], batched[step - 1][i], atol=1e-4), (i, step)


def test_distillation_makes_the_mtp_predict_the_token_after_next(target: Path, distilled) -> None:
    assert distilled.acceptance_before < 0.05
    assert distilled.acceptance_after > 0.4
    assert distilled.loss_after < distilled.loss_before / 2
    # Trained with a two-step unroll: the second draft adds accepted tokens.
    assert distilled.accepted_per_proposal[1] > distilled.accepted_per_proposal[0] + 0.05


def test_distilled_checkpoint_differs_only_in_the_mtp_layer(target: Path, distilled) -> None:
    before, after = load_file(target / "model.safetensors"), load_file(distilled.path / "model.safetensors")
    assert {n: (t.shape, t.dtype) for n, t in before.items()} == {
        n: (t.shape, t.dtype) for n, t in after.items()
    }
    prefix = f"model.layers.{json.loads((target / 'config.json').read_text())['num_hidden_layers']}."
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    mtp = {n for n in before if n.startswith(prefix)}
    assert changed == mtp - {f"{prefix}mlp.gate.expert_bias"}
    assert {
        f"{prefix}{n}.weight"
        for n in (
            "enorm",
            "hnorm",
            "eh_proj",
            "final_layernorm",
            "attention.query_key_value",
            "mlp.gate",
            "mlp.experts.0.down_proj",
            "mlp.shared_experts.up_proj",
        )
    } <= changed
    for fname in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (target / fname).read_bytes() == (distilled.path / fname).read_bytes()
    record = json.loads((distilled.path / "generator.json").read_text())
    assert record["bigram"] == 40.0 and record["mtp_distill"]["steps"] == 80


def test_written_mtp_layer_predicts_the_target_in_the_reference(target: Path, distilled) -> None:
    """The stored (BF16) weights, read back by the reference, still give the trained MTP: its
    first draft matches the target's greedy token after next on fresh greedy continuations
    (the untrained layer's practically never does)."""
    from tokenizers import Tokenizer

    from model_plugin.checkpoints.eagle3_distill import CHAT_PROMPT

    tok = Tokenizer.from_file(str(target / "tokenizer.json"))
    untrained, trained = (
        ReferenceModel.from_pretrained(target),
        ReferenceModel.from_pretrained(distilled.path),
    )
    # Same main model in both: one greedy continuation per prompt serves both MTP layers.
    runs = []
    for text in ("头痛三天了怎么办", "What should I eat with diabetes?"):
        prompt = tok.encode(CHAT_PROMPT.format(text)).ids
        seq = torch.tensor(prompt + untrained.greedy_generate(prompt, 32))
        runs.append((len(prompt), seq, untrained.forward_with_states(seq).final_hidden))

    def hit_rate(ref: ReferenceModel) -> float:
        hits = total = 0
        for n_prompt, seq, hidden in runs:
            draft = ref.mtp_forward(seq[1:], hidden[:-1]).argmax(-1)  # row t: token t + 2
            rows = torch.arange(n_prompt - 1, len(seq) - 2)
            hits += int((draft[rows] == seq[rows + 2]).sum())
            total += len(rows)
        return hits / total

    before, after = hit_rate(untrained), hit_rate(trained)
    assert before < 0.05 and after > 0.35, (before, after)


def test_refuses_targets_it_cannot_distil() -> None:
    from model_plugin.mtp.distill import mtp_layer_index

    base = {"num_hidden_layers": 3}
    assert mtp_layer_index(base | {"num_nextn_predict_layers": 1}) == 3
    with pytest.raises(CheckpointError, match="no MTP layer"):
        mtp_layer_index(base)
    with pytest.raises(CheckpointError, match="only one"):
        mtp_layer_index(base | {"num_nextn_predict_layers": 2})
    with pytest.raises(CheckpointError, match="quantized"):
        mtp_layer_index(
            base | {"num_nextn_predict_layers": 1, "quantization_config": {"quant_method": "fp8"}}
        )


def test_cli_refuses_bad_distill_mtp_arguments_in_one_line_writing_nothing(
    target: Path, tmp_path: Path
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "model_plugin.checkpoints", *args],
            cwd=REPO,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )

    plain = write_checkpoint(get_preset("tiny"), tmp_path / "plain")
    for args, message in [
        (("--target", str(target)), "--distill-steps"),
        (("--distill-steps", "2"), "--target"),
        (("--target", str(tmp_path / "nope"), "--distill-steps", "2"), "no config.json"),
        (("--target", str(plain), "--distill-steps", "2"), "no MTP layer"),
        (("--target", str(target), "--distill-steps", "2", "--eagle3-draft"), "exclusive"),
        (("--target", str(target), "--distill-steps", "2", "--bigram", "3"), "--bigram does not apply"),
        (
            ("--target", str(target), "--distill-steps", "2", "--aux-layers", "1"),
            "--aux-layers does not apply",
        ),
    ]:
        res = cli("--distill-mtp", "--out", str(tmp_path / "out"), *args)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, (
            args,
            res.stderr,
        )
    assert not (tmp_path / "out").exists()


def test_cli_passes_its_options_to_the_distiller(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from model_plugin.checkpoints import __main__ as cli
    from model_plugin.mtp import distill as mtp_distill

    calls = []

    def fake(target, out, **kwargs):
        calls.append((target, out, kwargs))
        return mtp_distill.MTPDistillResult(out, 0.0, 0.5, 9.0, 1.0, 10, [0.5])

    monkeypatch.setattr(mtp_distill, "distill_mtp", fake)
    assert (
        cli.main(
            [
                "--distill-mtp",
                "--target",
                str(tmp_path / "t"),
                "--out",
                str(tmp_path / "o"),
                "--distill-steps",
                "7",
                "--seed",
                "3",
                "--distill-gen-tokens",
                "64",
            ]
        )
        == 0
    )
    [(target, out, kwargs)] = calls
    assert (target, out) == (tmp_path / "t", tmp_path / "o")
    assert kwargs["steps"] == 7 and kwargs["seed"] == 3 and kwargs["gen_tokens"] == 64
    assert "gen_prompts" not in kwargs and "unroll" not in kwargs  # unset: the distiller's defaults
