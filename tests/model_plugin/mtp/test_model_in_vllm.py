"""AntAngelMed's MTP layer as vLLM's speculative method "mtp", in real CPU engines.

On the shared tiny MTP checkpoint (see conftest.py: its drafts are accepted often, but not
always), both the accept and the reject paths of greedy verification run. Three engines per
module: no speculation, MTP k=1 (eager, every draft call recorded by
tests/model_plugin/mtp/draft_probe.py) and MTP k=3 (compiled target), plus one that must fail to
load, plus one with the generator's MTP layer distilled on the same target
(model_plugin.mtp.distill, a few seconds).
"""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from model_plugin.mtp.draft import write_mtp_draft
from model_plugin.reference import ReferenceModel
from tests.model_plugin.engine.support import PROMPTS, REPO, engine_env, run_probe
from tests.model_plugin.mtp.conftest import BIGRAM, generate, write_draft_cli

pytestmark = pytest.mark.vllm
MAX_TOKENS = 32
# fp32 engine vs fp32 reference; the observed gaps are ~1e-5, a wrong block is O(1).
HIDDEN_ATOL = 1e-3
LOGPROB_ATOL = 1e-3


def _spec(draft, k: int) -> str:
    return json.dumps({"method": "mtp", "model": str(draft), "num_speculative_tokens": k})


@pytest.fixture(scope="module")
def reference(mtp_checkpoint):
    return ReferenceModel.from_pretrained(mtp_checkpoint, dtype=torch.float32)


@pytest.fixture(scope="module")
def baseline(mtp_checkpoint, tmp_path_factory):
    return run_probe(
        mtp_checkpoint,
        tmp_path_factory.mktemp("probe") / "no-spec.json",
        extra_args=["--enforce-eager", "--dtype", "float32", "--max-tokens", str(MAX_TOKENS)],
    )


@pytest.fixture(scope="module")
def mtp_k1(mtp_checkpoint, mtp_draft, tmp_path_factory):
    """MTP k=1 with every draft call recorded (inputs and per-row logits)."""
    tmp = tmp_path_factory.mktemp("probe")
    (tmp / "prompts.json").write_text(json.dumps(PROMPTS, ensure_ascii=False))
    cmd = [
        sys.executable,
        "-m",
        "tests.model_plugin.mtp.draft_probe",
        "--model",
        str(mtp_checkpoint),
        "--draft",
        str(mtp_draft),
        "--prompts-file",
        str(tmp / "prompts.json"),
        "--out",
        str(tmp / "k1.pt"),
        "-k",
        "1",
        "--max-tokens",
        str(MAX_TOKENS),
    ]
    proc = subprocess.run(
        cmd, check=False, cwd=REPO, env=engine_env(), capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"mtp_probe failed ({proc.returncode}):\n{proc.stderr[-8000:]}")
    return torch.load(tmp / "k1.pt", weights_only=False)


@pytest.fixture(scope="module")
def mtp_k3(mtp_checkpoint, mtp_draft, tmp_path_factory):
    # Compiled target (no --enforce-eager): the serving default.
    return run_probe(
        mtp_checkpoint,
        tmp_path_factory.mktemp("probe") / "k3.json",
        extra_args=[
            "--dtype",
            "float32",
            "--max-tokens",
            str(MAX_TOKENS),
            "--speculative-config",
            _spec(mtp_draft, 3),
        ],
    )


def _reference_mtp(reference, results):
    """Per request: (full sequence, prompt length, target final hidden [L, H], MTP logprobs [L-1, V])."""
    out = []
    for res in results:
        seq = res["prompt_token_ids"] + res["token_ids"]
        fwd = reference.forward_with_states(torch.tensor(seq))
        # Row t reads (hidden[t], token t+1) and predicts token t+2.
        logits = reference.mtp_forward(torch.tensor(seq[1:]), fwd.final_hidden[:-1])
        logprobs = torch.log_softmax(logits.double(), -1)
        out.append((seq, len(res["prompt_token_ids"]), fwd.final_hidden, logprobs))
    return out


@pytest.fixture(scope="module")
def reference_mtp(reference, mtp_k1):
    return _reference_mtp(reference, mtp_k1["results"])


@pytest.fixture(scope="module")
def untrained_mtp_checkpoint(tmp_path_factory):
    """The same target as mtp_checkpoint with the generator's MTP layer as written (random)."""
    return generate(tmp_path_factory.mktemp("mtp-untrained") / "tiny-mtp", "--mtp", "--bigram", str(BIGRAM))


@pytest.fixture(scope="module")
def distilled_k2(untrained_mtp_checkpoint, tmp_path_factory):
    """MTP k=2 (eager) with the MTP layer distilled for a few seconds on the target's own tokens."""
    from model_plugin.mtp.distill import distill_mtp

    tmp = tmp_path_factory.mktemp("mtp-distilled")
    ckpt = distill_mtp(
        untrained_mtp_checkpoint,
        tmp / "tiny-mtp-distilled",
        steps=80,
        gen_prompts=8,
        gen_tokens=24,
        random_sequences=64,
        unroll=2,
        batch=16,
    ).path
    draft = write_draft_cli(ckpt, tmp / "draft")
    return run_probe(
        ckpt,
        tmp / "k2.json",
        extra_args=[
            "--enforce-eager",
            "--dtype",
            "float32",
            "--max-tokens",
            str(MAX_TOKENS),
            "--speculative-config",
            _spec(draft, 2),
        ],
    )


# ---- real engines -------------------------------------------------------------------------------


def _tokens(run: dict) -> list[list[int]]:
    return [res["token_ids"] for res in run["results"]]


def test_mtp_k1_greedy_is_lossless(baseline, mtp_k1):
    assert mtp_k1["draft_class"] == "AntAngelMedMTP"
    assert len(baseline["results"]) == len(PROMPTS) >= 8
    assert all(len(t) == MAX_TOKENS for t in _tokens(baseline))
    assert _tokens(mtp_k1) == _tokens(baseline)


def test_mtp_k3_greedy_is_lossless(baseline, mtp_k3):
    assert _tokens(mtp_k3) == _tokens(baseline)


def test_spec_decode_metrics_report_proposed_and_accepted_drafts(mtp_k1, mtp_k3):
    for run, k in ((mtp_k1, 1), (mtp_k3, 3)):
        m = run["metrics"]
        assert m["vllm:spec_decode_num_drafts"] > 0
        assert m["vllm:spec_decode_num_draft_tokens"] == k * m["vllm:spec_decode_num_drafts"]
        assert len(m["vllm:spec_decode_num_accepted_tokens_per_pos"]) == k
        assert 0 < m["vllm:spec_decode_num_accepted_tokens"] < m["vllm:spec_decode_num_draft_tokens"]


def _expected_acceptance(reference_mtp) -> tuple[int, int]:
    """(drafts, accepted) that greedy k=1 verification gives if the engine's MTP is the reference's.

    After a step that ends at token n, the draft for n+1 is the MTP's argmax at row n-1
    (hidden[n-1], token n); accepted when it equals the greedy token, which adds a bonus token.
    """
    drafts = accepted = 0
    for seq, n_prompt, _, logprobs in reference_mtp:
        draft = logprobs.argmax(-1)
        n = n_prompt  # the prefill sampled token n_prompt
        while n < len(seq) - 1:
            drafts += 1
            hit = int(draft[n - 1]) == seq[n + 1]
            accepted += hit
            n += 2 if hit else 1
    return drafts, accepted


def test_acceptance_is_what_the_reference_mtp_predicts(mtp_k1, reference_mtp):
    m = mtp_k1["metrics"]
    drafts, accepted = _expected_acceptance(reference_mtp)
    assert (m["vllm:spec_decode_num_drafts"], m["vllm:spec_decode_num_accepted_tokens"]) == (drafts, accepted)


def test_mtp_logits_match_the_reference_at_every_position(mtp_k1, reference_mtp):
    """Every draft row whose inputs are a real (position, next token, target hidden) triple of a
    final sequence must give the reference MTP's distribution for the token after next.

    Rows for drafts that verification then rejected carry the rejected token's hidden state and
    match nothing; every position of every sequence must still be matched at least once.
    """
    covered = [set() for _ in reference_mtp]
    gaps = []
    for call in mtp_k1["calls"]:
        for row in range(call["input_ids"].shape[0]):
            pos, tok = int(call["positions"][row]), int(call["input_ids"][row])
            for r, (seq, _, hidden, logprobs) in enumerate(reference_mtp):
                if pos + 1 >= len(seq) or seq[pos + 1] != tok:
                    continue
                if (call["hidden_states"][row] - hidden[pos]).abs().max() > HIDDEN_ATOL:
                    continue
                engine = torch.log_softmax(call["logits"][row].double(), -1)
                gaps.append((engine - logprobs[pos]).abs().max().item())
                covered[r].add(pos)
    for (seq, _, _, _), seen in zip(reference_mtp, covered):
        missing = sorted(set(range(len(seq) - 1)) - seen)
        assert not missing, f"no draft row matched the target's final hidden state at positions {missing}"
    assert max(gaps) < LOGPROB_ATOL, f"max MTP logprob gap {max(gaps):.3g}"


def test_missing_mtp_tensor_fails_naming_it(mtp_checkpoint, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(mtp_checkpoint, bad)
    n = json.loads((bad / "config.json").read_text())["num_hidden_layers"]
    tensors = load_file(bad / "model.safetensors")
    del tensors[f"model.layers.{n}.hnorm.weight"]
    save_file(tensors, bad / "model.safetensors", metadata={"format": "pt"})
    draft = write_mtp_draft(bad, tmp_path / "bad-draft")
    with pytest.raises(RuntimeError) as err:
        run_probe(
            bad,
            tmp_path / "out.json",
            prompts=["hello"],
            extra_args=["--enforce-eager", "--max-tokens", "1", "--speculative-config", _spec(draft, 1)],
            timeout=300,
        )
    assert f"missing 1 tensor(s): model.layers.{n}.hnorm.weight" in str(err.value)


def test_distilled_mtp_is_lossless_and_accepted_far_more_than_untrained(
    baseline, distilled_k2, untrained_mtp_checkpoint
):
    """The distilled layer, served by vLLM (method "mtp", k=2), changes no greedy token and gets
    its drafts accepted; the untrained layer's k=1 acceptance on the same sequences, as the
    reference predicts it (exact for vLLM, see test_acceptance_is_what_the_reference_mtp_predicts),
    is about zero."""
    diverged = [i for i, (a, b) in enumerate(zip(_tokens(distilled_k2), _tokens(baseline))) if a != b]
    assert not diverged, (diverged, distilled_k2["metrics"])
    m = distilled_k2["metrics"]
    drafts, per_pos = m["vllm:spec_decode_num_drafts"], m["vllm:spec_decode_num_accepted_tokens_per_pos"]
    assert drafts > 0 and m["vllm:spec_decode_num_draft_tokens"] == 2 * drafts
    assert sum(per_pos) == m["vllm:spec_decode_num_accepted_tokens"]
    untrained = ReferenceModel.from_pretrained(untrained_mtp_checkpoint, dtype=torch.float32)
    u_drafts, u_accepted = _expected_acceptance(_reference_mtp(untrained, baseline["results"]))
    facts = (m, u_drafts, u_accepted)
    assert u_accepted / u_drafts < 0.05, facts
    assert per_pos[0] / drafts > u_accepted / u_drafts + 0.3, facts
    assert per_pos[1] > 0, facts  # the second draft (the block reading its own output) is accepted too
