"""How a category's rules decide: the tiers, and what silences them.

A category (crisis, emergency, injection) is a `RuleSet` of `Rule`s in tiers, read on the lower-cased
match view of a message (see normalize.py):

- strong: fires on its own, unless a negation sits right before it ("I'm not going to kill myself") or a
  laugh right after it ("one more salad and I want to die haha");
- medium: fires unless the message is framed as clinical, academic or hypothetical (the context tier);
- weak: a cue of some kind (a method, an intent, a farewell...) that fires only together with a cue of
  another kind close by ("how many would it take" + "I'm ready"), also silenced by the context tier;
- context: `suppress` rules silence the medium and weak tiers; `veto` rules silence every tier;
  `veto_unless_now` rules silence every tier too, unless a hit is told as happening now (a `now` word
  just before it in its sentence: "I'm asking ahead... " vetoes, "... and now he is not breathing" does not).

Every rule carries why it exists, one text it must catch and one it must not; tests hold each rule to
both. Rules are written in lower case (the view is lower case) and compiled without IGNORECASE, which
would also switch off the regex engine's literal-prefix search.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from server.safety.gate import GatedPattern, Hits
from server.safety.rules.situation import sentence

SpanList = list[tuple[int, int]]


@dataclass(frozen=True)
class Rule:
    """One pattern, why it is there, and a text it must catch and one it must not (both checked by tests).

    `gate`: the literals that let the rule run, when the regex's own would be everywhere (a space, say)."""

    pattern: str
    why: str
    catches: str
    spares: str
    gate: frozenset[str] | None = None

    def compile(self) -> GatedPattern:
        return GatedPattern(self.pattern, literals=self.gate)


@dataclass(frozen=True)
class RuleSet:
    """A category's rules by tier, and how its weak cues combine."""

    category: str
    strong: tuple[Rule, ...] = ()
    medium: tuple[Rule, ...] = ()
    weak: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)  # cue kind -> rules
    suppress: tuple[Rule, ...] = ()
    veto: tuple[Rule, ...] = ()
    # vetoes that do not hold when a hit is told as happening now ("asked ahead", "a seizure last week")
    veto_unless_now: tuple[Rule, ...] = ()
    # what tells a hit as happening now ("now", "现在"), read in the hit's sentence just before it
    now: str | None = None
    # a negation right before a match (the 24 characters before it)
    negation: str | None = None
    # a negation inside a match, before its key term ("i'm not suicidal")
    inner_negation: str | None = None
    # a laugh right after a match, read from its end ("i want to die haha", 想死😂): hyperbole
    laughed: str | None = None
    # a cue kind that may count twice when two different rules of it match apart (two farewell acts)
    double_tags: frozenset[str] = frozenset()
    # when set, only these pairs of cue kinds fire (otherwise any two different kinds do)
    combos: frozenset[frozenset[str]] | None = None
    # weak cues further apart than this (characters) do not combine
    cue_distance: int = 240

    def rules(self) -> Iterator[tuple[str, Rule]]:
        """(tier, rule) for every rule, weak ones as "weak:<kind>"."""
        for tier in ("strong", "medium", "suppress", "veto", "veto_unless_now"):
            for rule in getattr(self, tier):
                yield tier, rule
        for kind, rules in self.weak.items():
            for rule in rules:
                yield f"weak:{kind}", rule

    def compile(self) -> CompiledRules:
        return CompiledRules(self)


class CompiledRules:
    """A RuleSet's compiled patterns and the decision over them."""

    def __init__(self, rules: RuleSet) -> None:
        self.category = rules.category
        self.strong = [r.compile() for r in rules.strong]
        self.medium = [r.compile() for r in rules.medium]
        self.suppress = [r.compile() for r in rules.suppress]
        self.veto = [r.compile() for r in rules.veto]
        self.veto_unless_now = [r.compile() for r in rules.veto_unless_now]
        self.now = re.compile(rules.now) if rules.now else None
        # (kind, pattern, ordinal): the ordinal tells two rules of one kind apart (double_tags)
        self.weak = [(kind, r.compile()) for kind, rs in rules.weak.items() for r in rs]
        self._weak = {p: (kind, n) for n, (kind, p) in enumerate(self.weak)}
        self.negation = re.compile(rules.negation) if rules.negation else None
        self.inner_negation = re.compile(rules.inner_negation) if rules.inner_negation else None
        self.laughed = re.compile(rules.laughed) if rules.laughed else None
        self.double_tags = rules.double_tags
        self.combos = rules.combos
        self.cue_distance = rules.cue_distance
        # Only rules whose gate literals occur in the text run at all: each tier is a set, intersected
        # with the scan's hits (a C-level set operation instead of a loop over hundreds of rules).
        self._strong = frozenset(self.strong)
        self._medium = frozenset(self.medium)
        self._suppress = frozenset(self.suppress)

    @property
    def patterns(self) -> list[GatedPattern]:
        """Every pattern, for the GateSet that scans for their literals."""
        return [
            *self.strong,
            *self.medium,
            *self.suppress,
            *self.veto,
            *self.veto_unless_now,
            *(p for _, p in self.weak),
        ]

    def find(self, view: str, hits: Hits) -> SpanList:
        """Spans that make the category fire (empty when it does not)."""
        if self.veto and any(v.search(view, hits) for v in self.veto):
            return []
        spans = self._unvetoed(view, hits)
        if spans and any(v.search(view, hits) for v in self.veto_unless_now):
            # asked ahead or told as past, unless the same text tells a hit as happening now
            return spans if any(self._told_as_now(view, a, b) for a, b in spans) else []
        return spans

    def outright(self, view: str, hits: Hits) -> SpanList:
        """The strong-tier matches (not negated): where the category is said outright."""
        return self._spans(self._strong, view, hits)

    def _told_as_now(self, view: str, start: int, end: int) -> bool:
        """A `now` word in the hit's sentence, in the 40 characters before it or inside it."""
        if self.now is None:
            return False
        return self.now.search(view, max(sentence(view, start)[0], start - 40), end) is not None

    def _unvetoed(self, view: str, hits: Hits) -> SpanList:
        spans = self._spans(self._strong, view, hits)
        if spans:
            return sorted(spans)
        if any(p.search(view, hits) for p in self._suppress & hits.keys()):
            return []
        spans = self._spans(self._medium, view, hits)
        if spans:
            return sorted(spans)
        return self._weak_combination(view, hits)

    def _negated(self, view: str, start: int, end: int | None = None) -> bool:
        if self.negation is not None and self.negation.search(view, max(0, start - 24), start) is not None:
            return True
        if end is None:
            return False
        # "i'm not suicidal": the negation sits inside the match, before its key term
        if self.inner_negation is not None and self.inner_negation.search(view, start, end) is not None:
            return True
        # "one more salad and i want to die haha": a laugh right after it
        return self.laughed is not None and self.laughed.match(view, end) is not None

    def _spans(self, tier: frozenset[GatedPattern], view: str, hits: Hits) -> SpanList:
        return [
            m.span()
            for p in tier & hits.keys()
            for m in p.finditer(view, hits)
            if not self._negated(view, m.start(), m.end())
        ]

    def _weak_combination(self, view: str, hits: Hits) -> SpanList:
        """Two cues of different kinds close together (one message can hold unrelated sentences)."""
        cues: list[tuple[int, int, str, int]] = []  # start, end, kind, rule ordinal
        for p in self._weak.keys() & hits.keys():
            kind, n = self._weak[p]
            cues.extend(
                (m.start(), m.end(), kind, n)
                for m in p.finditer(view, hits)
                if not self._negated(view, m.start())
            )
        cues.sort()
        for k, (start, end, kind, rule) in enumerate(cues):
            cjk = view[start] >= "\u2e80"
            for other in cues[k + 1 :]:
                if other[0] - start > self.cue_distance:
                    break
                # a Chinese cue and an English one come from different sentences (a pasted list of questions)
                if (view[other[0]] >= "\u2e80") != cjk:
                    continue
                if other[2] != kind:
                    pair = frozenset((kind, other[2]))
                    if self.combos is None or pair in self.combos:
                        return [(start, end), other[:2]]
                # two different acts of one kind; two rules matching one phrase are one act, not two
                elif kind in self.double_tags and other[3] != rule and other[0] >= end:
                    return [(start, end), other[:2]]
        return []
