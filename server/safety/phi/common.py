"""What the PHI recognisers share: the identifier shape, the separators after a context word, and the
gated-pattern helpers (every recogniser runs only where its gate literals occur; see gate.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from server.safety.gate import NUMERIC, GatedPattern, Hits
from server.safety.verdict import Span

I = re.IGNORECASE  # noqa: E741 - the re module's own name for the flag
NUMERIC_GATE = frozenset({NUMERIC})  # windows around identifier-like runs of digits (gate.NUMERIC)
Finder = Callable[[str, Hits], Iterator[Span]]


def rx(
    pattern: str,
    flags: int = 0,
    literals: frozenset[str] | None = None,
    window: int = 200,
    prefix: bool = False,
) -> GatedPattern:
    """A recogniser's pattern (window: how far from its gate literal a match may reach)."""
    return GatedPattern(pattern, flags, literals, window, prefix)


def run(pattern: GatedPattern, text: str, hits: Hits) -> Iterator[re.Match[str]] | tuple[()]:
    """Matches of a gated pattern; nothing at all (not even a generator) when its literals are absent."""
    return pattern.finditer(text, hits) if pattern in hits else ()


def simple(pattern: GatedPattern, entity: str, group: int = 0) -> Finder:
    def find(text: str, hits: Hits) -> Iterator[Span]:
        for m in run(pattern, text, hits):
            yield m.start(group), m.end(group), entity

    return find


# an identifier: one token holding a digit, optionally a short letter prefix ("RN 884213") and further
# digit groups ("3301 2345 6789 0123")
ID = r"((?:[A-Za-z]{1,4}[ -])?[A-Za-z0-9]*\d[A-Za-z0-9]*(?:[-.·][A-Za-z0-9]+)*(?: \d{2,6}\b)*)"
# separators between a context word and its identifier, allowing "device ID on my CGM is ..." and, before
# "is"/"was" only, a longer place: "account number at the billing office is ...", "member ID with my plan
# was", or a named one: "MRN at St. Luke's is ...", "member ID with Blue Shield was ..."
SEP = (
    r"(?:\s+(?:on|of|for|in|from)\s+(?:my|the|his|her|our|their)(?:\s+[\w-]+){1,2}"
    r"|\s+(?:at|with|under|through)\s+(?:(?:my|the|his|her|our|their)(?:\s+[\w'-]+){1,3}"
    r"|[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,3})"
    r"(?=\s+(?:is|was)\b))?"
    r"[\s:：#.,=是为]*(?:(?:is|number|no\.?|num|id)[\s:：#.]*)*"
)
