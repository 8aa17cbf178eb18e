"""The rule file format: a broken rule file stops with one line naming the file and the rule, and nothing
is loaded or compiled when the safety package is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from server.safety.rules import loader

RULE = {"rx": r"\bexample\b", "why": "a reason", "catches": "an example", "spares": "a sample"}


@pytest.fixture
def category(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A throwaway category package whose files the test writes."""
    pkg = tmp_path / "rulecat"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("rulecat", None)  # each test's package lives in its own tmp_path
    loader.category_data.cache_clear()

    def write(**files: dict) -> str:
        for name, data in files.items():
            (pkg / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        loader.category_data.cache_clear()
        return "rulecat"

    yield write
    sys.modules.pop("rulecat", None)
    loader.category_data.cache_clear()


def test_a_valid_category_loads_its_tiers_cues_and_combinations(category) -> None:
    pkg = category(
        strong={"strong": [RULE]},
        cues={"weak": {"a": [RULE], "b": [RULE]}, "combine": {"pairs": [["a", "b"]], "distance": 50}},
        context={"negation": [RULE, {**RULE, "rx": "never"}]},
    )
    rules = loader.ruleset(pkg, "cat")
    assert [r.pattern for r in rules.strong] == [r"\bexample\b"]
    assert set(rules.weak) == {"a", "b"} and rules.combos == frozenset({frozenset({"a", "b"})})
    assert rules.cue_distance == 50
    assert rules.negation == r"(?:\bexample\b)|(?:never)"


def test_fragments_are_substituted_and_gates_expand_products(category) -> None:
    pkg = category(
        strong={
            "strong": [{**RULE, "rx": "a {{SELF}}", "gate": [{"product": [["x", "y"], ["1", "2"]]}, "z"]}]
        }
    )
    (rule,) = loader.rules(pkg, "strong")
    assert rule.pattern == "a " + loader.fragments()["SELF"]
    assert rule.gate == frozenset({"x1", "x2", "y1", "y2", "z"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"rx": "x", "why": "w", "catches": "c"}, "a rule needs rx, why, catches and spares"),
        ({**RULE, "colour": "red"}, "unknown key"),
        ({**RULE, "rx": "(unclosed"}, "bad pattern"),
        ({**RULE, "rx": "{{NO_SUCH_FRAGMENT}}"}, "no fragment 'NO_SUCH_FRAGMENT'"),
        ({**RULE, "gate": {"sum": [1]}}, "a gate is a list of literals"),
    ],
)
def test_a_broken_rule_names_its_place_and_problem(category, raw: dict, message: str) -> None:
    pkg = category(strong={"strong": [RULE, raw]})
    with pytest.raises(loader.RuleFileError, match=r"rulecat strong\[1\]: .*" + message.split("'")[0]):
        loader.rules(pkg, "strong")


def test_a_key_given_in_two_files_is_refused(category) -> None:
    pkg = category(a={"strong": [RULE]}, b={"strong": [RULE]})
    with pytest.raises(loader.RuleFileError, match="'strong' is already given in another file"):
        loader.category_data(pkg)


def test_importing_the_safety_package_compiles_no_rule() -> None:
    code = (
        "import server.safety, server.safety.rules as r\n"
        "from server.safety.rules import loader\n"
        "assert loader.category_data.cache_info().currsize == 0\n"
        "assert all(m.compiled.cache_info().currsize == 0 for m in (r.crisis, r.emergency, r.injection))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
