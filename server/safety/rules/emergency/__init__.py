"""medical_emergency: someone needs emergency care now (stroke, heart attack, anaphylaxis, overdose,
poisoning, heavy bleeding, a seizure that will not stop, an infant's fever, ...).

The rules are the YAML files in this folder: `strong.yaml`, `cues.yaml` (pairs of cues, such as chest
pain with a cold sweat) and `context.yaml` (role-play and exam framing, hypotheticals, an episode told
as over); `infant.py` reads infants' ages and fevers, which a pattern alone cannot weigh.
"""

from __future__ import annotations

import re
from functools import cache

from server.safety.gate import GatedPattern, GateSet, Hits
from server.safety.rules import loader
from server.safety.rules.emergency.infant import FEVERS, RED_FLAG, infant_fever
from server.safety.rules.ruleset import CompiledRules, SpanList
from server.safety.rules.situation import told_as_over

CATEGORY = "medical_emergency"


@cache
def compiled() -> CompiledRules:
    return loader.ruleset(__name__, CATEGORY).compile()


@cache
def _situation() -> tuple[re.Pattern[str], re.Pattern[str]]:
    return re.compile(loader.alternatives(__name__, "over") or "(?!)"), re.compile(
        loader.alternatives(__name__, "ongoing") or "(?!)"
    )


def patterns() -> list[GatedPattern]:
    """Every pattern the emergency rail runs, for the engine's gate scan."""
    return [*compiled().patterns, *FEVERS, RED_FLAG]


@cache
def _own_gates() -> GateSet:
    return GateSet(patterns())


def detect(view: str, hits: Hits | None = None) -> SpanList:
    """Spans that raise the category in the match view (empty: it does not fire). An emergency told as
    history that is over ("it stopped after 10 minutes", "孩子两年前发烧的时候抽过一次") does not fire
    unless its own sentence brings it into the present ("again", "still", "又", "还在")."""
    hits = _own_gates().scan(view) if hits is None else hits
    spans = compiled().find(view, hits) or infant_fever(view, hits)
    over, ongoing = _situation()
    if spans and all(told_as_over(view, span, over, ongoing) for span in spans):
        return []
    return spans


def well_now(view: str) -> bool:
    """The message tells the person as well or the episode as over ("a fever of 38.5 but is playing and
    eating normally", "后来就好了") and says nothing that brings it back ("again", "still", "又"): the
    learned detector's firing on such a turn, with no rule behind it, is dropped (see the engine)."""
    over, ongoing = _situation()
    told = [m.span() for m in over.finditer(view)]
    # "never happened again" tells it over: an ongoing word inside an over phrase brings nothing back
    back = (m for m in ongoing.finditer(view) if not any(a <= m.start() < b for a, b in told))
    return bool(told) and next(back, None) is None
