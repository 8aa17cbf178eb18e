"""The names the trained model finds (name_model.py), read with the rules' exclusions and the model's own:
what the model proposes that is no person's name (a clinician, an eponym, a weekday, a title alone, a
thing's name)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety import lexicon
from server.safety.gate import Hits
from server.safety.phi import name_cues, name_model, zh_words
from server.safety.phi.names import (
    _COMPOUND_SET,
    _NOT_NAMES,
    _NOT_PATIENT_BEFORE,
    _ZH_NOT_NAMES,
    _ZH_NUMERALS,
    _ZH_STOP,
    _ZH_TITLE,
    FAMILIAR_NAME,
    _words,
)
from server.safety.verdict import Span

_MONTHS = _words("january february march april may june july august september october november december")
# the short forms of weekdays and months, names of their own too (Jan, Jun, Mar, Sat): a calendar word only
# beside a number or another calendar word ("5 Nov", "Mon - Grace, Tue - Kwame", "On Thu, 6 Feb")
_CALENDAR_SHORT = _words(
    "mon tue tues wed weds thu thur thurs fri sat sun jan feb mar apr jun jul aug sep sept oct nov dec"
)
# (capitalised or in capitals: "may", "sat" and "wed" are words too)
_CALENDAR_NEAR = re.compile(
    r"\b(?:"
    + "|".join(
        f"{w.capitalize()}|{w.upper()}"
        for w in sorted(
            _CALENDAR_SHORT | _MONTHS | _words("monday tuesday wednesday thursday friday saturday sunday")
        )
    )
    + r")s?\b"
)
_DIGIT = re.compile(r"\d")


def _thing_named(text: str, start: int, common: frozenset[str]) -> bool:
    before = _WORD_BEFORE.search(text, max(0, start - 30), start)
    if before is None:
        return False
    word = before.group(1).lower()
    known = word in lexicon.given_names() or word in lexicon.surnames()
    return word in common and not known and not name_cues.is_cue_word(word)


def _calendar_word(text: str, start: int, end: int, words: list[str]) -> bool:
    if len(words) != 1 or words[0] not in _CALENDAR_SHORT:
        return False
    close, near = (
        (text[max(0, start - 6) : start], text[end : end + 6]),
        (text[max(0, start - 25) : start], text[end : end + 25]),
    )
    return any(map(_DIGIT.search, close)) or any(map(_CALENDAR_NEAR.search, near))


# a name's word before what bears it as an eponym ("Wellens syndrome", "Ranson criteria", "Beck自杀意念量表",
# "Murphy征阳性"): a scale, sign or syndrome named after someone, not a person in the text. Only nouns no
# patient's name stands before ("Mary's test results" are hers; "Tom signs the form" is a verb).
_EPONYM_AFTER = re.compile(
    r"(?:['’]s)?[ -]?(?i:syndromes?|disease|scale|criteria|classification|manoeuvre|maneuver|reflex"
    r"|palsy|phenomenon|contractions|triad)\b"
    r"|[\u4e00-\u9fff]{0,6}?(?:综合征|综合症|量表|评分|分级|分型|征阳性|征阴性|试验阳性|试验阴性)"
)
_SELF_INTRO = re.compile(r"(?i:\b(?:i'm|i’m|i am|im)\s+)$")
# a sentence's first word before an object is a verb told, not a name ("Mark the site", "Jack the bed up",
# "Sue the practice?"); "my" and "his" are left out, since a name stands before them in apposition ("Tunde my
# husband")
_SENTENCE_START = re.compile(r"(?:^|[.!?\n]\s*|^[\"'“‘(*-]+)$")
_IMPERATIVE_OBJECT = re.compile(r"\s+(?:the|a|an|your|this|that|these|those|it|up|off|out)\b")
# the capitalised word before a name, mid-sentence: an everyday word there makes the two a thing's name ("jiao
# Big Mac"), unless it is a title or a relative's word ("Auntie May")
_WORD_BEFORE = re.compile(r"[^\s.!?:;\n] ([A-Z][a-z]+) $")
_CJK_START = re.compile("[\u4e00-\u9fff]")
_MARKDOWN_RULE = re.compile(r"\s*\|?\s*:?-{3,}")


def model_names(text: str, hits: Hits | None = None) -> Iterator[Span]:
    """The names the trained model finds (name_model.py), read with the rules' exclusions: a clinician ("Dr.
    Amanda Reyes", 李建华主任), a public figure in the news, an eponym, a weekday or a word the rules know is
    no name ("Parkinson", 高热). A month is a name's word only beside another ("April Tan", not "May"); a
    given name alone after "I'm" is none, as for the rules. Nor is a title's, a relative's or a greeting's
    word alone ("Encik", "Mam"), a weekday's or month's short form beside a date ("5 Nov", "Mon - Grace,
    Tue - Kwame"), a sentence's first word before an object ("Mark the site": a verb told) or a word after an
    everyday capitalised one mid-sentence ("jiao Big Mac": a thing's name), a hyphened pair of everyday
    words ("Pack-size"), nor a cell of a table's header row ("| Bed | Name | Qty |"). (A finder like the
    others; the model reads every text, so `hits` is not needed.)"""
    model = name_model.load()
    for start, end, entity in model.find(text):
        name = text[start:end]
        if _CJK_START.match(name):
            familiar = FAMILIAR_NAME.fullmatch(name) is not None
            # a compound surname is often a word's start too (公孙树): the whole name is what counts
            compound = len(name) > 2 and name[:2] in _COMPOUND_SET
            if (
                "某" in name
                or name[:2] in _ZH_NOT_NAMES
                or name[-1] in _ZH_STOP
                or (len(name) == 2 and name[1] in _ZH_NUMERALS)  # a school year, a placeholder
                or any(_ZH_TITLE.match(text, start + i) for i in (1, 2, len(name)))
                # surname-shaped everyday words: 花生, 解释一, and 白内 before its 障 (a familiar name,
                # 老周 or 小张, is a word too: the model reads how common a one it is)
                or (
                    not familiar
                    and not compound
                    and (zh_words.is_everyday_word(name) or zh_words.is_everyday_word(text[start : end + 1]))
                )
                or (compound and name in zh_words.everyday_words())
                # one's own familiar name is not enough, as a given name alone after "I'm" is not (我叫小王)
                or (familiar and text[max(0, start - 2) : start] in ("我叫", "我是", "叫我"))
            ):
                continue
        elif _latin_veto(text, start, end, model):
            continue
        if _header_row(text, start):
            continue
        yield start, end, entity


def _latin_veto(text: str, start: int, end: int, model: name_model.NameModel) -> bool:
    words = [w.lower().strip(".,").replace("’", "'").removesuffix("'s") for w in text[start:end].split()]
    one = len(words) == 1
    common = model.common
    return bool(
        any(w in _NOT_NAMES and (w not in _MONTHS or one) for w in words)
        or _NOT_PATIENT_BEFORE.search(text, max(0, start - 40), start)
        # a given name alone after "I'm" is not enough, as for the rules ("I'm Sam", "I'm Better")
        or (one and _SELF_INTRO.search(text, max(0, start - 8), start))
        # a title, a relative's or a greeting's word alone ("Encik at the counter", "Mam wants")
        or (one and name_cues.is_cue_word(words[0]))
        or _calendar_word(text, start, end, words)
        or (one and _thing_named(text, start, common))
        or (
            one
            and _IMPERATIVE_OBJECT.match(text, end)
            and _SENTENCE_START.search(text[max(0, start - 4) : start])
        )
        or _EPONYM_AFTER.match(text, end)
        or (one and _joined_words(words[0], common, model.chars.known if model.chars else frozenset()))
    )


def _joined_words(word: str, common: frozenset[str], known: frozenset[str]) -> bool:
    """A hyphened word made of everyday words ("Pack-size", "Self-care", "Long-term"), not of names
    ("Mary-Kate", "Seo-yeon")."""
    parts = word.split("-")
    return len(parts) > 1 and all(p in common or p in known for p in parts) and any(p in known for p in parts)


def _header_row(text: str, start: int) -> bool:
    """Whether `start` is in a table's header row: a Markdown row above its |---| line, or a tab-separated
    row with no digit above a row of as many cells that has one ("Slot\tVisitor\tPatient" above
    "14:00\tCarol\tRoss")."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    if line_end < 0:
        return False
    next_end = text.find("\n", line_end + 1)
    line, below = text[line_start:line_end], text[line_end + 1 : next_end if next_end >= 0 else len(text)]
    if line.count("|") >= 2:
        return _MARKDOWN_RULE.match(below) is not None
    tabs = line.count("\t")
    return bool(tabs) and below.count("\t") == tabs and not _DIGIT.search(line) and bool(_DIGIT.search(below))
