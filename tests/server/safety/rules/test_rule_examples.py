"""Every rule holds to its own examples: it catches the text it says it must catch, and spares the near
miss it says it must not (the gated pattern, as the engine runs it, on the text's match view)."""

from __future__ import annotations

import re

import pytest

from server.safety.gate import GateSet
from server.safety.normalize import match_view, normalize
from server.safety.rules import crisis, emergency, injection, loader
from server.safety.rules.ruleset import Rule

# run as gated patterns by the engine
_GATED = ("strong", "medium", "suppress", "veto", "veto_unless_now", "in_answers")


def _all_rules() -> list[tuple[str, str, Rule]]:
    out = []
    for module in (crisis, emergency, injection):
        package = module.__name__
        for key, value in loader.category_data(package).items():
            if key == "weak":
                for kind in value:
                    out += [
                        (f"{package}:weak.{kind}[{i}]", "weak", r)
                        for i, r in enumerate(loader.rules_of(package, "weak", kind))
                    ]
            elif key != "combine":
                out += [(f"{package}:{key}[{i}]", key, r) for i, r in enumerate(loader.rules(package, key))]
    return out


RULES = _all_rules()


def _fires(key: str, rule: Rule, text: str) -> bool:
    view = match_view(normalize(text))
    if key in _GATED or key == "weak":
        pattern = rule.compile()
        return pattern.search(view, GateSet([pattern]).scan(view)) is not None
    return re.search(rule.pattern, view) is not None  # negations and situations: plain alternatives


@pytest.mark.parametrize(("where", "key", "rule"), RULES, ids=[r[0] for r in RULES])
def test_rule_catches_its_example_and_spares_its_near_miss(where: str, key: str, rule: Rule) -> None:
    for field in (rule.why, rule.catches, rule.spares):
        assert field.strip() and field.strip() != "TODO", f"{where}: why, catches and spares must be written"
    assert _fires(key, rule, rule.catches), f"{where} does not catch its example {rule.catches!r}"
    assert not _fires(key, rule, rule.spares), f"{where} fires on its near miss {rule.spares!r}"


def test_every_rule_file_loads_with_its_category() -> None:
    assert len(RULES) > 600  # the three categories' rule files are all read
    for module in (crisis, emergency, injection):
        assert module.compiled().patterns
