"""Infants: a fever in the first three months is an emergency, and so is a red flag (floppy, not feeding,
hard to wake) at that age or, with a fever, at any baby age (NICE and AAP guidance).

Ages are read in both languages: "6 week old", "newborn", "baby is 7 weeks"; "宝宝两个月", "才18天",
"3个月大", "刚满月"; never a bare duration ("一天两次", "三周了", "he's 2 weeks post-op").
"""

from __future__ import annotations

import re

from server.safety.gate import GatedPattern, Hits
from server.safety.rules.situation import sentence

_INFANT_AGE = re.compile(
    r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|a)[- ](day|week|month)s?[- "
    r"]old\b"
    r"|\bnewborn\b"
    # a month old said the Chinese way: "刚满月", "还没满月", "满月没几天"
    r"|(?:刚|才|刚刚|还没|没|未|不到)满月|满月(?:不久|没几天|没多久)"
    r"|(?:宝宝|婴儿|孩子|小孩|儿子|女儿|出生|才|刚)(?:才|刚|出生|满|不到|还不到|刚刚|只有){0,2}"
    r"(\d+|[一两二三四五六七八九十]{1,3})(?:个)?半?(月|周|天)"
    r"|(\d+|[一两二三四五六七八九十]{1,3})(?:个)?半?(月|周|天)大|新生儿"
    # "my baby is 7 weeks", "baby just turned 2 months" (a baby word first: "he's 2 weeks post-op" is not an
    # age)
    r"|\b(?:baby|infant|newborn)(?:'s| is| just turned| turned| who is| who's)? (?:only |just |barely |not "
    r"even )?"
    r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few)[- ](day|week|month)s?\b"
    r"(?! ago| later| into| post| after| since| pregnant| postpartum)",
    re.IGNORECASE,
)
_TEMPS = frozenset({"38", "39", "40", "41", "42", "100", "101", "102", "103", "104", "105", "106"})
# a fever reading in any of its forms: the word then the number, the number then the word, a number with a
# Celsius unit or where it was measured ("腋温38.3", "肛温38")
FEVERS = (
    GatedPattern(
        r"\b(?:fever|temperature|temp)\b[^.?!]{0,20}?(3[89](?:\.\d)?|4[0-2](?:\.\d)?|10[0-6](?:\.\d)?)"
    ),
    GatedPattern(
        r"\b(3[89](?:\.\d)?|4[0-2](?:\.\d)?|10[0-6](?:\.\d)?)\s*(?:°\s*[cf]|℃|c|f|degrees?)?\s*(?:fever"
        r"|temperature|temp)\b",
        literals=_TEMPS,
        prefix=True,
    ),
    GatedPattern(
        r"\b(3[89](?:\.\d)?|4[0-2](?:\.\d)?)\s*(?:°\s*c|℃|c\b|degrees|under the arm|in the armpit|rectally"
        r"|orally)",
        literals=_TEMPS,
        prefix=True,
    ),
    GatedPattern(
        r"(?:发烧|发热|体温|腋温|肛温|耳温|额温|口温)[^。？！]{0,8}?(3[89](?:\.\d)?|4[0-2](?:\.\d)?)"
    ),
)
_BABY = re.compile(r"\b(?:baby|infant|newborn|toddler)\b|宝宝|婴儿|新生儿")
# gated like the rules (in the engine's one literal pass): a search of the whole text cost 0.2 ms
RED_FLAG = GatedPattern(
    r"\b(?:very sleepy|lethargic|floppy|won'?t feed|not feeding|won'?t wake|hard to wake|limp)\b"
    r"|睡不醒|叫不醒|很难叫醒|不(?:怎么)?吃奶|没吃奶|吃奶少|精神(?:很)?差|蔫|抽搐|呼吸急促"
)
_FEVER_WORD = re.compile(r"\bfever|发烧|发热")
_NUM = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "a few": 3, "a": 1, "一": 1, "两": 2, "二": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
}  # fmt: skip
_DAYS = {"day": 1, "天": 1, "week": 7, "周": 7, "month": 30, "月": 30}
_YOUNG_DAYS = 92  # NICE/AAP: any fever >= 38 C in the first ~3 months is an emergency


def _first_fever(view: str, hits: Hits) -> re.Match[str] | None:
    """The earliest fever reading any of the forms finds."""
    found = [m for p in FEVERS if p in hits for m in [p.search(view, hits)] if m is not None]
    return min(found, key=lambda m: m.start()) if found else None


def _zh_number(text: str) -> int:
    """一..十, 十五, 二十, 二十五 (ages in days or weeks); 99 when it is something else."""
    if "十" not in text:
        return _NUM.get(text, 99)
    tens, _, ones = text.partition("十")
    return (_NUM.get(tens, 99) if tens else 1) * 10 + (_NUM.get(ones, 99) if ones else 0)


def _young_infant(view: str, near: int | None = None) -> bool:
    """An age under ~3 months (in the sentence holding `near` when given)."""
    start, end = (0, len(view)) if near is None else sentence(view, near)
    for m in _INFANT_AGE.finditer(view, start, end):
        whole = m.group(0)
        if whole in ("newborn", "新生儿") or whole.startswith("满月") or whole.endswith("满月"):
            return True
        raw, unit = next(((m.group(k), m.group(k + 1)) for k in (1, 3, 5, 7) if m.group(k)), (None, None))
        if raw is None:
            continue
        n = (
            int(raw)
            if raw.isdigit()
            else _zh_number(raw)
            if raw in _NUM or "十" in raw
            else _NUM.get(raw, 99)
        )
        if n * _DAYS[unit] <= _YOUNG_DAYS:
            return True
    return False


def infant_fever(view: str, hits: Hits) -> list[tuple[int, int]]:
    """A fever in the first three months, or a red flag in that age or, with a fever, at any baby age."""
    red = RED_FLAG.search(view, hits)
    if red is not None and _young_infant(view, red.start()):
        return [red.span()]
    fever = _first_fever(view, hits)
    if fever is None and "fever" not in view and "发烧" not in view and "发热" not in view:
        return []
    if fever is not None and _young_infant(view, fever.start()):
        return [fever.span()]
    if red is None:
        return []
    near = sentence(view, red.start())
    feverish = (fever is not None and near[0] <= fever.start() <= near[1]) or _FEVER_WORD.search(view, *near)
    if feverish and _BABY.search(view, *near):
        return [red.span()]
    return []
