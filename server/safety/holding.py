"""What the output guard must hold back: only text that could still become a match.

The guard releases a streamed answer token by token, except for a stretch at its end that a later token
could still turn into something the guard must cut:
- an identifier in the making: the word still being written (it may grow into an e-mail or an id), and
  before it a run of words that each could be part of an identifier or a name (digits, capitalised
  words: "415 555 01", "Dr. Jane Sm", "12 Main St"), held until an ordinary word follows;
- in Chinese, a clause that holds a PHI cue (患者, 电话, 路, 号, a digit...) until the clause ends (a name,
  a phone number or an address is written inside one clause);
- a sentence that already holds a self-harm method cue ("lethal", "致死量", "noose", "painless"), until the
  sentence ends; after a crisis message also a sentence with a dose ("40 tablets", "30片"), since "would be
  enough to kill" comes after the number;
- a placeholder being written ("[PHONE_" before its "]"), so it is restored whole;
- trailing spaces, which belong to whatever follows.
Everything else goes out at once. The hold never exceeds the policy's `hold_back_chars`: past it the oldest
text is released (never in the middle of a word).
"""

from __future__ import annotations

import re
from functools import cache

from server.safety.phi import patterns as phi_patterns

_WORD = re.compile(r"\S+")
_LATIN_END = re.compile(r"[A-Za-z0-9@._%+\-]+$")
_UPPER = re.compile(r"^[(\[\"'“‘]?(?:[A-ZÀ-ÖØ-Þ]|https?:|www\.)")
# a word that could be part of an identifier or a name: a digit, an @, a capital letter or a web address
_IDENTISH = re.compile(r"\d|@")
_CLAUSE_END = re.compile(r"[。！？；，、：\n!?;,]|[.:](?=\s)")
_SENTENCE_END = re.compile(r"[。！？!?\n]|[.;:](?=\s)")
_CJK = re.compile("[\u4e00-\u9fff]")
# method cues that open a sentence the answers' method rules could still complete
_METHOD_CUES = re.compile(
    r"\b(?:lethal|fatal|deadly|overdos\w*|noose|ligature|painless|wrists?)\b"
    r"|\b(?:kill|hang|poison|suffocate|drown|shoot)\w* (?:yourself|oneself)\b"
    r"|致死|上吊|割腕|烧炭|跳楼|自杀|无痛|不痛苦"
)
# after a crisis message, a dose or a step also opens such a sentence ("40 tablets would be enough to...")
_DOSE_CUES = re.compile(
    r"\d+(?:\.\d+)?\s*(?:mg|g|grams?|milligrams?|tablets?|pills?|capsules?)\b|\bstep \d|\d+\s*(?:片|粒|颗"
    r"|毫克|克)"
)
_PLACEHOLDER_REACH = 32  # longest placeholder the guard restores ("[HEALTH_PLAN_12]" and room to spare)
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9@._%+\-/:#\[\]()]")


@cache
def _zh_phi_cues() -> re.Pattern[str]:
    """The Chinese gate literals of the PHI recognisers (患者, 电话, 身份证, 路, 号楼...), and digits."""
    cues = {lit for p in phi_patterns() for lit in p.literals or () if _CJK.search(lit)}
    ordered = sorted(cues, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)) + r"|\d")


def identifier_tail(buf: str) -> int:
    """Where the run of identifier-like words at the end of `buf` starts (len(buf): there is none)."""
    words = list(_WORD.finditer(buf))
    if not words:
        return len(buf)
    last = words[-1]
    still_open = last.end() == len(buf)
    if not still_open and last.group()[-1] in ".!?。！？":
        return len(buf)  # the sentence ended: no identifier or name runs on past its full stop
    if not _identish(last.group()):
        # an ordinary word still being written may yet become an e-mail ("john" + ".doe@x.org"); in Chinese
        # only its Latin tail can ("请发邮件到" + "li.wei@...")
        if not still_open:
            return len(buf)
        latin = _LATIN_END.search(last.group())
        return last.start() + latin.start() if latin else len(buf)
    start = last.start()
    for word in reversed(words[:-1]):
        text = word.group()
        if not _identish(text) or text[-1] in ".!?。！？" or _SENTENCE_END.search(buf, word.end(), start):
            break
        start = word.start()
    return start


def _identish(word: str) -> bool:
    return _IDENTISH.search(word) is not None or _UPPER.match(word) is not None


def chinese_clause(buf: str) -> int:
    """Start of the last clause of `buf` when it is Chinese and holds a PHI cue (len(buf): nothing held)."""
    end = len(buf)
    start = max((m.end() for m in _CLAUSE_END.finditer(buf)), default=0)
    if start == end or not _CJK.search(buf, start):
        return end
    return start if _zh_phi_cues().search(buf, start) else end


def method_sentence(context: str, buf: str, doses: bool) -> int:
    """Start (in `buf`) of the last, unfinished sentence when it holds a method cue, counting the part of it
    already released in `context`; len(buf) when there is none."""
    text = context + buf
    start = max((m.end() for m in _SENTENCE_END.finditer(text)), default=0)
    cues = _METHOD_CUES.search(text, start) or (_DOSE_CUES.search(text, start) if doses else None)
    if cues is None:
        return len(buf)
    return max(0, start - len(context))


def open_placeholder(buf: str) -> int:
    """Start of a "[..." at the end of `buf` that is not closed yet (len(buf) when there is none)."""
    at = buf.rfind("[")
    if at == -1 or "]" in buf[at:] or len(buf) - at >= _PLACEHOLDER_REACH:
        return len(buf)
    return at


def bounded(buf: str, cut: int, window: int, tail: int) -> int:
    """Raise `cut` so that no more than `window` characters stay held, without splitting a word (a single
    huge token is cut anyway, to bound the memory one stream holds)."""
    if len(buf) - cut <= window:
        return cut
    forced = len(buf) - tail
    while (
        forced > cut and forced > 0 and _TOKEN_CHAR.match(buf[forced - 1]) and _TOKEN_CHAR.match(buf[forced])
    ):
        forced -= 1
    if forced <= cut and len(buf) - cut > 4 * window:
        forced = len(buf) - tail
    return max(cut, forced)
