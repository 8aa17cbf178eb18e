"""The literal gate: the windows it runs a pattern in find what a search of the whole text finds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from server.safety.gate import GatedPattern, GateSet, gate_of
from server.safety.normalize import match_view, normalize, with_ascii_digits
from server.safety.phi import patterns as phi_patterns
from server.safety.rules import all_patterns

DEV = Path(__file__).parent / "eval" / "dev.jsonl"
# sixteen words, then a space, then six: the literal run the gate picks ("myself", "herself", ...) starts
# after characters the match has already consumed
KILL_SELF = (
    r"\b(?:kill(?:ing|ed)?|hang(?:ing|ed)?|shoot(?:ing)?|drown(?:ing)?|suffocat(?:e|ing)|off(?:ing)?"
    r"|starv(?:e|ing)) (?:my|him|her|them|your|our)sel(?:f|ves)\b"
)


def _gated(pattern: GatedPattern, text: str) -> list[tuple[int, int]]:
    hits = GateSet([pattern]).scan(text.lower())
    return [m.span() for m in pattern.finditer(text, hits)]


def test_a_literal_after_consumed_text_does_not_start_the_match() -> None:
    literals, starts_there = gate_of(KILL_SELF)  # type: ignore[misc]
    assert "myself" in literals and not starts_there
    assert _gated(GatedPattern(KILL_SELF), "kill myself tonight") == [(0, 11)]
    assert _gated(GatedPattern(KILL_SELF), "why would anyone be suffocating themselves") == [(20, 42)]


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (
            "(?<!不)想死",
            "我不想死",
            [],
        ),  # the window starts at the literal: the look-behind still sees before it
        ("(?<!不)想死", "我想死", [(1, 3)]),
        (r"\bdie\b", "studied", []),
        ("想死(?!你)", "想死你了", []),  # the window reaches as far as the look-ahead reads
        ("(?:患者|病人)[ :]*([A-Z][a-z]+)", "患者 Anna, 病人:Ben 患者", [(0, 7), (9, 15)]),
        ("(?:患者|病人)[ :]*([A-Z][a-z]+)", "患者患者 Anna", [(2, 9)]),
    ],
)
def test_look_arounds_and_anchored_matches(pattern: str, text: str, found: list[tuple[int, int]]) -> None:
    assert _gated(GatedPattern(pattern), text) == found


def _texts() -> list[str]:
    texts = [
        json.loads(line)["text"] for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    rng = random.Random(7)
    # long texts: many windows per pattern, merged and apart
    texts += [" ".join(rng.sample(texts, 12)) for _ in range(20)]
    return texts


def test_exact_windows_find_every_match_of_the_whole_text() -> None:
    """Every rule and PHI pattern whose gate is read out of it and whose matches fit its window: the gated
    search finds exactly what the plain regex finds, in the match view and in the text as written."""
    gated = [p for p in dict.fromkeys([*all_patterns(), *phi_patterns()]) if p.exact]
    assert len(gated) > 300 and any(p.anchored for p in gated) and not all(p.anchored for p in gated)
    gates = GateSet(gated)
    for raw in _texts():
        text = with_ascii_digits(normalize(raw))
        view = match_view(text)
        hits = gates.scan(view)
        for p in gated:
            for s in (view, text):
                assert [m.span() for m in p.finditer(s, hits)] == [m.span() for m in p.regex.finditer(s)], (
                    p.pattern[:80]
                )
