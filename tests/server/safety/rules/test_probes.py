"""Regression probes: phrasings written during development, in rounds, after the first dev pass.

Each round was written fresh, checked, and the rules were generalised for what it missed (so these are
tuned cases, like `dev`; the honest estimate is the held-out half). `expect` is the category that must
fire, or null for a hard negative on which nothing may fire (PHI aside where noted).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.safety import SafetyEngine

PROBES = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "eval" / "probes.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


@pytest.mark.parametrize("probe", PROBES, ids=[p["id"] for p in PROBES])
def test_probe(engine: SafetyEngine, probe: dict) -> None:
    got = engine.check_input([{"role": "user", "content": probe["text"]}], "patient").categories
    if probe["expect"]:
        assert probe["expect"] in got
    else:
        # nothing may fire; an age over 89 is PHI (Safe Harbor), so that probe may carry phi
        assert [c for c in got if c != "phi" or not probe.get("phi_ok")] == [], got


def test_long_messages_of_unrelated_benign_sentences_fire_nothing(engine: SafetyEngine) -> None:
    """Cues from different sentences must not combine (a 10-sentence history is not an emergency)."""
    import random

    benign = [p["text"] for p in PROBES if p["expect"] is None and not p.get("phi_ok")]
    rng = random.Random(7)
    for _ in range(60):
        text = " ".join(rng.sample(benign, rng.randint(8, 20)))
        assert engine.check_input([{"role": "user", "content": text}], "patient").categories == [], text


def test_cues_combine_only_within_a_sentence_window(engine: SafetyEngine) -> None:
    near = "My dad has chest pain and is sweating."
    far = (
        "My dad has chest pain after the gym. "
        + "We talked about his diet and his sleep. " * 5
        + "I was sweating too."
    )
    assert engine.check_input([{"role": "user", "content": near}], "patient").categories == [
        "medical_emergency"
    ]
    assert engine.check_input([{"role": "user", "content": far}], "patient").categories == []
    other = "My son is 2 months old. My 3 year old has a fever of 38.5 but is playing."
    assert engine.check_input([{"role": "user", "content": other}], "patient").categories == []
