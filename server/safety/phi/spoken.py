"""Identifiers written the way people say them or type them past filters: e-mail addresses with "at" and
"dot" (spoken, bracketed, 艾特 and 点), phone numbers read out digit by digit in words ("nine one two ...,
double five") and numbers typed one digit at a time ("1 3 9 0 ..."), dates spelled out ("the fourth of
July, nineteen fifty-two") and dates in Chinese numerals, the Minguo calendar included ("民國四十年三月七日",
"农历三月初七").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety.gate import Hits
from server.safety.phi.common import I, run, rx
from server.safety.verdict import Span

# ---- e-mail addresses ----------------------------------------------------------------------------------
_TLD = r"(?:com|net|org|edu|gov|info|biz|io|me|co|uk|cn|hk|tw|sg|my|au|ca|in|jp|kr|nz|mo|de|fr)"
_BRACKET_AT = r"\s*[(\[{<]\s*(?:at|@)\s*[)\]}>]\s*"
_BRACKET_DOT = r"\s*[(\[{<]\s*(?:dot|\.)\s*[)\]}>]\s*"
_AT = rf"(?:\s+at(?:\s+sign)?\s+|{_BRACKET_AT}|\s*(?:艾特|at符号|圈a)\s*|@)"
_DOT = rf"(?:\s+dot\s+|{_BRACKET_DOT}|\s*点\s*|\.)"
_LOCAL_SEP = (
    r"(?:\s+(?:dot|underscore|dash|hyphen)\s+|\s+(?=\d)|\s*[(\[]\s*(?:dot|underscore)\s*[)\]]\s*|[._+-])"
)
_PART = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_SPOKEN_EMAIL = rx(
    rf"(?<![a-z0-9._%+-])({_PART}(?:{_LOCAL_SEP}{_PART})*){_AT}({_PART}(?:{_DOT}{_PART})*?){_DOT}{_TLD}(?:{_DOT}{_TLD})?"
    r"(?![a-z0-9])",
    I,
    literals=frozenset(
        (" dot ", "(dot)", "[dot]", "(at)", "[at]", "<at>", "{at}", "艾特", "at符号", "点com")
    ),
)
# spelled " at " and " dot " are ordinary words: the address needs a mail word nearby, or a local part that
# no sentence has ("john dot smith", "mary_lee88")
_MAIL_CUE = re.compile(r"e-?mail|mail|inbox|address|邮箱|郵箱|电邮|電郵|邮件|郵件|contact|reach|write", I)
_WORDISH_LOCAL = re.compile(r"[a-z]+", I)


def _spoken_email_ok(text: str, m: re.Match[str]) -> bool:
    whole = m.group()
    if re.search(r"[(\[{<]\s*(?:at|dot)|艾特|at符号|圈a|@", whole, I):
        return True  # bracketed or Chinese "at": deliberately written as an address
    if not _WORDISH_LOCAL.fullmatch(m.group(1)):
        return True  # "john dot smith", "lee88": no sentence reads like that
    return _MAIL_CUE.search(text, max(0, m.start() - 60), m.start()) is not None


# ---- phone numbers read out in words -----------------------------------------------------------------
_DIGIT_WORD = r"(?:zero|oh|o|one|two|three|four|five|six|seven|eight|nine)"
_WORDS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT_ITEM = rf"(?:(?:double|triple)\s+{_DIGIT_WORD}|{_DIGIT_WORD})"
_SPOKEN_DIGITS = rx(
    rf"\b{_DIGIT_ITEM}(?:[\s,.-]+{_DIGIT_ITEM}){{5,}}\b",
    I,
    literals=frozenset(f"{a}{sep}{b}" for a in _WORDS for b in _WORDS for sep in (" ", ", ", "-")),
    window=160,
)
# digits typed one at a time ("4 1 0 1 0 5 1 9 6 3 ..."), as people do to get a number past a filter or read
# it off a card: seven or more are a phone number or an identifier
_SPACED_DIGITS = rx(
    r"(?<![\d.,])\d(?: \d){6,}(?!\d|[.,]\d)",
    literals=frozenset(f"{a} {b} {c}" for a in "0123456789" for b in "0123456789" for c in "0123456789"),
    window=80,
)
_COUNT = re.compile(rf"(double|triple)\s+{_DIGIT_WORD}|{_DIGIT_WORD}", I)
# a record, card or social security number read out after its number word: "his MRN is four four seven two
# nine one", "chart number is P as in Peter seven seven three nine two one", "social is four two nine dash
# seven seven dash ...", "insurance number is A X A nine nine ...": four digits at least, letters spelled
# alone or "as in" a word, dashes said aloud
_SPOKEN_ITEM = (
    rf"(?:(?i:(?:double|triple)\s+{_DIGIT_WORD}|{_DIGIT_WORD}|dash|hyphen)"
    r"|[A-Z](?:\s+(?i:as\s+in|for)\s+[A-Z][a-z]+)?)(?![A-Za-z])"
)
_SPOKEN_ID = rx(
    rf"(?i:\b(?:number|no\.?|num|id|mrn|ssn|social|nhs|nhi|medicare)\b)[\s:#]*(?:(?i:is|was)\s+)?"
    rf"({_SPOKEN_ITEM}(?:[\s,.]+{_SPOKEN_ITEM}){{3,}})",
    literals=frozenset(f"{a}{sep}{b}" for a in _WORDS for b in _WORDS for sep in (" ", ", ", "-")),
    window=200,
)


def _spoken_digit_count(run_text: str) -> int:
    return sum(
        {"double": 2, "triple": 3}.get((m.group(1) or "").lower(), 1) for m in _COUNT.finditer(run_text)
    )


_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
# a name spelled out letter by letter after it is said ("Liam McDonald, that's M C D O N A L D", "Delaney,
# D-E-L-A-N-E-Y"): four letters or more, with a spelling or name word just before
_SPELLED_NAME = rx(
    r"(?<![A-Za-z])[A-Z](?:(?: |-|\. ?)[A-Z]){3,}(?![A-Za-z])",
    # a spelling word, or letters joined by hyphens ("d-e-l-"): a bare comma is in every text
    literals=frozenset(
        ("spell", "spelt", "that's", "that is", "name", *(f"{a}-{b}-" for a in _ALPHABET for b in _ALPHABET))
    ),
    window=120,
)
_SPELL_CUE = re.compile(r"(?i:spell|spelt|that's|that is|name|surname)[^.?!\n]{0,12}$|[a-z],\s*$")
_LETTERS_SAID = re.compile(r"\b(?:as in|for) [A-Z][a-z]+")

# ---- dates ---------------------------------------------------------------------------------------------
_UNITS = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_ORD_UNITS = r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
_ORDINAL = (
    rf"(?:(?:twenty|thirty)[\s-]?{_ORD_UNITS}|{_ORD_UNITS}|tenth|eleventh|twelfth|thirteenth|fourteenth"
    r"|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth)"
)
_TEENS = r"(?:ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen)"
_TENS = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
_YEAR_WORDS = (
    rf"(?:nineteen[\s-]+(?:{_TENS}(?:[\s-]+{_UNITS})?|{_TEENS}|hundred|oh[\s-]+{_UNITS})"
    rf"|two\s+thousand(?:\s+and)?(?:\s+(?:{_TENS}(?:[\s-]+{_UNITS})?|{_TEENS}|{_UNITS}))?)"
)
_MONTH_NAME = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_SPELLED_DATE = rx(
    rf"\b(?:(?:the\s+)?{_ORDINAL}\s+(?:of\s+)?{_MONTH_NAME}|{_MONTH_NAME}\s+(?:the\s+)?{_ORDINAL})"
    rf"(?:,?\s+(?:in\s+)?({_YEAR_WORDS}|(?:19|20)\d{{2}}))?\b",
    I,
    window=90,
)
_BIRTH_CUE = re.compile(r"\b(?:born|birth|birthday|dob|d\.o\.b|date of birth)\b", I)
_ZH_NUM = "〇零一二三四五六七八九十"
_ZH_DATE = rx(
    rf"(?:(?:民国|民國)\s*[{_ZH_NUM}百]{{1,4}}\s*年\s*|[〇零一二三四五六七八九]{{2,4}}\s*年\s*|(?:19|20)?\d{{2}}\s*年\s*)?"
    rf"[正一二三四五六七八九十冬腊]{{1,3}}\s*月\s*(?:初|廿)?[{_ZH_NUM}]{{1,3}}\s*[日号號]",
    # a month then its day: "月" alone is in every "个月"
    literals=frozenset(f"月{gap}{c}" for gap in ("", " ") for c in "初廿一二三四五六七八九十〇零"),
    window=30,
)
_LUNAR_DATE = rx(
    r"(?:农历|阴历|農曆|陰曆)\s*(?:[\d一二三四五六七八九十〇零]{2,4}\s*年\s*)?[正一二三四五六七八九十冬腊臘]{1,2}\s*月"
    r"\s*(?:初[一二三四五六七八九十]|廿[一二三四五六七八九]?|十[一二三四五六七八九]|二十[一二三四五六七八九]?|三十)",
)


def spoken(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_SPOKEN_EMAIL, text, hits):
        if _spoken_email_ok(text, m):
            yield m.start(), m.end(), "EMAIL"
    for m in run(_SPOKEN_DIGITS, text, hits):
        if _spoken_digit_count(m.group()) >= 7:  # a phone number's length; "one or two" is a count
            yield m.start(), m.end(), "PHONE"
    for m in run(_SPOKEN_ID, text, hits):
        if _spoken_digit_count(_LETTERS_SAID.sub("", m.group(1))) >= 4:
            yield m.start(1), m.end(1), "OTHER_ID"
    for m in run(_SPELLED_NAME, text, hits):
        if _SPELL_CUE.search(text, max(0, m.start() - 40), m.start()):
            yield m.start(), m.end(), "PERSON"
    for m in run(_SPACED_DIGITS, text, hits):
        digits = m.group()[::2]
        step = int(digits[1]) - int(digits[0])
        if step in (1, -1) and all(int(b) - int(a) == step for a, b in zip(digits, digits[1:])):
            continue  # a count or a scale ("1 2 3 4 5 6 7"), not a number
        n = len(digits)
        yield m.start(), m.end(), "CN_ID" if n in (15, 18) else "PHONE" if n <= 12 else "ACCOUNT"
    for m in run(_SPELLED_DATE, text, hits):
        # a spelled day and month alone is a holiday or a deadline; with a year or as a birth date, a person's
        if m.group(1) or _BIRTH_CUE.search(text, max(0, m.start() - 50), m.start()):
            yield m.start(), m.end(), "DATE"
    for pat in (_ZH_DATE, _LUNAR_DATE):
        for m in run(pat, text, hits):
            yield m.start(), m.end(), "DATE"
