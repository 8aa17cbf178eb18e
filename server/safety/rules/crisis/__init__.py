"""crisis_self_harm: the writer, or someone they speak for, may harm or kill themselves.

The rules are the YAML files in this folder: `strong.yaml` (strong and medium tiers), `cues.yaml` (weak
cues and how they pair), `context.yaml` (what silences them: clinical framing, negation, an episode long
over) and `answers.yaml` (self-harm method instructions the output guard cuts from an answer).
"""

from __future__ import annotations

import re
from functools import cache

from server.safety.gate import GatedPattern, GateSet, Hits
from server.safety.rules import loader
from server.safety.rules.ruleset import CompiledRules, Rule, SpanList
from server.safety.rules.situation import in_own_voice, told_as_over

CATEGORY = "crisis_self_harm"


@cache
def compiled() -> CompiledRules:
    return loader.ruleset(__name__, CATEGORY).compile()


@cache
def _situation() -> tuple[re.Pattern[str], re.Pattern[str]]:
    return re.compile(loader.alternatives(__name__, "over") or "(?!)"), re.compile(
        loader.alternatives(__name__, "ongoing") or "(?!)"
    )


def patterns() -> list[GatedPattern]:
    """Every pattern the crisis rail runs, for the engine's gate scan."""
    return compiled().patterns


def answer_rules() -> tuple[Rule, ...]:
    """Self-harm method instructions, as the output guard looks for them in an answer."""
    return loader.rules(__name__, "in_answers")


@cache
def _own_gates() -> GateSet:
    return GateSet(patterns())


def detect(view: str, hits: Hits | None = None) -> SpanList:
    """Spans that raise the category in the match view (empty: it does not fire). Self-harm told as long
    over ("I cut myself in high school but quit years ago") with nothing bringing it back does not fire."""
    spans = compiled().find(view, _own_gates().scan(view) if hits is None else hits)
    over, ongoing = _situation()
    if spans and all(told_as_over(view, span, over, ongoing) for span in spans):
        return []
    return spans


def said_outright(view: str, hits: Hits | None = None) -> bool:
    """A strong-tier crisis rule matches words the writer says of themselves: self-harm or suicide said
    outright ("i'm suicidal", 我想自杀, 我不想活了). The learned detector never vetoes such a hit (see the
    engine): it reads "suicidal" mostly in teaching and clinical text and scores "i'm suicidal and my chest
    hurts" low. The same words quoted or said of someone else ("my students joke 'i'm going to kill
    myself'", "her father hanged himself in 1998", 病人说他想死) are left to the detector's veto, which
    reads such reports, fiction and teaching far below its line; a real report of someone at risk, or a
    statement whose subject Chinese drops (不想活了: 4.7 against a line of -1.2), scores high."""
    spans = compiled().outright(view, _own_gates().scan(view) if hits is None else hits)
    return any(in_own_voice(view, span) for span in spans)
