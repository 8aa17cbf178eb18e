"""Literal gates: run a regex only near the words it cannot match without.

Python's `re` tries every branch of an alternation at every position, so a few hundred bilingual
rules over a 4,000-character message cost tens of milliseconds. Every rule, however, needs some
literal text to match ("suicid", "drooping", "病历"). `required_literals` reads that set out of the
parsed pattern; a `GateSet` finds all gate literals of all its rules in one Aho-Corasick pass
(ahocorasick_rs, the Rust aho-corasick crate) over the lower-cased view, and each rule runs only in a
window around its literals. Rules whose literals are absent cost nothing; the window bounds the cost of
the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import ahocorasick_rs

try:  # Python >= 3.11
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

_MAX_LITERALS = 256
_WINDOW = 120  # characters either side of a literal that an unbounded rule may reach
_MAX_WINDOWS = 64  # beyond this many occurrences scanning the whole text is cheaper
_MARGIN = 24  # around windows whose geometry is not exact (a look-ahead such as " through my nose" is 16)


_MAX_PRODUCT = 64


def _exact(op, arg) -> frozenset[str] | None:
    """All strings one parsed item can match, when that is a small finite set (else None)."""
    if op is _c.LITERAL:
        return frozenset({chr(arg)})
    if op is _c.AT:
        return frozenset({""})  # zero-width (\b, ^): does not break a literal run
    if op is _c.IN:
        chars = [chr(a) for o, a in arg if o is _c.LITERAL]
        return frozenset(chars) if chars and len(chars) == len(arg) and len(chars) <= 4 else None
    if op is _c.SUBPATTERN:
        return _exact_seq(list(arg[-1]))
    if op is _c.BRANCH:
        out: set[str] = set()
        for b in arg[1]:
            sub = _exact_seq(list(b))
            if sub is None:
                return None
            out |= sub
        return frozenset(out) if len(out) <= _MAX_PRODUCT else None
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and arg[0] == 0 and arg[1] == 1:
        sub = _exact_seq(list(arg[2]))
        return None if sub is None else sub | {""}
    return None


def _exact_seq(items: list) -> frozenset[str] | None:
    run: frozenset[str] = frozenset({""})
    for op, arg in items:
        e = _exact(op, arg)
        if e is None or len(run) * len(e) > _MAX_PRODUCT:
            return None
        run = frozenset(a + b for a in run for b in e)
    return run


def _quality(s: frozenset[str]) -> tuple[int, int, int]:
    shortest = min(len(x) for x in s)
    # a single ASCII character (a digit, "m") is everywhere; a single Chinese character is selective
    good = shortest >= 2 or all(not x.isascii() for x in s)
    return (int(good), shortest, -len(s))


_ZERO_WIDTH = (_c.AT, _c.ASSERT, _c.ASSERT_NOT)
Gate = tuple[frozenset[str], bool]  # (literals, True when a match starts at its literal)


def _seq(items: list) -> Gate | None:
    """Best required-literal set for a sequence of parsed items (None: nothing is required)."""
    candidates: list[Gate] = []
    run: frozenset[str] = frozenset({""})
    run_at_start = True  # the current literal run began before any character-consuming item
    consumed = False

    def flush() -> None:
        if "" not in run:
            candidates.append((run, run_at_start))

    for op, arg in items:
        e = _exact(op, arg)
        if e is not None and len(run) * len(e) <= _MAX_PRODUCT:
            run = frozenset(a + b for a in run for b in e)
            continue
        flush()
        # nothing before this item consumed a character: neither an earlier item nor the literal run so far
        at_start = not consumed and not any(run)
        if op not in _ZERO_WIDTH or any(run):
            consumed = True
        run, run_at_start = (e, at_start) if e is not None else (frozenset({""}), False)
        sub: Gate | None = None
        if op is _c.SUBPATTERN:
            sub = _seq(list(arg[-1]))
        elif op is _c.BRANCH:
            sub = _branch(arg[1])
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and arg[0] >= 1:
            sub = _seq(list(arg[2]))
            sub = (sub[0], False) if sub else None
        if sub:
            candidates.append((sub[0], sub[1] and at_start))
    flush()
    if not candidates:
        return None
    return max(candidates, key=lambda g: _quality(g[0]))


def _branch(branches: list) -> Gate | None:
    out: set[str] = set()
    prefix = True
    for b in branches:
        sub = _seq(list(b))
        if not sub:
            return None
        out |= sub[0]
        prefix = prefix and sub[1]
    return frozenset(out), prefix


def gate_of(pattern: str, flags: int = 0) -> Gate | None:
    """Literals one of which every match contains (lower-cased), and whether matches start there."""
    try:
        parsed = _p.parse(pattern, flags)
    except re.error:
        return None
    found = _seq(list(parsed))
    if not found or len(found[0]) > _MAX_LITERALS:
        return None
    return frozenset(s.lower() for s in found[0]), found[1]


def required_literals(pattern: str, flags: int = 0) -> frozenset[str] | None:
    gate = gate_of(pattern, flags)
    return gate[0] if gate else None


NUMERIC = "#numeric"  # pseudo-literal: windows around runs of digits (phone numbers, IDs, numeric dates)
_NUM_RUN = re.compile(r"\d[\d\s().+/:-]{3,}\d")
_NUM_SEPARATORS = re.compile(r"[./-]")


def _identifier_like(run: str) -> bool:
    """Runs that can hold an identifier: >= 6 digits (phones, IDs) or >= 2 separators (dates, IPs).
    Lab values and blood pressures ("135/85", "8.1") do not qualify, so their rules never run."""
    digits = sum(c.isdigit() for c in run)
    return digits >= 6 or (digits >= 3 and len(_NUM_SEPARATORS.findall(run)) >= 2)


Hits = dict["GatedPattern", list[int]]  # pattern -> positions in the view where its gate literals start


_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", _c.MAX_REPEAT))


def _lookahead_reach(items: Iterable) -> int:
    """How far past a match the pattern's look-ahead assertions read (at most _MARGIN)."""
    reach = 0
    for op, arg in items:
        if op in (_c.ASSERT, _c.ASSERT_NOT) and arg[0] == 1:
            reach = max(reach, arg[1].getwidth()[1] + _lookahead_reach(arg[1]))
        elif op is _c.SUBPATTERN:
            reach = max(reach, _lookahead_reach(arg[-1]))
        elif op is _c.BRANCH:
            reach = max([reach, *(_lookahead_reach(b) for b in arg[1])])
        elif op in _REPEATS:
            reach = max(reach, _lookahead_reach(arg[2]))
        if reach >= _MARGIN:
            return _MARGIN
    return reach


class GatedPattern:
    """A compiled regex plus the literal gate that decides where it needs to run.

    `literals` overrides the gate read out of the regex (for rules whose own literals are everywhere, a
    space say); `prefix` then says whether matches start at their literal."""

    __slots__ = ("ahead", "anchored", "before", "exact", "literals", "regex", "window")

    def __init__(
        self,
        pattern: str,
        flags: int = 0,
        literals: frozenset[str] | None = None,
        window: int = _WINDOW,
        prefix: bool = False,
    ) -> None:
        self.regex = re.compile(pattern, flags)
        gate = gate_of(pattern, flags) if literals is None else (literals, prefix)
        self.literals = gate[0] if gate else None
        # a match cannot reach further from its literal than the pattern's longest match; a match that
        # starts at its literal cannot begin before it
        parsed = _p.parse(pattern, flags)
        longest = parsed.getwidth()[1]
        self.window = min(window, longest + 2)
        self.before = 0 if gate and gate[1] else self.window
        reach = _lookahead_reach(parsed)
        self.exact = literals is None and gate is not None and longest + 2 <= window and reach < _MARGIN
        if self.exact:
            # a gate read out of the pattern, every match within the window: the windows find exactly the
            # matches of the whole text. A search that stops at `endpos` reads the text as ending there, so a
            # window reaches past the match as far as the pattern's look-aheads read; one from `pos` still
            # sees the text before it (look-behind, \b). A match that starts at its literal is tried there
            # only, where a window's finditer would try every position in it.
            self.ahead = self.window + reach
            self.anchored = self.before == 0
        else:
            # a gate given by hand (its literals need not start or even lie in every match: a run of digits, a
            # word's edge), a match longer than the window or a far look-ahead: a margin either side
            self.before, self.ahead = self.before + _MARGIN, self.window + _MARGIN
            self.anchored = False

    @property
    def pattern(self) -> str:
        return self.regex.pattern

    def _windows(self, spots: list[int]) -> list[tuple[int, int]] | None:
        if len(spots) > _MAX_WINDOWS:
            return None  # scanning everything is cheaper than this many windows
        back, ahead = self.before, self.ahead
        if len(spots) == 1:  # the common case: one literal occurrence
            at = spots[0]
            return [(at - back if at > back else 0, at + ahead)]
        spots.sort()
        windows: list[tuple[int, int]] = []
        first = spots[0]
        start, end = (first - back if first > back else 0), first + ahead
        for at in spots[1:]:
            if at - back <= end:
                end = at + ahead  # spots ascend and every window has the same width: the end only grows
            else:
                windows.append((start, end))
                start, end = at - back, at + ahead
        windows.append((start, end))
        return windows

    def finditer(self, text: str, hits: Hits) -> Iterator[re.Match[str]]:
        """Matches in `text`, using the gate hits that GateSet.scan found in its lower-cased view."""
        if self.literals is None:
            return self.regex.finditer(text)
        spots = hits.get(self)
        if not spots:
            return iter(())
        windows = self._windows(spots)
        if windows is None:
            return self.regex.finditer(text)
        if self.anchored:
            return self._anchored(text, windows, spots)
        if len(windows) == 1:
            return self.regex.finditer(text, *windows[0])
        return self._merged(text, windows)

    def _anchored(
        self, text: str, windows: list[tuple[int, int]], spots: list[int]
    ) -> Iterator[re.Match[str]]:
        """The matches finditer finds in the windows, for a pattern whose matches start at its literals: each
        literal's place tried once, left to right, skipping those inside the match before."""
        last_end = 0
        k, ordered = 0, sorted(set(spots))
        for _, end in windows:
            while k < len(ordered) and ordered[k] < end:
                at = ordered[k]
                k += 1
                if at >= last_end and (m := self.regex.match(text, at, end)) is not None:
                    last_end = m.end()
                    yield m

    def _merged(self, text: str, windows: list[tuple[int, int]]) -> Iterator[re.Match[str]]:
        """Matches of several windows in order, without the repeats where windows' matches overlap."""
        last_end = -1
        for start, end in windows:
            for m in self.regex.finditer(text, start, end):
                if m.start() >= last_end:
                    last_end = m.end()
                    yield m

    def search(self, text: str, hits: Hits) -> re.Match[str] | None:
        return next(self.finditer(text, hits), None)


class GateSet:
    """Patterns sharing one Aho-Corasick automaton: one pass over the text finds every gate literal.

    Built from an explicit list of patterns (the rails build theirs when the engine is made): no pattern
    registers itself anywhere when its module is imported."""

    def __init__(self, patterns: Iterable[GatedPattern]) -> None:
        self.patterns = list(dict.fromkeys(patterns))  # a pattern shared by two lists is scanned once
        owners: dict[str, list[GatedPattern]] = {}
        self._numeric: list[GatedPattern] = []
        for gp in self.patterns:
            for lit in gp.literals or ():
                if lit == NUMERIC:
                    self._numeric.append(gp)
                else:
                    owners.setdefault(lit, []).append(gp)
        # per literal of the automaton, the patterns it gates
        self._owners: list[tuple[GatedPattern, ...]] = [tuple(gps) for gps in owners.values()] or [()]
        # the Rust crate's automaton: pyahocorasick, used before, took 0.37 ms per 4,000 Chinese characters
        # against 0.08 ms for English (hundreds of CJK first characters make its per-node lookup slow);
        # this one takes 0.08 / 0.04 ms
        self._automaton = ahocorasick_rs.AhoCorasick(
            list(owners) or ["\x00\x00"], matchkind=ahocorasick_rs.MatchKind.Standard
        )

    def scan(self, view: str) -> Hits:
        """For each pattern whose gate literals occur in `view`, where they start."""
        spots: Hits = {}
        owners = self._owners
        # newlines around the text let literals that need a word edge (" terrace\n", "\nmarch") match at
        # its very start and end; positions are shifted back by the leading one
        for lit, start, _end in self._automaton.find_matches_as_indexes("\n" + view + "\n", overlapping=True):
            for gp in owners[lit]:
                found = spots.get(gp)
                if found is None:
                    spots[gp] = [start - 1]
                elif len(found) <= _MAX_WINDOWS:
                    found.append(start - 1)
        if self._numeric:
            runs = [m.start() for m in _NUM_RUN.finditer(view) if _identifier_like(m.group())]
            if runs:
                for gp in self._numeric:
                    spots.setdefault(gp, []).extend(runs)
        return spots
