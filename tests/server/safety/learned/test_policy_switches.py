"""The learned detectors' policy switches (`<category>.model`, `<category>.model_action`) and the start-up
errors of a bad switch or a malformed weights file: one clear line, never a half-loaded engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.safety import SafetyEngine, SafetyPolicyError
from server.safety.learned import model as cm
from server.safety.learned.model import LearnedModel, LearnedModelError
from server.safety.rules import crisis
from tests.server.safety.conftest import user
from tests.server.safety.learned.test_model import INDIRECT_CRISIS, _Always

CRISIS, EMERGENCY, INJECTION = "crisis_self_harm", "medical_emergency", "prompt_injection"
REPO = Path(__file__).resolve().parents[4]
MODEL_FILE = REPO / "server" / "safety" / "learned" / "weights.json"


# --- the policy switch and start-up errors ----------------------------------------------------------
def test_builtin_profiles_switch(engine: SafetyEngine) -> None:
    profiles = engine.policy.profiles
    on = {name: {c: p.model_on(c) for c in cm.LEARNED_CATEGORIES} for name, p in profiles.items()}
    assert on == {
        "patient": {CRISIS: True, EMERGENCY: True, INJECTION: True},
        "clinician": {CRISIS: False, EMERGENCY: False, INJECTION: True},  # toxicology, case descriptions
        "research": {CRISIS: True, EMERGENCY: False, INJECTION: True},
    }
    for p in profiles.values():  # injection: a rule hit blocks, a model-only hit is annotated
        assert p.action(INJECTION) == "block" and p.model_action(INJECTION) == "annotate"
    assert profiles["patient"].model_action(CRISIS) == "annotate"
    assert profiles["patient"].model_action(EMERGENCY) == "annotate"
    assert engine.learned_model is not None


def test_model_action_is_never_harsher_than_the_action(make_engine) -> None:
    eng = make_engine(
        prompt_injection={"action": "allow", "model_action": "block"},
        medical_emergency={"action": "respond", "model_action": "annotate"},
        crisis_self_harm={"action": "annotate"},
    )
    prof = eng.policy.profiles["p"]
    assert prof.model_action(INJECTION) == "allow"
    assert prof.model_action(EMERGENCY) == "annotate"
    assert prof.model_action(CRISIS) == "annotate"  # no model_action: the category's action
    default = make_engine(prompt_injection={"action": "block"}).policy.profiles["p"]
    assert default.model_on(INJECTION) and default.model_action(INJECTION) == "annotate"


def test_models_off_load_nothing(make_engine) -> None:
    off = {"action": "annotate", "model": False}
    eng = make_engine(
        crisis_self_harm=off, medical_emergency=off, prompt_injection={"action": "block", "model": False}
    )
    assert eng.learned_model is None  # not even loaded when no profile uses it


def test_model_false_leaves_the_rules_alone(make_engine) -> None:
    text = INDIRECT_CRISIS[0]
    on = make_engine(crisis_self_harm={"action": "annotate", "model": True})
    off = make_engine(crisis_self_harm={"action": "annotate", "model": False})
    assert CRISIS in on.check_input(user(text), "p").categories
    verdict = off.check_input(user(text), "p")
    assert CRISIS not in verdict.model_categories
    assert (CRISIS in verdict.categories) == bool(crisis.detect(cm.view_of(text)))  # what the rules say alone
    # the rules still run with the model off
    assert CRISIS in off.check_input(user("I want to kill myself tonight."), "p").categories


def test_clinician_profile_does_not_use_the_crisis_or_emergency_model(
    engine: SafetyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "learned_model", _Always(CRISIS, EMERGENCY, INJECTION))
    text = "What is the half-life of amiodarone?"
    assert engine.check_input(user(text), "clinician").categories == [INJECTION]
    assert engine.check_input(user(text), "patient").categories == [CRISIS, EMERGENCY, INJECTION]
    assert engine.check_input(user(text), "research").categories == [CRISIS, INJECTION]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "profiles:\n  patient:\n    crisis_self_harm: {action: annotate, model: maybe}\n",
            "profiles.patient.crisis_self_harm.model: expected true or false (got 'maybe')",
        ),
        (
            "profiles:\n  patient:\n    crisis_self_harm: {action: annotate, modle: true}\n",
            "unknown key 'modle'",
        ),
        ("profiles:\n  patient:\n    phi: {action: redact, model: true}\n", "unknown key 'model'"),
        (
            "profiles:\n  patient:\n    medical_emergency: {action: annotate, model: 2}\n",
            "profiles.patient.medical_emergency.model: expected true or false (got 2)",
        ),
        (
            "profiles:\n  patient:\n    prompt_injection: {action: block, model: sometimes}\n",
            "profiles.patient.prompt_injection.model: expected true or false (got 'sometimes')",
        ),
        (
            "profiles:\n  patient:\n    prompt_injection: {action: block, model_action: soft}\n",
            "profiles.patient.prompt_injection.model_action: unknown action 'soft' (expected one of: allow, "
            "annotate",
        ),
        (
            "profiles:\n  patient:\n    medical_emergency: {action: annotate, model_acton: allow}\n",
            "unknown key 'model_acton'",
        ),
    ],
)
def test_bad_model_switch_fails_with_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SafetyPolicyError) as info:
        SafetyEngine.from_policy_file(str(path))
    assert expected in str(info.value) and "\n" not in str(info.value)


def _valid() -> dict:
    return json.loads(MODEL_FILE.read_text(encoding="utf-8"))


def _crisis(d: dict, **change) -> dict:
    """The file with the crisis category's entry changed."""
    return {**d, "categories": {**d["categories"], CRISIS: {**d["categories"][CRISIS], **change}}}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: "not json {", "is not valid JSON at line 1"),
        (lambda d: [1, 2], "expected a JSON object"),
        (lambda d: {**d, "format": "something-else"}, "not a learned safety model file"),
        (
            lambda d: {**d, "featuriser": {**d["featuriser"], "hash_bits": 20}},
            "written for another featuriser",
        ),
        (lambda d: {**d, "categories": {}}, "categories must be a non-empty object"),
        (
            lambda d: {**d, "categories": {**d["categories"], "phi": d["categories"][CRISIS]}},
            "unknown category 'phi'",
        ),
        (lambda d: _crisis(d, bias="high"), "crisis_self_harm: bias must be a finite number"),
        (lambda d: _crisis(d, threshold=None), "threshold must be a finite number"),
        (
            lambda d: _crisis(d, weights=d["categories"][CRISIS]["weights"][:-1]),
            "buckets and weights must be lists of the same length",
        ),
        (
            lambda d: _crisis(d, buckets=[-1, *d["categories"][CRISIS]["buckets"][1:]]),
            "buckets must be integers in",
        ),
        (
            lambda d: _crisis(d, buckets=[cm.NULL, *d["categories"][CRISIS]["buckets"][1:]]),
            "buckets must be integers in",
        ),
        (
            lambda d: _crisis(
                d, buckets=[d["categories"][CRISIS]["buckets"][1], *d["categories"][CRISIS]["buckets"][1:]]
            ),
            "a bucket appears twice",
        ),
        (lambda d: _crisis(d, weights=["x", *d["categories"][CRISIS]["weights"][1:]]), "weights numbers"),
        (lambda d: _crisis(d, window_segments=5), "window_segments must be an integer from 1 to 4 (got 5)"),
        (lambda d: _crisis(d, window_segments=True), "window_segments must be an integer from 1 to 4"),
        (lambda d: _crisis(d, veto_below="low"), "veto_below must be a number at most the threshold"),
        (
            lambda d: _crisis(d, veto_below=d["categories"][CRISIS]["threshold"] + 1),
            "veto_below must be a number at most the threshold",
        ),
    ],
)
def test_malformed_weights_fail_at_start_up_with_one_clear_line(
    tmp_path: Path, mutate, expected: str
) -> None:
    data = mutate(_valid())
    path = tmp_path / "learned_model.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    with pytest.raises(LearnedModelError) as info:
        LearnedModel.load(str(path))
    assert expected in str(info.value) and "\n" not in str(info.value)
    # the engine refuses to start with them (the gateway turns SafetyPolicyError into a start-up error)
    with pytest.raises(SafetyPolicyError, match="learned_model.json"):
        SafetyEngine.from_policy_file(None, model_path=str(path))


def test_weights_without_a_category_a_profile_needs(tmp_path: Path, make_engine) -> None:
    data = _valid()
    data["categories"] = {CRISIS: data["categories"][CRISIS]}
    path = tmp_path / "learned_model.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SafetyPolicyError) as info:
        SafetyEngine.from_policy_file(None, model_path=str(path))
    assert "no weights for medical_emergency, prompt_injection" in str(info.value)
    assert "\n" not in str(info.value)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "profiles:\n  patient:\n    medical_emergency: {action: annotate, model: false}\n"
        "    prompt_injection: {action: block, model: false}\n",
        encoding="utf-8",
    )
    assert SafetyEngine.from_policy_file(str(policy), model_path=str(path)).learned_model.categories == (
        CRISIS,
    )


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(SafetyPolicyError, match="cannot read .*missing.json"):
        SafetyEngine.from_policy_file(None, model_path=str(tmp_path / "missing.json"))
