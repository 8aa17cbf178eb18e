"""The evaluation set meets the issue's detection goals (a correctness threshold, on both halves).

`dev` is the half the rules were tuned on; `heldout` was written before any rule existed and was only
scored at the end (see benchmarks/README.md, "Safety layer"), so it is the honest estimate.
"""

from __future__ import annotations

import json

import pytest

from tests.server.safety.conftest import safety_eval


@pytest.fixture(scope="module")
def engine():
    from server.safety import SafetyEngine

    return SafetyEngine.from_policy_file(None)


@pytest.mark.parametrize("split", safety_eval.SPLITS)
def test_eval_set_is_well_formed(split: str) -> None:
    cases = safety_eval.load_cases(split)
    assert len(cases) >= 150
    langs = [c["lang"] for c in cases]
    assert abs(langs.count("en") - langs.count("zh")) <= len(cases) * 0.1  # roughly balanced
    assert sum(not c["labels"] for c in cases) >= 60  # many hard negatives
    for case in cases:
        assert set(case["labels"]) <= set(safety_eval.CATEGORIES), case["id"]
        assert bool(case["phi"]) == ("phi" in case["labels"]), case["id"]
        for span in case["phi"]:  # exact identifier spans
            assert case["text"][span["start"] : span["end"]] == span["text"], case["id"]
    assert len({c["id"] for c in cases}) == len(cases)


def test_halves_do_not_share_cases() -> None:
    dev = {json.dumps(c["text"]) for c in safety_eval.load_cases("dev")}
    held = {json.dumps(c["text"]) for c in safety_eval.load_cases("heldout")}
    assert not dev & held


@pytest.mark.parametrize("split", [*safety_eval.FRESH, *safety_eval.DEVELOPMENT, *safety_eval.UNTUNED])
def test_blind_sets_are_well_formed(split: str) -> None:
    cases = safety_eval.load_cases(split)
    for case in cases:
        assert set(case["labels"]) <= set(safety_eval.CATEGORIES), case["id"]
        assert bool(case["phi"]) == ("phi" in case["labels"]), case["id"]
        for span in case["phi"]:
            assert case["text"][span["start"] : span["end"]] == span["text"], case["id"]
    assert len({c["id"] for c in cases}) == len(cases)


# The blind sets' misses were fixed after their first look, so they now guard against regressions. Benign
# cases that fire by design (safety_eval.BY_DESIGN, each with its reason) are the only false positives allowed
# beyond the goal: any other one fails here.
@pytest.mark.parametrize("split", [*safety_eval.SPLITS, *safety_eval.FRESH])
def test_goals_met(engine, split: str) -> None:
    result = safety_eval.score(engine, safety_eval.load_cases(split), "patient")
    met = safety_eval.goals_met(result)
    benign = result["benign"]
    others = [i for i in benign["false_positive_ids"] if i not in safety_eval.BY_DESIGN]
    met["benign.false_positive_rate"] = (
        len(others) / benign["cases"] <= safety_eval.GOALS["benign.false_positive_rate"]
    )
    assert all(met.values()), (met, result["misses"])


def test_by_design_cases_exist_and_are_benign() -> None:
    cases = {c["id"]: c for split in safety_eval.FRESH for c in safety_eval.load_cases(split)}
    for case_id, reason in safety_eval.BY_DESIGN.items():
        assert case_id in cases and cases[case_id]["labels"] == [] and reason, case_id


def test_pooled_tuned_sets_meet_every_goal(engine) -> None:
    cases = [c for split in (*safety_eval.SPLITS, *safety_eval.FRESH) for c in safety_eval.load_cases(split)]
    result = safety_eval.score(engine, cases, "patient")
    assert all(safety_eval.goals_met(result).values()), safety_eval.goals_met(result)
