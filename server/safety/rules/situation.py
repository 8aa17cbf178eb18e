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
