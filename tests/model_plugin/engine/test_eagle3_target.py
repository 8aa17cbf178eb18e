"""EAGLE3 speculative decoding with our model as the target, in real vLLM engines on CPU.

Upstream vLLM cannot run EAGLE3 on this architecture at all (no aux hidden states).
"""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from model_plugin.reference import ReferenceModel
from tests.model_plugin.engine.support import MAX_TOKENS, PROMPTS, REPO, engine_env, run_probe

pytestmark = pytest.mark.vllm
K = 3  # speculative tokens per step
AUX_PROMPT = [5, 100, 200, 300, 400, 500, 600, 700]


def _generate(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "model_plugin.checkpoints", *args], cwd=REPO, check=True, capture_output=True
    )


def _spec(draft) -> list[str]:
    config = {"method": "eagle3", "model": str(draft), "num_speculative_tokens": K}
    return ["--dtype", "float32", "--max-tokens", str(MAX_TOKENS), "--speculative-config", json.dumps(config)]


@pytest.fixture(scope="module")
def random_draft(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("eagle3") / "draft"
    _generate("--eagle3-draft", "--target", str(tiny_checkpoint), "--out", str(out))
    return out


@pytest.fixture(scope="module")
def bigram_target_and_distilled_draft(tmp_path_factory):
    """A target with a learnable next-token habit and a draft distilled from it on CPU.

    A purely random model's next token is unpredictable by any small draft; `--bigram` gives it the
    local predictability trained LMs have (see model_plugin/checkpoints/README.md).
    """
    root = tmp_path_factory.mktemp("eagle3-distilled")
    _generate("--preset", "tiny", "--bigram", "40", "--out", str(root / "target"))
    _generate(
        "--eagle3-draft",
        "--target",
        str(root / "target"),
        "--out",
        str(root / "draft"),
        "--distill-steps",
        "80",
    )
    return root / "target", root / "draft"


def test_eagle3_random_draft_is_lossless(tiny_checkpoint, random_draft, plugin_fp32, tmp_path):
    spec = run_probe(tiny_checkpoint, tmp_path / "eagle3.json", extra_args=_spec(random_draft))
    assert len(spec["results"]) == len(PROMPTS) >= 8
    for with_spec, without in zip(spec["results"], plugin_fp32["results"]):
        assert len(with_spec["token_ids"]) == MAX_TOKENS
        assert with_spec["token_ids"] == without["token_ids"]
    # Drafts were really proposed and verified (a random draft is almost never right).
    assert spec["metrics"]["vllm:spec_decode_num_draft_tokens"] > 0


def test_eagle3_distilled_draft_is_accepted_and_lossless(bigram_target_and_distilled_draft, tmp_path):
    target, draft = bigram_target_and_distilled_draft
    spec = run_probe(target, tmp_path / "eagle3-distilled.json", extra_args=_spec(draft))
    metrics = spec["metrics"]
    drafts, accepted = metrics["vllm:spec_decode_num_drafts"], metrics["vllm:spec_decode_num_accepted_tokens"]
    assert drafts > 0
    assert accepted > 0, metrics
    # Greedy speculative output equals the exact (reference) greedy continuation of the same target,
    # which plain decoding with our plugin also reproduces (test_plugin_equivalence).
    reference = ReferenceModel.from_pretrained(target, dtype=torch.float32)
    for res in spec["results"]:
        assert res["token_ids"] == reference.greedy_generate(res["prompt_token_ids"], MAX_TOKENS)
    print(
        f"\nEAGLE3 distilled draft on tiny --bigram 40: mean acceptance length "
        f"{1 + accepted / drafts:.2f} at k={K}"
    )


def _aux_probe(model, out, layers: str, hf_overrides: dict | None = None) -> dict[str, torch.Tensor]:
    cmd = [
        sys.executable,
        "-m",
        "tests.model_plugin.engine.aux_probe",
        "--model",
        str(model),
        "--layers",
        layers,
        "--prompt-ids",
        ",".join(map(str, AUX_PROMPT)),
        "--out",
        str(out),
    ]
    if hf_overrides:
        cmd += ["--hf-overrides", json.dumps(hf_overrides)]
    proc = subprocess.run(
        cmd, cwd=REPO, env=engine_env(), capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    return load_file(out)


@pytest.fixture(scope="module")
def reference_stream(tiny_checkpoint):
    """The reference's residual stream entering layers 0..N-1, then (index N) leaving the last layer."""
    return (
        ReferenceModel.from_pretrained(tiny_checkpoint)
        .forward_with_states(torch.tensor(AUX_PROMPT))
        .layer_inputs
    )


def test_aux_hidden_states_are_the_residual_stream_entering_each_layer(
    tiny_checkpoint, tmp_path, reference_stream
):
    got = _aux_probe(tiny_checkpoint, tmp_path / "aux.safetensors", "0,1,2")
    assert got["active_layers"].tolist() == [0, 1, 2]
    for k in range(3):
        gap = (got[f"layer_{k}"] - reference_stream[k]).abs().max().item()
        assert gap < 1e-4, f"layer {k}: max gap {gap}"
    # ...and not a neighbouring layer's (the off-by-one this architecture's drafts are prone to).
    assert (got["layer_1"] - reference_stream[2]).abs().max().item() > 0.1


def test_sglang_layer_shift_reads_one_layer_later(tiny_checkpoint, tmp_path, reference_stream):
    # SGLang ids 1 and 2 (= N-1, the last layer's output) become vLLM ids 2 and N = 3: the stream
    # leaving the last layer, before the final norm, is served too.
    got = _aux_probe(
        tiny_checkpoint,
        tmp_path / "aux-shift.safetensors",
        "1,2",
        hf_overrides={"eagle_aux_layer_id_shift": 1},
    )
    assert got["active_layers"].tolist() == [2, 3] and len(reference_stream) == 4
    for k in (2, 3):
        assert (got[f"layer_{k}"] - reference_stream[k]).abs().max().item() < 1e-4
    assert (got["layer_3"] - reference_stream[2]).abs().max().item() > 0.1
