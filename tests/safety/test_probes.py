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

PROBES = [json.loads(line) for line in (Path(__file__).parent / "eval" / "probes.jsonl").read_text(
    encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("probe", PROBES, ids=[p["id"] for p in PROBES])
def test_probe(engine: SafetyEngine, probe: dict) -> None:
    got = engine.check_input([{"role": "user", "content": probe["text"]}], "patient").categories
    if probe["expect"]:
        assert probe["expect"] in got
    else:
        # nothing may fire; an age over 89 is PHI (Safe Harbor), so that probe may carry phi
        assert [c for c in got if c != "phi" or not probe.get("phi_ok")] == [], got
