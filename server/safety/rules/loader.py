"""Reads a category's rule files (YAML, next to the category's module) into Rules and a RuleSet.

A category folder holds one or more YAML files; together they give each key at most once:

    strong / medium / suppress / veto       lists of rules (see ruleset.py for what each tier does)
    veto_unless_now                          vetoes that do not hold when a hit is told as happening now
    weak: {kind: [rules]}                    cues that fire in pairs of different kinds
    combine: {pairs, double, distance}       which kinds pair up, which may pair with themselves, how close
    negation / inner_negation                alternatives of the negation read before / inside a match
    laughed                                  alternatives of a laugh read right after a match
    now                                      alternatives that tell a hit as happening now
    over / ongoing (and any other list)      situation rules the category's module reads by name

A rule is `{rx, why, catches, spares}` plus an optional `gate`: a list of literals, or
`{product: [[...], [...]]}` for every concatenation of one item per list, or a list mixing both.
`{{NAME}}` in a pattern is replaced by the fragment NAME of `fragments.yaml` (phrases several rules share).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import yaml

from server.safety.rules.ruleset import Rule, RuleSet

_RULE_KEYS = frozenset({"rx", "why", "catches", "spares", "gate"})
_TIERS = ("strong", "medium", "suppress", "veto", "veto_unless_now")
_FRAGMENT = re.compile(r"\{\{(\w+)\}\}")


class RuleFileError(ValueError):
    """A rule file that cannot be used; the message names the file and the rule."""


@cache
def fragments() -> dict[str, str]:
    return _read_yaml("server.safety.rules", "fragments.yaml")


@cache
def category_data(package: str) -> dict[str, Any]:
    """Every YAML file of a category package, merged (a key may appear in one file only)."""
    merged: dict[str, Any] = {}
    for entry in sorted(resources.files(package).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        for key, value in _read_yaml(package, entry.name).items():
            if key in merged:
                raise RuleFileError(f"{package}/{entry.name}: {key!r} is already given in another file")
            merged[key] = value
    return merged


def rules(package: str, key: str) -> tuple[Rule, ...]:
    """The rules listed under `key` in a category's files (empty when the key is absent)."""
    return tuple(_rule(package, key, i, raw) for i, raw in enumerate(category_data(package).get(key) or ()))


def rules_of(package: str, key: str, kind: str) -> tuple[Rule, ...]:
    """The rules of one kind under a mapping key (`weak`)."""
    found = (category_data(package).get(key) or {}).get(kind) or ()
    return tuple(_rule(package, f"{key}.{kind}", i, raw) for i, raw in enumerate(found))


def alternatives(package: str, key: str) -> str | None:
    """The rules under `key` joined into one alternation (negations, situations), or None."""
    found = rules(package, key)
    return "|".join(f"(?:{r.pattern})" for r in found) if found else None


def ruleset(package: str, category: str) -> RuleSet:
    data = category_data(package)
    weak = data.get("weak") or {}
    combine = data.get("combine") or {}
    pairs = combine.get("pairs")
    return RuleSet(
        category=category,
        **{tier: rules(package, tier) for tier in _TIERS},
        weak={kind: rules_of(package, "weak", kind) for kind in weak},
        negation=alternatives(package, "negation"),
        inner_negation=alternatives(package, "inner_negation"),
        laughed=alternatives(package, "laughed"),
        now=alternatives(package, "now"),
        double_tags=frozenset(combine.get("double") or ()),
        combos=None if pairs is None else frozenset(frozenset(p) for p in pairs),
        cue_distance=int(combine.get("distance", 240)),
    )


def _read_yaml(package: str, name: str) -> dict[str, Any]:
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict):
        raise RuleFileError(f"{package}/{name}: expected a mapping at the top")
    return data


def _rule(package: str, key: str, index: int, raw: Any) -> Rule:
    where = f"{package} {key}[{index}]"
    if not isinstance(raw, Mapping) or not {"rx", "why", "catches", "spares"} <= raw.keys():
        raise RuleFileError(f"{where}: a rule needs rx, why, catches and spares")
    unknown = raw.keys() - _RULE_KEYS
    if unknown:
        raise RuleFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    pattern = _FRAGMENT.sub(lambda m: _fragment(where, m.group(1)), str(raw["rx"]))
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RuleFileError(f"{where}: bad pattern ({exc})") from None
    gate = _gate(where, raw["gate"]) if "gate" in raw else None
    return Rule(pattern, str(raw["why"]), str(raw["catches"]), str(raw["spares"]), gate)


def _fragment(where: str, name: str) -> str:
    try:
        return fragments()[name]
    except KeyError:
        raise RuleFileError(f"{where}: no fragment {name!r} in fragments.yaml") from None


def _gate(where: str, raw: Any) -> frozenset[str]:
    items = raw if isinstance(raw, list) else [raw]
    out: set[str] = set()
    for item in items:
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, Mapping) and set(item) == {"product"}:
            out.update("".join(p) for p in itertools.product(*item["product"]))
        else:
            raise RuleFileError(f"{where}: a gate is a list of literals or {{product: [[...], ...]}}")
    return frozenset(out)
