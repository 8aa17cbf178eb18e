"""Generated checkpoints: completeness against AntAngelMed's real config and tensor names,
values that exercise routing/norm bugs, determinism, atomic writes, CLI errors, tokenizer."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from model_plugin.checkpoints import get_preset, tensor_specs, write_checkpoint
from model_plugin.checkpoints import writer as writer_mod
from model_plugin.checkpoints.presets import build_config

REPO = Path(__file__).resolve().parents[3]

# AntAngelMed's published config.json keys (architecture notes), written out here rather than
# imported so a key dropped from the generator's own list is still caught.
REAL_CONFIG_KEYS = {
    "architectures",
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "moe_intermediate_size",
    "num_experts",
    "num_experts_per_tok",
    "num_shared_experts",
    "n_group",
    "topk_group",
    "routed_scaling_factor",
    "norm_topk_prob",
    "score_function",
    "moe_router_enable_expert_bias",
    "router_dtype",
    "first_k_dense_replace",
    "use_qk_norm",
    "use_rmsnorm",
    "partial_rotary_factor",
    "rope_theta",
    "max_position_embeddings",
    "rope_scaling",
    "vocab_size",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "rms_norm_eps",
    "tie_word_embeddings",
    "use_qkv_bias",
    "use_bias",
    "num_nextn_predict_layers",
    "torch_dtype",
    "hidden_act",
    "initializer_range",
    "output_router_logits",
    "max_window_layers",
    "moe_shared_expert_intermediate_size",
    "embedding_dropout",
}
# Values that must be AntAngelMed's whatever the preset size.
REAL_FIXED_VALUES = {
    "architectures": ["BailingMoeV2ForCausalLM"],
    "model_type": "bailing_moe_v2",
    "score_function": "sigmoid",
    "norm_topk_prob": True,
    "moe_router_enable_expert_bias": True,
    "router_dtype": "fp32",
    "routed_scaling_factor": 2.5,
    "use_qk_norm": True,
    "use_rmsnorm": True,
    "partial_rotary_factor": 0.5,
    "rope_theta": 600000,
    "rope_scaling": None,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "use_qkv_bias": False,
    "use_bias": False,
    "num_nextn_predict_layers": 0,
    "torch_dtype": "bfloat16",
    "hidden_act": "silu",
    "first_k_dense_replace": 1,
    "num_shared_experts": 1,
    "output_router_logits": False,
}


def expected_tensor_names(cfg: dict) -> set[str]:
    """The checkpoint tensor names exactly as the architecture notes list them."""
    names = {"model.word_embeddings.weight", "model.norm.weight", "lm_head.weight"}
    proj = ("gate_proj", "up_proj", "down_proj")
    for n in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{n}"
        names |= {
            f"{p}.input_layernorm.weight",
            f"{p}.post_attention_layernorm.weight",
            f"{p}.attention.query_key_value.weight",
            f"{p}.attention.dense.weight",
            f"{p}.attention.query_layernorm.weight",
            f"{p}.attention.key_layernorm.weight",
        }
        if n < cfg["first_k_dense_replace"]:
            names |= {f"{p}.mlp.{x}.weight" for x in proj}
        else:
            names |= {f"{p}.mlp.gate.weight", f"{p}.mlp.gate.expert_bias"}
            names |= {f"{p}.mlp.experts.{e}.{x}.weight" for e in range(cfg["num_experts"]) for x in proj}
            names |= {f"{p}.mlp.shared_experts.{x}.weight" for x in proj}
    return names


def load_all(path: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    index = path / "model.safetensors.index.json"
    files = (
        sorted(set(json.loads(index.read_text())["weight_map"].values()))
        if index.exists()
        else ["model.safetensors"]
    )
    for fname in files:
        with safe_open(str(path / fname), framework="pt") as f:
            for k in f.keys():  # noqa: SIM118
                out[k] = f.get_tensor(k)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(get_preset("tiny"), tmp_path_factory.mktemp("ck") / "tiny", seed=0)


@pytest.fixture(scope="module")
def tiny_cfg(tiny: Path) -> dict:
    return json.loads((tiny / "config.json").read_text())


@pytest.fixture(scope="module")
def tiny_tensors(tiny: Path) -> dict[str, torch.Tensor]:
    return load_all(tiny)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_plugin.checkpoints", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


# ---- layout and config ---------------------------------------------------------------------


def test_directory_is_complete_hf_layout(tiny: Path) -> None:
    files = {p.name for p in tiny.iterdir()}
    assert files == {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generator.json",
    }
    for name in files:
        assert (tiny / name).stat().st_mode & 0o044 == 0o044, f"{name} not readable by others"


def test_config_has_every_real_key_and_fixed_values(tiny_cfg: dict) -> None:
    assert REAL_CONFIG_KEYS <= set(tiny_cfg), REAL_CONFIG_KEYS - set(tiny_cfg)
    for key, value in REAL_FIXED_VALUES.items():
        assert tiny_cfg[key] == value, key


def test_tiny_config_exercises_routing(tiny_cfg: dict) -> None:
    c = tiny_cfg
    assert c["n_group"] > c["topk_group"] > 1  # some groups are always excluded
    assert c["num_experts"] % c["n_group"] == 0 and c["num_experts"] // c["n_group"] >= 2
    assert c["num_experts_per_tok"] > 1 and c["head_dim"] in (64, 128)
    assert c["num_attention_heads"] > c["num_key_value_heads"]  # GQA
    assert c["num_hidden_layers"] > c["first_k_dense_replace"]


def test_special_ids_consistent_across_files(tiny: Path, tiny_cfg: dict) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    gen = json.loads((tiny / "generation_config.json").read_text())
    tcfg = json.loads((tiny / "tokenizer_config.json").read_text())
    assert tiny_cfg["bos_token_id"] == tok.token_to_id(tcfg["bos_token"]) == gen["bos_token_id"]
    assert tiny_cfg["eos_token_id"] == tok.token_to_id(tcfg["eos_token"]) == gen["eos_token_id"][0]
    assert tiny_cfg["pad_token_id"] == tok.token_to_id(tcfg["pad_token"]) == gen["pad_token_id"]
    assert tcfg["eos_token"] == "<|role_end|>" and tcfg["bos_token"] == "<|startoftext|>"
    assert tiny_cfg["vocab_size"] >= tok.get_vocab_size() and tiny_cfg["vocab_size"] % 64 == 0


# ---- tensors ---------------------------------------------------------------------------------


def test_tensor_names_are_exactly_antangelmeds(tiny_cfg: dict, tiny_tensors: dict) -> None:
    assert set(tiny_tensors) == expected_tensor_names(tiny_cfg)


def test_tensor_shapes_follow_the_config_and_only_expert_bias_is_float32(
    tiny_cfg: dict, tiny_tensors: dict
) -> None:
    c = tiny_cfg
    h, d, v = c["hidden_size"], c["head_dim"], c["vocab_size"]
    q, kv = c["num_attention_heads"], c["num_key_value_heads"]
    inter, moe = c["intermediate_size"], c["moe_intermediate_size"]
    expected = {
        "model.word_embeddings.weight": (v, h),
        "lm_head.weight": (v, h),
        "model.norm.weight": (h,),
        "model.layers.0.attention.query_key_value.weight": ((q + 2 * kv) * d, h),
        "model.layers.0.attention.dense.weight": (h, q * d),
        "model.layers.0.attention.query_layernorm.weight": (d,),
        "model.layers.0.mlp.gate_proj.weight": (inter, h),
        "model.layers.0.mlp.down_proj.weight": (h, inter),
        "model.layers.1.mlp.gate.weight": (c["num_experts"], h),
        "model.layers.1.mlp.gate.expert_bias": (c["num_experts"],),
        "model.layers.1.mlp.experts.3.up_proj.weight": (moe, h),
        "model.layers.1.mlp.experts.3.down_proj.weight": (h, moe),
        "model.layers.2.mlp.shared_experts.gate_proj.weight": (moe * c["num_shared_experts"], h),
    }
    for name, shape in expected.items():
        assert tuple(tiny_tensors[name].shape) == shape, name
    for name, t in tiny_tensors.items():
        want = torch.float32 if name.endswith("expert_bias") else torch.bfloat16
        assert t.dtype == want, name


def test_weights_exercise_bias_norms_and_router(tiny_cfg: dict, tiny_tensors: dict) -> None:
    for name, t in tiny_tensors.items():
        if name.endswith("expert_bias"):
            # Clearly non-zero, distinct per expert: it must reorder experts.
            assert t.abs().min() > 0 and t.std() > 0.1, name
        elif "norm" in name:
            assert not torch.all(t == 1), name
            assert 0.5 < float(t.float().mean()) < 1.5, name
    # Same-sized q and k norms in one layer differ, so a swap would show.
    a = tiny_tensors["model.layers.1.attention.query_layernorm.weight"]
    b = tiny_tensors["model.layers.1.attention.key_layernorm.weight"]
    assert not torch.equal(a, b)
    # Router logits on unit-RMS inputs have a spread of ~2.
    gate = tiny_tensors["model.layers.1.mlp.gate.weight"].float()
    x = torch.randn(4096, tiny_cfg["hidden_size"], generator=torch.Generator().manual_seed(0))
    assert 1.5 < float((x @ gate.T).std()) < 2.5


def test_same_seed_is_byte_identical_other_seed_differs(tiny: Path, tmp_path: Path) -> None:
    again = write_checkpoint(get_preset("tiny"), tmp_path / "again", seed=0)
    other = write_checkpoint(get_preset("tiny"), tmp_path / "other", seed=1)
    for fname in ("model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json"):
        assert (tiny / fname).read_bytes() == (again / fname).read_bytes(), fname
    a, b = load_all(tiny), load_all(other)
    assert a.keys() == b.keys()
    assert all(not torch.equal(a[k], b[k]) for k in a), "a tensor ignores the seed"


def test_sharded_write_matches_single_file(tiny_tensors: dict, tmp_path: Path) -> None:
    out = write_checkpoint(get_preset("tiny"), tmp_path / "sharded", seed=0, max_shard_bytes=512 * 1024)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and not (out / "model.safetensors").exists()
    assert shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert sorted(p.name for p in out.glob("*.safetensors")) == shards
    sharded = load_all(out)
    assert sharded.keys() == tiny_tensors.keys()
    assert all(torch.equal(sharded[k], tiny_tensors[k]) for k in sharded)
    total = sum(t.numel() * t.element_size() for t in sharded.values())
    assert index["metadata"]["total_size"] == total


def test_small_preset_has_its_documented_sizes(tmp_path: Path) -> None:
    out = write_checkpoint(get_preset("small"), tmp_path / "small", seed=0)
    cfg = json.loads((out / "config.json").read_text())
    assert (
        cfg["hidden_size"],
        cfg["num_experts"],
        cfg["n_group"],
        cfg["topk_group"],
        cfg["num_experts_per_tok"],
    ) == (512, 64, 8, 4, 8)
    assert 4 <= cfg["num_hidden_layers"] <= 8 and cfg["head_dim"] in (64, 128)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        names = set(f.keys())
        assert names == expected_tensor_names(cfg)
        assert tuple(f.get_slice("model.layers.3.mlp.experts.63.gate_proj.weight").get_shape()) == (256, 512)


def test_real_shape_matches_antangelmed_parameter_count() -> None:
    """With all 32 layers, the real-shape tensors add up to the published parameter count:
    102,889,697,280 BF16 + 7,936 FP32 (no weights are written)."""
    preset = get_preset("real-shape", layers=32)
    cfg = build_config(
        preset, vocab_size=157184, bos_token_id=156891, eos_token_id=156892, pad_token_id=156892
    )
    specs = tensor_specs(cfg)
    assert {s.name for s in specs} == expected_tensor_names(cfg)
    bf16 = sum(math.prod(s.shape) for s in specs if s.dtype == torch.bfloat16)
    fp32 = sum(math.prod(s.shape) for s in specs if s.dtype == torch.float32)
    assert (bf16, fp32) == (102_889_697_280, 7_936)
    shapes = {s.name: s.shape for s in specs}
    assert shapes["model.layers.5.attention.query_key_value.weight"] == (5120, 4096)
    assert shapes["model.layers.0.mlp.gate_proj.weight"] == (9216, 4096)
    assert shapes["model.layers.5.mlp.experts.255.down_proj.weight"] == (4096, 1024)


def test_real_shape_defaults_to_4_layers_and_bounded_shards() -> None:
    preset = get_preset("real-shape")
    assert preset.num_hidden_layers == 4
    cfg = build_config(preset, vocab_size=157184, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    shards = writer_mod.plan_shards(tensor_specs(cfg), writer_mod.DEFAULT_MAX_SHARD_BYTES)
    # Bounded memory: no shard (but a single giant tensor) exceeds the limit.
    for shard in shards:
        assert len(shard) == 1 or sum(s.nbytes for s in shard) <= writer_mod.DEFAULT_MAX_SHARD_BYTES
    assert len(shards) > 5


def test_mtp_option_adds_an_mtp_block_after_the_decoder_stack() -> None:
    import dataclasses

    preset = dataclasses.replace(get_preset("tiny"), num_nextn_predict_layers=1)
    cfg = build_config(preset, vocab_size=2048, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    names = {s.name for s in tensor_specs(cfg)}
    mtp = {n for n in names if n.startswith("model.layers.3.")}
    assert {
        "model.layers.3.enorm.weight",
        "model.layers.3.hnorm.weight",
        "model.layers.3.eh_proj.weight",
        "model.layers.3.final_layernorm.weight",
        "model.layers.3.mlp.gate.expert_bias",
    } <= mtp
    assert cfg["num_nextn_predict_layers"] == 1


# ---- atomic writes and CLI errors ----------------------------------------------------------------


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = writer_mod.make_tensor

    def flaky(spec, seed):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 20:
            raise RuntimeError("disk on fire")
        return real(spec, seed)

    monkeypatch.setattr(writer_mod, "make_tensor", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_checkpoint(get_preset("tiny"), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp dir


def test_empty_existing_dir_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    out = write_checkpoint(get_preset("tiny"), tmp_path / "out")
    assert (out / "model.safetensors").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_cli_writes_tiny(tmp_path: Path) -> None:
    res = run_cli("--preset", "tiny", "--out", str(tmp_path / "t"), "--seed", "3")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "t" / "model.safetensors").exists()


def test_cli_refuses_non_empty_dir(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    res = run_cli("--preset", "tiny", "--out", str(out))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not empty" in lines[0] and str(out) in lines[0]
    assert "Traceback" not in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]  # no temp dir left


def test_cli_refuses_an_unknown_preset_in_one_line(tmp_path: Path) -> None:
    res = run_cli("--preset", "enormous", "--out", str(tmp_path / "x"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "enormous" in lines[0] and "tiny" in lines[0]
    assert "Traceback" not in res.stderr and not (tmp_path / "x").exists()


def test_module_imports_no_vllm_or_transformers() -> None:
    code = (
        "import sys, model_plugin.checkpoints.__main__, model_plugin.fp8, model_plugin.mtp.distill; "
        "bad = [m for m in ('vllm', 'transformers') if m in sys.modules]; print(bad)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "VLLM_PLUGINS": ""},
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# ---- tokenizer and chat template ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hypertension is defined as a sustained blood pressure of 130/80 mmHg.",
        "患者自述干咳两周，无发热。建议复查血常规。",
        "混合 mixed: 阿莫西林 500 mg, three times daily 😷 \t\n end",
    ],
)
def test_tokenizer_round_trips(tiny: Path, text: str) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny / "tokenizer.json"))
    ids = tok.encode(text).ids
    assert tok.decode(ids) == text
    assert len(ids) < len(text.encode()), "BPE merges should beat one token per byte"


def test_chat_template_via_transformers(tiny: Path, tiny_cfg: dict) -> None:
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny))  # no trust_remote_code
    messages = [
        {"role": "system", "content": "You are a careful medical assistant."},
        {"role": "user", "content": "高血压患者饮食要注意什么？"},
        {"role": "assistant", "content": "Less salt."},
        {"role": "user", "content": [{"type": "text", "text": "And exercise?"}]},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<role>SYSTEM</role>You are a careful medical assistant.<|role_end|>"
        "<role>HUMAN</role>高血压患者饮食要注意什么？<|role_end|>"
        "<role>ASSISTANT</role>Less salt.<|role_end|>"
        "<role>HUMAN</role>And exercise?<|role_end|>"
        "<role>ASSISTANT</role>"
    )
    no_prompt = tok.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=False)
    assert no_prompt.endswith("<|role_end|>")
    ids = tok(text, add_special_tokens=True)["input_ids"]
    # Special markers are single tokens and the turn end is the config's eos.
    assert ids.count(tiny_cfg["eos_token_id"]) == 4
    assert tok.eos_token_id == tiny_cfg["eos_token_id"] and tok.bos_token_id == tiny_cfg["bos_token_id"]
    assert tok.decode(ids) == text


def test_padding_rows_of_lm_head_are_zero(tiny: Path, tiny_cfg: dict, tiny_tensors: dict) -> None:
    from tokenizers import Tokenizer

    n_tok = Tokenizer.from_file(str(tiny / "tokenizer.json")).get_vocab_size()
    assert n_tok < tiny_cfg["vocab_size"]  # the tiny vocab is padded
    lm_head = tiny_tensors["lm_head.weight"]
    assert torch.all(lm_head[n_tok:] == 0) and torch.all(lm_head[:n_tok].abs().sum(-1) > 0)


def test_generator_record_says_how_the_checkpoint_was_made(tiny: Path) -> None:
    record = json.loads((tiny / "generator.json").read_text())
    assert record["preset"] == "tiny" and record["seed"] == 0 and record["bigram"] == 0.0
    assert record["fp8"] is False


def _follows_habit(path: Path, seed: int) -> float:
    """Share of greedy steps whose token is the bigram permutation's successor."""
    from tokenizers import Tokenizer

    from model_plugin.checkpoints.weights import tensor_seed
    from model_plugin.reference import ReferenceModel

    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    gen = torch.Generator().manual_seed(tensor_seed(seed, "bigram-permutation"))
    sigma = torch.randperm(tok.get_vocab_size(), generator=gen)
    prompt = tok.encode("<role>HUMAN</role>高血压患者饮食要注意什么？<|role_end|><role>ASSISTANT</role>").ids
    seq = prompt + ReferenceModel.from_pretrained(path).greedy_generate(prompt, 24)
    steps = range(len(prompt) - 1, len(seq) - 1)
    return sum(int(sigma[seq[i]]) == seq[i + 1] for i in steps) / len(steps)


def test_bigram_habit_makes_continuations_predictable(tiny: Path, tmp_path: Path) -> None:
    habit = write_checkpoint(get_preset("tiny"), tmp_path / "habit", seed=0, bigram=40.0)
    assert _follows_habit(habit, 0) > 0.5
    assert _follows_habit(tiny, 0) < 0.1
    # Only lm_head changes.
    a, b = load_all(tiny), load_all(habit)
    assert [k for k in a if not torch.equal(a[k], b[k])] == ["lm_head.weight"]


def test_cli_layers_option_is_validated_and_applied(tmp_path: Path) -> None:
    res = run_cli("--preset", "tiny", "--layers", "1", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "first_k_dense_replace" in res.stderr
    assert "Traceback" not in res.stderr
    res = run_cli("--preset", "tiny", "--layers", "4", "--out", str(tmp_path / "four"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "four" / "config.json").read_text())["num_hidden_layers"] == 4
