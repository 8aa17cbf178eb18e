"""Reading a match in its situation: the sentence it sits in, and whether the text tells it as over."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"[.!?。！？\n]")


def sentence(view: str, at: int) -> tuple[int, int]:
    """Bounds of the sentence holding position `at`."""
    before = max(
        (m.end() for m in SENTENCE_END.finditer(view, max(0, at - 300), at)), default=max(0, at - 300)
    )
    after = SENTENCE_END.search(view, at)
    return before, (after.start() if after else min(len(view), at + 300))


def told_as_over(view: str, span: tuple[int, int], over: re.Pattern[str], ongoing: re.Pattern[str]) -> bool:
    """The span's sentence says nothing `ongoing`, and it or the next sentence says the episode is `over`
    ("had a nosebleed ... but it stopped after 10 minutes"; "I cut myself in high school but quit years
    ago")."""
    start, end = sentence(view, span[0])
    if ongoing.search(view, start, end):
        return False
    after = SENTENCE_END.search(view, min(end + 1, len(view)))
    return over.search(view, start, after.start() if after else len(view)) is not None


# Who a phrase is about, read from the pronouns nearest before it in its clause (the view is lower case).
_FIRST = re.compile(r"\b(?:i|i'm|im|i've|i'd|i'll|me|my|myself|we|us|our)\b|我")
_OTHER = re.compile(
    r"\b(?:you|your|yourself|he|she|they|him|her|them|his|their|himself|herself|themselves)\b|[你您他她]"
)
_PERSON = re.compile(f"{_FIRST.pattern}|{_OTHER.pattern}")
# a clause ends at punctuation or where an English subordinate clause starts ("a story where the girl ...")
CLAUSE_END = re.compile(r"[.!?。！？\n,，;；:：]|\b(?:where|when|who|whose|which|that|because|if|while) ")
# an opening quotation mark with no closing one before the phrase: a straight double quote counted by
# parity, CJK corner brackets by balance, a single quote only where it opens (after a space or a colon)
_OPEN_SINGLE = re.compile(r"(?:^|[\s:(])'(?:[^'\n]|(?<=[a-z])'(?=[a-z]))*$")


def quoted(view: str, at: int) -> bool:
    """Position `at` sits inside quotation marks opened earlier in its paragraph ("she always says 'i want
    to die'", 作文里写了一句"我真想死了算了"): the words are reported, not said."""
    line = view.rfind("\n", 0, at) + 1
    before = view[max(line, at - 300) : at]
    if before.count('"') % 2 == 1:
        return True
    for opening, closing in ("「」", "『』"):
        if before.rfind(opening) > before.rfind(closing):
            return True
    return _OPEN_SINGLE.search(before) is not None


def in_own_voice(view: str, span: tuple[int, int]) -> bool:
    """The phrase at `span` is said by the writer about themselves: not inside quotation marks, and the
    person it names, or the pronoun nearest before it in its clause, is the first person ("i'm going to
    kill myself", 我不想活了, "honestly, i want to die"). A phrase with no person in its clause (跳楼身亡,
    "a suicide note") is not: it may be a topic as well as a statement."""
    start, end = span
    if quoted(view, start):
        return False
    own = _FIRST.search(view, start, end)
    other = _OTHER.search(view, start, end)
    if own or other:
        return bool(own) and not other
    sent_start = sentence(view, start)[0]
    clause_start = max((m.end() for m in CLAUSE_END.finditer(view, sent_start, start)), default=sent_start)
    nearest = None
    for nearest in _PERSON.finditer(view, clause_start, start):
        pass
    return nearest is not None and _FIRST.fullmatch(nearest.group()) is not None
