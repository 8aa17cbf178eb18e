"""Dates more specific than the year, and ages over 89 (HIPAA Safe Harbor)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety.gate import Hits
from server.safety.phi.common import NUMERIC_GATE, I, run, rx
from server.safety.verdict import Span

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|May|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTH_I = _MONTH.replace("May", "(?-i:May)")
# month names are also pieces of common words ("mar" in "summary"): gate on the word's start
_MONTH_GATE = frozenset(
    f"{edge}{m}"
    for edge in " \n(,-/"
    for m in ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
)
_DATE_RES = [
    rx(
        r"(?<![\d/.-])(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?![\d/.-]*\d)",
        literals=NUMERIC_GATE,
        window=40,
    ),
    rx(
        # day and month either way round: one of them is a month ("20-20-20", an eye rule, is no date)
        r"(?<![\d/.])(?:(?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12]\d|3[01])|(?:1[3-9]|2\d|3[01])[/.-](?:0?[1-9]|1[0-2]))"
        r"[/.-](?:19|20)?\d{2}(?![\d/])",
        literals=NUMERIC_GATE,
        window=40,
    ),
    rx(
        # no line break between a month and its day ("...group, 14 May\n1. Chatbot pilot")
        rf"\b{_MONTH_I}\.?[^\S\n]+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\b(?:,?\s+(?:19|20)\d{{2}}\b)?",
        I,
        literals=_MONTH_GATE,
        window=30,
        prefix=True,
    ),
    rx(
        rf"\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?[^\S\n]+(?:of\s+)?{_MONTH_I}\b\.?(?:,?\s+(?:19|20)\d{{2}}\b)?",
        I,
        literals=_MONTH_GATE,
        window=30,
    ),
    # a report's "11-Nov-1955", "03/Feb/2024", "5.May.61"
    rx(
        rf"\b(?:0?[1-9]|[12]\d|3[01])([-/. ]){_MONTH_I}\1(?:19|20)?\d{{2}}\b",
        I,
        literals=frozenset(
            f"{edge}{m}"
            for edge in "-/."
            for m in ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
        ),
        window=30,
    ),
    rx(r"(?:(?:民国\s*\d{2,3}|(?:19|20)?\d{2})\s*年\s*)?\d{1,2}\s*月\s*\d{1,2}\s*[日号]"),
    # month + year is kept unless it is a birth/admission/discharge/death date
    rx(
        rf"(?:\b(?:born|dob|date of birth|birthday|admitted|discharged|died|deceased)\b[\s:]*(?:in|on)?\s*)"
        rf"({_MONTH_I}\.?\s+(?:19|20)\d{{2}}|(?:0?[1-9]|1[0-2])/(?:19|20)\d{{2}})",
        I,
    ),
    rx(r"(?:出生|生于|出院|入院|去世|死亡)[^，。,;；]{0,4}?((?:19|20)\d{2}\s*年\s*\d{1,2}\s*月)"),
]
# month names of the languages patients and their relatives write in beside English (French, Spanish,
# Portuguese, Italian, German, Dutch, Indonesian and Malay): with a year ("4 avril 1948", "3 de mayo de
# 1950"), or after the article that makes a day of it ("le 2 mars", "el 3 de mayo", "am 3. Mai"); "2 Mars
# bars" and "mayo" alone are neither
_FOREIGN_MONTHS = """janvier février fevrier mars avril mai juin juillet août aout septembre octobre novembre
    décembre decembre enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre
    diciembre janeiro fevereiro março marco maio junho julho setembro outubro dezembro gennaio febbraio aprile
    maggio giugno luglio settembre ottobre dicembre januar februar märz maerz juni juli oktober dezember
    januari februari maart mei augustus maret agustus desember mac ogos disember""".split()
_FOREIGN_DATE = rx(
    r"(?i:\b(?:(le|el|am|den|tanggal|tgl\.?)\s+)?(?:0?[1-9]|[12]\d|3[01])(?:er|º|\.)?\s+(?:de\s+)?"
    rf"(?:{'|'.join(sorted(set(_FOREIGN_MONTHS), key=len, reverse=True))})\b"
    r"(?:,?\s+(?:de\s+)?((?:19|20)\d{2})\b)?)",
    literals=frozenset(f" {m}" for m in _FOREIGN_MONTHS),
    window=40,
)
# month/day without a year after a care event or "on"/"since": "discharged on 9/2", "admitted 10/27", "seen
# Tuesday 3/14"; not a fraction or a dose ("on 1/2 a tablet", "5/10 mg", "by 1/3", "2/3 of"). The regex is the
# bare date (blood pressures make "5/" common); the context word is checked in the text before it.
_MONTH_DAY = rx(
    r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])"
    r"(?![/\d]|\.\d|\s*(?:of|a|an|tabs?|tablets?|pills?|caps?|capsules?|doses?|mg|mcg|ml|cups?|scoops?"
    r"|strength)\b)",
    I,
    literals=frozenset(f"{d}/" for d in "0123456789"),
    window=8,
)
_MONTH_DAY_CTX = re.compile(
    r"\b(?:on|since|until|till|admitted|discharged|seen|dated|due|starting|scheduled(?: for)?|dos)\s+"
    r"(?:on\s+)?(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?$",
    I,
)
_AGES_90 = [
    rx(r"\b(?:9\d|1[01]\d)[- ](?:years?|yrs?)[- ]old\b", I),
    rx(r"\baged? (?:9\d|1[01]\d)\b", I),
    rx(r"(?<!\d)(?:9\d|1[01]\d)\s*(?:岁|周岁)"),
]


# a product's date, not a person's: an expiry or a use-by date ("batch FK8891 with expiry 2025-11-30")
_PRODUCT_DATE_CTX = re.compile(
    r"(?:\bexpir\w*|\bexp\.?|best before|use[ -]by|有效期至?|失效日期|过期时间|保质期至?)[\s:：]*(?:on\s+)?$",
    I,
)


def dates(text: str, hits: Hits) -> Iterator[Span]:
    for i, pat in enumerate(_DATE_RES):
        group = 1 if i >= 6 else 0
        for m in run(pat, text, hits):
            if not _PRODUCT_DATE_CTX.search(text, max(0, m.start(group) - 20), m.start(group)):
                yield m.start(group), m.end(group), "DATE"
    for m in run(_FOREIGN_DATE, text, hits):
        if m.group(1) or m.group(2):
            start = m.end(1) if m.group(1) else m.start()  # the date, not its article
            while text[start].isspace():
                start += 1
            yield start, m.end(), "DATE"
    for m in run(_MONTH_DAY, text, hits):
        if _MONTH_DAY_CTX.search(text, max(0, m.start() - 40), m.start()):
            yield m.start(), m.end(), "DATE"
    for pat in _AGES_90:
        for m in run(pat, text, hits):
            yield m.start(), m.end(), "AGE"
