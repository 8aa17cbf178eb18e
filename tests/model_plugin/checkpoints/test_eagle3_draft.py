"""The generated EAGLE3 draft: the layout vLLM's LlamaForCausalLMEagle3 loads, a trimmed draft
vocabulary with consistent d2t/t2d maps, aux layer ids valid for the target."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from tokenizers import Tokenizer

from model_plugin.checkpoints import CheckpointError, get_preset, write_checkpoint
from model_plugin.checkpoints.eagle3 import default_aux_layer_ids, write_eagle3_draft
from model_plugin.checkpoints.tokenizer import corpus_lines


def load(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(get_preset("tiny"), tmp_path_factory.mktemp("e3") / "target", seed=2)


@pytest.fixture(scope="module")
def draft(target: Path) -> Path:
    return write_eagle3_draft(target, target.parent / "draft", seed=0, draft_vocab_size=512)


@pytest.fixture(scope="module")
def cfgs(target: Path, draft: Path) -> tuple[dict, dict]:
    return (json.loads((target / "config.json").read_text()), json.loads((draft / "config.json").read_text()))


def test_draft_config_is_a_one_layer_llama_eagle3_over_three_target_layers(cfgs: tuple[dict, dict]) -> None:
    t, d = cfgs
    assert d["architectures"] == ["LlamaForCausalLMEagle3"] and d["model_type"] == "llama"
    assert d["num_hidden_layers"] == 1
    assert d["hidden_size"] == d["target_hidden_size"] == t["hidden_size"]
    assert d["vocab_size"] == t["vocab_size"] and d["draft_vocab_size"] == 512 < t["vocab_size"]
    ids = d["eagle_config"]["eagle_aux_hidden_state_layer_ids"]
    assert d["eagle_aux_hidden_state_layer_ids"] == ids and d["eagle_config"]["use_aux_hidden_state"]
    assert len(ids) == len(set(ids)) == 3 and all(0 <= i < t["num_hidden_layers"] for i in ids)
    assert d["eos_token_id"] == t["eos_token_id"] and d["head_dim"] == t["head_dim"]


def test_config_loads_with_transformers_without_remote_code(draft: Path) -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.AutoConfig.from_pretrained(str(draft))
    assert type(cfg).__name__ == "LlamaConfig"
    assert cfg.draft_vocab_size == 512 and cfg.target_hidden_size == cfg.hidden_size


def test_tensor_layout_is_what_vllms_llama_eagle3_loads(cfgs: tuple[dict, dict], draft: Path) -> None:
    t, d = cfgs
    h, v, dv = t["hidden_size"], t["vocab_size"], d["draft_vocab_size"]
    q, kv = t["num_attention_heads"] * t["head_dim"], t["num_key_value_heads"] * t["head_dim"]
    inter = d["intermediate_size"]
    want = {
        "d2t": ((dv,), torch.int64),
        "t2d": ((v,), torch.bool),
        "embed_tokens.weight": ((v, h), torch.bfloat16),
        "fc.weight": ((h, 3 * h), torch.bfloat16),  # three aux hidden states -> hidden
        "midlayer.hidden_norm.weight": ((h,), torch.bfloat16),
        "midlayer.input_layernorm.weight": ((h,), torch.bfloat16),
        "midlayer.post_attention_layernorm.weight": ((h,), torch.bfloat16),
        "midlayer.self_attn.q_proj.weight": ((q, 2 * h), torch.bfloat16),
        "midlayer.self_attn.k_proj.weight": ((kv, 2 * h), torch.bfloat16),
        "midlayer.self_attn.v_proj.weight": ((kv, 2 * h), torch.bfloat16),
        "midlayer.self_attn.o_proj.weight": ((h, q), torch.bfloat16),
        "midlayer.mlp.gate_proj.weight": ((inter, h), torch.bfloat16),
        "midlayer.mlp.up_proj.weight": ((inter, h), torch.bfloat16),
        "midlayer.mlp.down_proj.weight": ((h, inter), torch.bfloat16),
        "norm.weight": ((h,), torch.bfloat16),
        "lm_head.weight": ((dv, h), torch.bfloat16),
    }
    got = load(draft)
    assert {k: (tuple(x.shape), x.dtype) for k, x in got.items()} == want


def test_trimmed_vocab_keeps_specials_and_frequent_tokens_with_consistent_maps(
    target: Path, cfgs: tuple[dict, dict], draft: Path
) -> None:
    t, d = cfgs
    w = load(draft)
    assert len(w["d2t"]) == d["draft_vocab_size"]
    d2t, t2d = w["d2t"], w["t2d"]
    target_ids = torch.arange(len(d2t)) + d2t  # vLLM: target = draft + d2t[draft]
    assert torch.all(target_ids[1:] > target_ids[:-1])  # distinct, ascending
    assert 0 <= int(target_ids.min()) and int(target_ids.max()) < t["vocab_size"]
    assert torch.equal(t2d.nonzero().flatten(), target_ids)
    tok = Tokenizer.from_file(str(target / "tokenizer.json"))
    chosen = set(target_ids.tolist())
    specials = ("<|startoftext|>", "<|endoftext|>", "<|role_end|>", "<role>", "</role>")
    required = {tok.token_to_id(s) for s in specials}
    assert {t["eos_token_id"], t["bos_token_id"], t["pad_token_id"]} <= required
    required |= set(tok.encode("<role>SYSTEM</role><role>HUMAN</role><role>ASSISTANT</role>").ids)
    assert required <= chosen
    # The rest are the corpus's most frequent tokens: none left out is more frequent than
    # any frequency-chosen one.
    counts = Counter(i for line in corpus_lines() for i in tok.encode(line).ids)
    picked = [counts[i] for i in chosen - required]
    dropped = [counts[i] for i in set(counts) - chosen]
    assert dropped and min(picked) >= max(dropped)
    # Embeddings are the target's; lm_head rows are the target's rows of the draft tokens.
    with safe_open(str(target / "model.safetensors"), framework="pt") as f:
        assert torch.equal(w["embed_tokens.weight"], f.get_tensor("model.word_embeddings.weight"))
        assert torch.equal(w["lm_head.weight"], f.get_tensor("lm_head.weight")[target_ids])


def test_same_seed_writes_a_byte_identical_draft(target: Path, draft: Path, tmp_path: Path) -> None:
    again = write_eagle3_draft(target, tmp_path / "again", seed=0, draft_vocab_size=512)
    assert (again / "model.safetensors").read_bytes() == (draft / "model.safetensors").read_bytes()


# vLLM's default (2, N//2, N-3) when valid; else first / middle / last layer inputs.
@pytest.mark.parametrize(
    ("layers", "ids"),
    [(32, [2, 16, 29]), (8, [2, 4, 5]), (6, [0, 3, 5]), (3, [0, 1, 2]), (2, [0, 1]), (4, [0, 2, 3])],
)
def test_default_aux_layer_ids_are_vllms_when_valid_else_first_middle_last(
    layers: int, ids: list[int]
) -> None:
    got = default_aux_layer_ids(layers)
    assert got == ids
    assert all(0 <= i < layers for i in got) and len(set(got)) == len(got)


def test_explicit_aux_ids_and_given_tensors_are_written_or_refused(
    target: Path, draft: Path, tmp_path: Path
) -> None:
    out = write_eagle3_draft(target, tmp_path / "two", aux_layer_ids=[2, 1], draft_vocab_size=512)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["eagle_config"]["eagle_aux_hidden_state_layer_ids"] == [1, 2]
    assert tuple(load(out)["fc.weight"].shape) == (128, 256)  # two aux states
    trained = {k: v for k, v in load(draft).items() if k not in ("d2t", "t2d")}
    trained["norm.weight"] = torch.full_like(trained["norm.weight"], 0.5)
    out = write_eagle3_draft(target, tmp_path / "trained", tensors=trained, draft_vocab_size=512)
    assert torch.all(load(out)["norm.weight"] == 0.5)
    trained["fc.weight"] = trained["fc.weight"][:, :10]
    with pytest.raises(CheckpointError, match="fc.weight"):
        write_eagle3_draft(target, tmp_path / "bad", tensors=trained, draft_vocab_size=512)
    # Id N (3 here) is the last layer's output, which the target serves; N+1 does not exist.
    last = write_eagle3_draft(target, tmp_path / "last", aux_layer_ids=[0, 3], draft_vocab_size=512)
    assert json.loads((last / "config.json").read_text())["eagle_aux_hidden_state_layer_ids"] == [0, 3]
    with pytest.raises(CheckpointError, match=r"\[0, 3\]"):
        write_eagle3_draft(target, tmp_path / "bad2", aux_layer_ids=[0, 4])
    with pytest.raises(CheckpointError, match="distinct"):
        write_eagle3_draft(target, tmp_path / "bad3", aux_layer_ids=[1, 1])
    assert not any((tmp_path / name).exists() for name in ("bad", "bad2", "bad3"))


def test_cli_writes_drafts_and_refuses_bad_targets_and_aux_layers_in_one_line(
    target: Path, tmp_path: Path
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "model_plugin.checkpoints", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )

    res = cli("--eagle3-draft", "--target", str(target), "--out", str(tmp_path / "d"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "d" / "config.json").read_text())["draft_vocab_size"] == 1024
    res = cli("--eagle3-draft", "--target", str(tmp_path / "nope"), "--out", str(tmp_path / "e"))
    assert res.returncode == 2 and "no config.json" in res.stderr and "Traceback" not in res.stderr
    res = cli("--eagle3-draft", "--out", str(tmp_path / "f"))
    assert res.returncode == 2 and "--target" in res.stderr
    res = cli("--eagle3-draft", "--target", str(target), "--out", str(tmp_path / "g"), "--aux-layers", "1,3")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "g" / "config.json").read_text())["eagle_aux_hidden_state_layer_ids"] == [
        1,
        3,
    ]
    for bad, message in (("1,x", "comma-separated integers"), ("1,4", "[0, 3]")):
        res = cli(
            "--eagle3-draft", "--target", str(target), "--out", str(tmp_path / "h"), "--aux-layers", bad
        )
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_cli_passes_teacher_options_to_the_distiller(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--distill-prompts / --distill-gen-tokens / --distill-unroll reach the EAGLE3 distiller (and
    only when given: unset keeps its defaults); without --distill-steps they are refused."""
    from model_plugin.checkpoints import __main__ as cli
    from model_plugin.checkpoints import eagle3_distill

    calls = []

    def fake(target, out, **kwargs):
        calls.append(kwargs)
        return eagle3_distill.DistillResult(out, 0.0, 0.9, 10, [0.9])

    monkeypatch.setattr(eagle3_distill, "distill_eagle3_draft", fake)
    base = [
        "--eagle3-draft",
        "--target",
        str(tmp_path / "t"),
        "--out",
        str(tmp_path / "o"),
        "--distill-steps",
        "5",
    ]
    assert (
        cli.main([*base, "--distill-prompts", "200", "--distill-gen-tokens", "80", "--distill-unroll", "4"])
        == 0
    )
    assert cli.main(base) == 0
    given, defaults = calls
    assert (given["gen_prompts"], given["gen_tokens"], given["unroll"], given["steps"]) == (200, 80, 4, 5)
    assert not {"gen_prompts", "gen_tokens", "unroll"} & defaults.keys()
    for bad, message in (
        ([*base, "--distill-unroll", "0"], "--distill-unroll must be >= 1"),
        (base[:5] + ["--distill-prompts", "9"], "--distill-prompts needs --distill-steps"),
    ):
        with pytest.raises(CheckpointError, match=message):
            cli.run(cli.build_parser().parse_args(bad))
    assert len(calls) == 2


def test_distilled_draft_has_real_acceptance(tmp_path: Path) -> None:
    """A few hundred CPU steps on the target's own aux states and greedy tokens give a draft
    whose first guess matches the target's next greedy token on held-out generations."""
    from model_plugin.checkpoints.eagle3_distill import distill_eagle3_draft

    target = write_checkpoint(get_preset("tiny"), tmp_path / "target", seed=0, bigram=40.0)
    res = distill_eagle3_draft(
        target,
        tmp_path / "draft",
        steps=150,
        gen_prompts=8,
        gen_tokens=24,
        random_sequences=128,
        unroll=2,
        batch=16,
    )
    assert res.acceptance_before < 0.05
    assert res.acceptance_after > 0.25
    # A second draft token adds accepted tokens (trained with the two-step unroll).
    assert res.accepted_per_proposal[1] > res.accepted_per_proposal[0] + 0.05
    cfg = json.loads((res.path / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLMEagle3"] and cfg["draft_vocab_size"] == 1024
    w = load(res.path)
    target_ids = torch.arange(len(w["d2t"])) + w["d2t"]
    assert torch.equal(w["t2d"].nonzero().flatten(), target_ids)
    # Trained: differs from the random initialisation of the same plan.
    random_draft = write_eagle3_draft(target, tmp_path / "random", draft_vocab_size=1024)
    assert not torch.equal(load(random_draft)["fc.weight"], w["fc.weight"])


def test_student_unroll_matches_incremental_drafting(target: Path) -> None:
    """The batched training-time unroll equals drafting row by row as vLLM does: step 1 over
    the verified prefix, then each later step as one new query attending to the prefix's
    step-1 keys and to the keys of its own earlier steps."""
    import math

    from model_plugin.checkpoints.eagle3 import build_draft_tensors, plan_eagle3_draft
    from model_plugin.checkpoints.eagle3_distill import Eagle3Student, teacher_samples
    from model_plugin.reference import ReferenceModel

    plan = plan_eagle3_draft(target, draft_vocab_size=256)
    tensors = build_draft_tensors(target, plan.config, plan.draft_ids, seed=1)
    student = Eagle3Student(plan, {k: v.float() for k, v in tensors.items()})
    ref = ReferenceModel.from_pretrained(target)
    sample = teacher_samples(
        ref,
        plan.config["eagle_aux_hidden_state_layer_ids"],
        [[5, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160]],
        0,
    )[0]
    with torch.no_grad():
        batched = student(sample.tokens, sample.aux, 3)
        # A padded batch gives the same rows (padding sits after the real tokens).
        from model_plugin.checkpoints.eagle3_distill import collate

        short = teacher_samples(ref, plan.config["eagle_aux_hidden_state_layer_ids"], [[5, 61, 71]], 0)[0]
        tokens, aux, _ = collate([short, sample], 3)
        padded = student(tokens, aux, 3)
        alone = student(short.tokens, short.aux, 3)
        for step in range(3):
            assert torch.allclose(padded[step][1], batched[step], atol=1e-4)
            valid = 2 - step  # rows whose step-(step+1) token exists in the 3-token sequence
            assert torch.allclose(padded[step][0, :valid], alone[step][:valid], atol=1e-4)
        for i in (0, 4, 7):
            # Step 1 over rows 0..i (causal: later rows cannot matter).
            tok1 = sample.tokens[1 : i + 2]
            hid1 = sample.aux[: i + 1] @ student.w("fc.weight").T
            q, k, v = student._qkv(tok1, hid1, torch.arange(i + 1))
            scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(student.head_dim)
            mask = torch.ones(i + 1, i + 1, dtype=torch.bool).tril()
            attn = torch.einsum("hqk,khd->qhd", scores.masked_fill(~mask, float("-inf")).softmax(-1), v)
            logits, prenorm = student._finish(hid1, attn)
            assert torch.allclose(logits[i], batched[0][i], atol=1e-4)
            keys, vals, hidden = [k], [v], prenorm[i : i + 1]
            for step in (2, 3):
                tok = sample.tokens[i + step : i + step + 1]
                q, k, v = student._qkv(tok, hidden, torch.tensor([i + step - 1]))
                keys.append(k)
                vals.append(v)
                allk = torch.cat([keys[0]] + keys[1:])  # prefix keys, then this row's steps
                allv = torch.cat([vals[0]] + vals[1:])
                p = (torch.einsum("qhd,khd->hqk", q, allk) / math.sqrt(student.head_dim)).softmax(-1)
                logits, hidden = student._finish(hidden, torch.einsum("hqk,khd->qhd", p, allv))
                assert torch.allclose(logits[0], batched[step - 1][i], atol=1e-4), (i, step)
