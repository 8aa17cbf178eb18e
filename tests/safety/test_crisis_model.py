"""The learned crisis detector: shipped weights, featuriser parity with training, behaviour, policy switch,
start-up errors and its wiring into the engine. Messages here are written for these tests (not from the
evaluation sets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from server.safety import SafetyEngine, SafetyPolicyError
from server.safety import crisis_model as cm
from server.safety.crisis_model import CrisisModel, CrisisModelError
from server.safety.detectors import detect_crisis
from tests.safety.conftest import user

CRISIS = "crisis_self_harm"
REPO = Path(__file__).resolve().parents[2]
MODEL_FILE = REPO / "server" / "safety" / "crisis_model.json"

# indirect wording: no "suicide", "kill myself" or "end my life"
INDIRECT_CRISIS = [
    "Lately I keep thinking my family would manage fine, maybe better, if I just wasn't around anymore.",
    "I've been giving my stuff away to friends this week because I won't be needing any of it soon.",
    "I'm so tired of being a burden on everyone, they'd be relieved if I disappeared for good.",
    "There's no way out of this for me, I just want everything to stop for good.",
    "我每天晚上都在想，如果明天不用醒来就好了。",
    "我已经给爸妈写好了告别信，放在抽屉里。",
    "活着太累了，我想让一切都彻底结束。",
]
# idioms, dosing questions, grief: nothing to do with a risk to the writer
NEGATIVES = [
    "I'm dying to try the new ramen place downtown, is miso broth high in sodium?",
    "This commute is killing me, any stretches for lower back pain?",
    "What's the maximum daily dose of ibuprofen for an adult?",
    "How many milligrams of paracetamol can a 20 kg child take?",
    "My grandmother passed away last month. How do I help my kids through their grief?",
    "My dog died last week and I can't stop crying, is it normal to grieve a pet this much?",
    "笑死我了，我家猫又把药盒打翻了，猫吃了药会有事吗？",
    "最近加班累死了，晚上总是睡不着，褪黑素能长期吃吗？",
    "布洛芬一天最多能吃几片？",
    "父亲去世三个月了，我还是常常梦到他，这正常吗？",
    "这道题难死了，考试前一天晚上怎么复习最有效？",
]
ORDINARY = [
    "Can I take my blood pressure tablet with grapefruit juice?",
    "My son has had a runny nose for three days but no fever.",
    "How long should I wait after eating before going for a run?",
    "Is it normal for a new tattoo to itch after a week?",
    "我最近早上起床后膝盖有点僵硬，活动一会儿就好了。",
    "孩子打完疫苗有点低烧，需要吃退烧药吗？",
    "吃完饭以后胃胀，是不是消化不好？",
]


@pytest.fixture(scope="module")
def model() -> CrisisModel:
    return cm.load_model()


def score(model: CrisisModel, text: str) -> float:
    return model.score(cm.view_of(text))


# --- the shipped weights ---------------------------------------------------------------------------
def test_shipped_weights_load_and_are_small(model: CrisisModel) -> None:
    assert MODEL_FILE.stat().st_size < 1_000_000
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    assert data["format"] == cm.FORMAT and data["featuriser"]["version"] == cm.FEATURISER_VERSION
    assert len(data["buckets"]) == len(data["weights"]) > 1000
    assert model.weights.shape == (cm.SIZE,) and model.weights[cm.NULL] == 0.0
    assert model.meta["script"] == "benchmarks/learned_crisis.py"


def test_scores_are_deterministic_across_processes(model: CrisisModel) -> None:
    """Feature hashing is numpy arithmetic, not Python's per-process salted hash()."""
    texts = [INDIRECT_CRISIS[0], NEGATIVES[-1], ORDINARY[0]]
    here = [round(score(model, t), 9) for t in texts]
    assert here == [round(score(model, t), 9) for t in texts]
    code = ("import json, sys; from server.safety import crisis_model as cm; m = cm.load_model(); "
            "print(json.dumps([round(m.score(cm.view_of(t)), 9) for t in json.loads(sys.argv[1])]))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], capture_output=True, text=True,
                             check=True, timeout=60, cwd=REPO, env={"PYTHONHASHSEED": seed, "PATH": ""})
        assert json.loads(out.stdout) == here


def test_training_path_scores_equal_run_time_scores(model: CrisisModel) -> None:
    """The training script builds its vectors with the run-time featuriser: no train/serve skew."""
    from benchmarks import learned_crisis as lc

    assert lc.cm is cm
    texts = [*INDIRECT_CRISIS, *NEGATIVES, *ORDINARY, " ".join(ORDINARY * 12), "", "!!!", "ok. 好。 fine!"]
    vec = lc.Vectors(texts)
    for text, view, segments in zip(texts, vec.views, vec.segments, strict=True):
        assert view == cm.view_of(text)
        assert lc.vector_score(model.weights, model.bias, segments) == pytest.approx(model.score(view), abs=1e-9)
    # a short message's training vector (summed over its segments) is its run-time window
    buckets, counts = cm.message_counts(cm.view_of(INDIRECT_CRISIS[4]))
    assert model.bias + float(model.weights[buckets] @ counts) == pytest.approx(score(model, INDIRECT_CRISIS[4]))


def test_featuriser_basics() -> None:
    f = cm.featurise(cm.view_of("I don't want this. 我想睡觉"))
    assert len(f.nonempty) == 2 and len(f.cjk) == 3 and len(f.words) == 3
    # a word hashes the same wherever it stands; apostrophes are dropped
    a = cm.featurise("dont worry").words[0][0]
    b = cm.featurise("well. don't").words[0][1]
    assert a == b
    assert len(cm.featurise("").nonempty) == 0 and len(cm.featurise("?!。").nonempty) == 0
    # a run-on message is still cut into segments of at most SEGMENT_CAP characters
    assert len(cm.featurise("我" * 1000).nonempty) == -(-1000 // cm.SEGMENT_CAP)


# --- behaviour ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", INDIRECT_CRISIS)
def test_indirect_crisis_fires(model: CrisisModel, engine: SafetyEngine, text: str) -> None:
    assert model.fires(cm.view_of(text))
    assert CRISIS in engine.check_input(user(text), "patient").categories


@pytest.mark.parametrize("text", NEGATIVES + ORDINARY)
def test_idioms_dosing_and_grief_do_not_fire(model: CrisisModel, engine: SafetyEngine, text: str) -> None:
    assert not model.fires(cm.view_of(text))
    assert CRISIS not in engine.check_input(user(text), "patient").categories


def test_a_long_message_does_not_dilute_or_add_up(model: CrisisModel) -> None:
    filler = " ".join((ORDINARY + NEGATIVES) * 8)  # ~4,000 characters, idioms and dosing included
    assert len(filler) > 3000 and not model.fires(cm.view_of(filler))
    for text in INDIRECT_CRISIS:
        half = len(filler) // 2
        buried = f"{filler[:half]}. {text} {filler[half:]}"
        assert score(model, buried) >= score(model, text) - 1e-9  # the best window holds the sentence alone


# --- the policy switch and start-up errors ----------------------------------------------------------
def test_builtin_profiles_switch(engine: SafetyEngine) -> None:
    profiles = engine.policy.profiles
    assert profiles["patient"].crisis_self_harm.model is True
    assert profiles["clinician"].crisis_self_harm.model is False  # clinical toxicology questions
    assert engine.crisis_model is not None


def test_model_false_leaves_the_rules_alone(make_engine) -> None:
    text = INDIRECT_CRISIS[0]
    on = make_engine(crisis_self_harm={"action": "annotate", "model": True})
    off = make_engine(crisis_self_harm={"action": "annotate", "model": False})
    assert CRISIS in on.check_input(user(text), "p").categories
    assert off.crisis_model is None  # not even loaded when no profile uses it
    verdict = off.check_input(user(text), "p")
    assert verdict.model_categories == []
    assert (CRISIS in verdict.categories) == bool(detect_crisis(cm.view_of(text)))  # what the rules say alone
    # the rules still run with the model off
    assert CRISIS in off.check_input(user("I want to kill myself tonight."), "p").categories


def test_clinician_profile_does_not_use_the_model(engine: SafetyEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "crisis_model", _Always())
    assert engine.check_input(user("What is the half-life of amiodarone?"), "clinician").categories == []
    assert engine.check_input(user("What is the half-life of amiodarone?"), "patient").categories == [CRISIS]


@pytest.mark.parametrize(("text", "expected"), [
    ("profiles:\n  patient:\n    crisis_self_harm: {action: annotate, model: maybe}\n",
     "profiles.patient.crisis_self_harm.model: expected true or false (got 'maybe')"),
    ("profiles:\n  patient:\n    crisis_self_harm: {action: annotate, modle: true}\n", "unknown key 'modle'"),
    ("profiles:\n  patient:\n    medical_emergency: {action: annotate, model: true}\n", "unknown key 'model'"),
])
def test_bad_model_switch_fails_with_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SafetyPolicyError) as info:
        SafetyEngine.from_policy_file(str(path))
    assert expected in str(info.value) and "\n" not in str(info.value)


def _valid() -> dict:
    return json.loads(MODEL_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: "not json {", "is not valid JSON at line 1"),
    (lambda d: [1, 2], "expected a JSON object"),
    (lambda d: {**d, "format": "something-else"}, "not a crisis model file"),
    (lambda d: {**d, "featuriser": {**d["featuriser"], "hash_bits": 20}}, "written for another featuriser"),
    (lambda d: {**d, "bias": "high"}, "bias must be a finite number"),
    (lambda d: {**d, "threshold": None}, "threshold must be a finite number"),
    (lambda d: {**d, "weights": d["weights"][:-1]}, "buckets and weights must be lists of the same length"),
    (lambda d: {**d, "buckets": [-1, *d["buckets"][1:]]}, "buckets must be integers in"),
    (lambda d: {**d, "buckets": [cm.NULL, *d["buckets"][1:]]}, "buckets must be integers in"),
    (lambda d: {**d, "buckets": [d["buckets"][1], *d["buckets"][1:]]}, "a bucket appears twice"),
    (lambda d: {**d, "weights": ["x", *d["weights"][1:]]}, "weights numbers"),
])
def test_malformed_weights_fail_at_start_up_with_one_clear_line(tmp_path: Path, mutate, expected: str) -> None:
    data = mutate(_valid())
    path = tmp_path / "crisis_model.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    with pytest.raises(CrisisModelError) as info:
        CrisisModel.load(str(path))
    assert expected in str(info.value) and "\n" not in str(info.value)
    # the engine refuses to start with them (the gateway turns SafetyPolicyError into a start-up error)
    with pytest.raises(SafetyPolicyError, match="crisis_model.json"):
        SafetyEngine.from_policy_file(None, crisis_model_path=str(path))


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(SafetyPolicyError, match="cannot read .*missing.json"):
        SafetyEngine.from_policy_file(None, crisis_model_path=str(tmp_path / "missing.json"))


# --- through the engine --------------------------------------------------------------------------
class _Always:
    """A stand-in model that always fires: isolates the wiring from what the real model learned."""

    def fires(self, view: str) -> bool:
        return True


NEUTRAL = "Could you explain what a normal resting heart rate is?"


@pytest.mark.parametrize("action", ["annotate", "redact", "respond", "block", "allow"])
def test_a_model_only_hit_takes_the_categorys_action(make_engine, monkeypatch: pytest.MonkeyPatch,
                                                     action: str) -> None:
    eng = make_engine(crisis_self_harm={"action": action})
    assert eng.check_input(user(NEUTRAL), "p").categories == []  # neither rules nor the real model
    monkeypatch.setattr(eng, "crisis_model", _Always())
    verdict = eng.check_input(user(NEUTRAL), "p")
    assert verdict.categories == [CRISIS]
    assert verdict.model_categories == [CRISIS]
    assert verdict.actions == {CRISIS: action}
    assert verdict.events == [(CRISIS, action)]
    if action in ("annotate", "redact"):
        assert verdict.action == "pass" and verdict.notices == ["crisis_resources"]
        assert verdict.messages[0]["role"] == "system" and "suicide" in verdict.messages[0]["content"]
        assert verdict.messages[1] == user(NEUTRAL)[0]  # no span to redact: the text goes as written
    elif action == "respond":
        assert verdict.action == "respond" and "988" in verdict.response_text
    elif action == "block":
        assert verdict.action == "block" and "crisis_self_harm" in verdict.error_message
    else:
        assert verdict.action == "pass" and verdict.messages == user(NEUTRAL)


def test_model_reads_only_the_callers_words(engine: SafetyEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like the crisis rules: system and assistant turns are not the caller speaking."""
    calls: list[str] = []

    class Recorder:
        def fires(self, view: str) -> bool:
            calls.append(view)
            return False

    monkeypatch.setattr(engine, "crisis_model", Recorder())
    engine.check_input([{"role": "system", "content": "You are a kind assistant."},
                        {"role": "assistant", "content": "How can I help?"},
                        {"role": "user", "content": "Hello THERE"}], "patient")
    assert calls == ["hello there"]
    calls.clear()
    engine.check_input(user("I want to kill myself."), "patient")  # the rules fired: no need to ask the model
    assert calls == []


def test_real_model_hit_through_chat_and_completions(engine: SafetyEngine) -> None:
    text = INDIRECT_CRISIS[2]
    verdict = engine.check_input(user(text), "patient")
    assert CRISIS in verdict.categories and verdict.action == "pass"
    assert "crisis_resources" in verdict.notices
    prompt = engine.check_prompt(text, "patient")
    assert CRISIS in prompt.categories and prompt.prompt.startswith("Safety instruction")


def test_very_long_messages_grow_the_hash_tables(model: CrisisModel) -> None:
    text = INDIRECT_CRISIS[3]
    long_text = "ordinary words here. " * 2000 + text  # ~40,000 characters, past the precomputed powers
    assert score(model, long_text) >= score(model, text) - 1e-9 and model.fires(cm.view_of(long_text))
    assert len(cm._POWERS.pair[0]) >= len(long_text) * 0.8
