"""The literal gate: the windows it runs a pattern in find what a search of the whole text finds."""

from __future__ import annotations

import importlib
import json
import random
import re
from pathlib import Path

import pytest

from server.safety.gate import GatedPattern, GateSet, gate_of
from server.safety.normalize import match_view, normalize, with_ascii_digits
from server.safety.phi import patterns as phi_patterns
from server.safety.phi.name_cues import surname_kin_starts
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


_ZN = "[〇零幺一二三四五六七八九]"
# the plain forms of patterns rewritten to open with a character class (a pattern that opens with a
# look-behind or an alternation is tried at every position; Python's re skips to where a class matches): the
# rewritten ones must match exactly where these do
PLAIN_FORMS = {
    ("normalize", "_SPACED_LATIN"): (
        r"(?<![a-z0-9])(?:[a-z][ .\-_*]){3,}[a-z](?![a-z0-9])",
        "ab k m y . - _ * 0 1\n",
    ),
    ("normalize", "_SPACED_CJK"): ("(?:[\u4e00-\u9fff] ){2,}[\u4e00-\u9fff]", "想 死 a  。"),
    ("normalize", "_OCR_RUN"): (
        r"(?<![A-Za-z0-9])[0-9OolI|](?:[0-9OolI|]|[ /.\-](?=[0-9OolI|])){4,}(?![A-Za-z0-9])",
        "0O7lI| /.-a",
    ),
    ("normalize", "_ZH_DIGIT_RUN"): (f"{_ZN}{{5,}}|{_ZN}{{2,4}}(?:[ -]{_ZN}{{2,4}}){{1,4}}", "一二零幺 -a"),
    ("phi.regional", "_PAN"): (
        r"(?<![A-Za-z0-9])[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z](?![A-Za-z0-9])",
        "ABCPTXZ0123456789 a-",
    ),
    ("phi.addresses", "_POSTCODES"): (
        r"(?<![A-Za-z0-9])(?:(?:[A-PR-UWYZ][A-HK-Y]?\d[A-HJKPSTUW\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}"
        r"|[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d)(?![A-Za-z0-9])",
        "ABDEGHIJKLMNPRSWXYZ0123456789 a",
    ),
}


@pytest.mark.parametrize("where", sorted(PLAIN_FORMS))
def test_class_first_patterns_match_as_their_plain_forms(where: tuple[str, str]) -> None:
    module = importlib.import_module(f"server.safety.{where[0]}")
    plain, alphabet = PLAIN_FORMS[where]
    plain_rx, ours = re.compile(plain), getattr(module, where[1])
    rng = random.Random(where[1])
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        assert [m.span() for m in ours.finditer(text)] == [m.span() for m in plain_rx.finditer(text)], text


def test_surname_kin_pairs_are_read_left_to_right_without_overlap() -> None:
    plain = re.compile("[\u4e00-\u9fff](?:伯|叔|姨|姐|哥|嫂|婶|太|生|婆|公|总)")
    rng = random.Random(3)
    for _ in range(20_000):
        text = "".join(rng.choice("伯叔姨姐哥嫂婶太生婆公总王李张 a，") for _ in range(rng.randint(1, 14)))
        assert surname_kin_starts(text) == [m.start() for m in plain.finditer(text)], text
    assert surname_kin_starts("王叔叔和李哥") == [0, 4]


def test_plain_reading_finds_spacing_and_leetspeak_as_the_patterns_do() -> None:
    """The shortcuts plain_reading takes (a spaced Chinese run found from its spaces; leet tokens read only in
    the runs around a leet character) agree with the patterns read over the whole text."""
    from server.safety import normalize as n

    rng = random.Random(5)
    for _ in range(20_000):
        text = "".join(rng.choice("ab k1l3 m y 想 死 . @ $ 2 9 0\n") for _ in range(rng.randint(1, 30)))
        assert (n._SPACED_CJK_AT.search(text) is None) == (n._SPACED_CJK.search(text) is None), text
        words = {t for t in n._LEET_TOKEN.findall(text) if n._LEET_WORD.search(t)}
        assert n._two_leet_words(text) == (len(words) >= 2), text
