"""Text normalisation shared by every rail.

Matching runs on a *view* of the text that defeats cheap evasions (full-width digits, zero-width
characters inside words, Cyrillic/Greek look-alikes, upper case) and reads Traditional Chinese as
Simplified, while keeping one character of the view per character of the normalised text, so spans
found in the view can be cut out of the text that is forwarded upstream.
"""

from __future__ import annotations

import re
import unicodedata

import opencc

# Invisible characters used to split trigger words ("ig\u200bnore"): removed before anything else.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u206a-\u206f\ufeff]"
)

# Look-alike letters (Cyrillic, Greek) mapped to the Latin letter they imitate. Only the matching view
# uses this map: the forwarded text keeps the caller's letters.
_HOMOGLYPHS = {
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "ѕ": "s",
    "ԁ": "d",
    "ɡ": "g",
    "ґ": "g",
    "һ": "h",
    "ԛ": "q",
    "ԝ": "w",
    "ѵ": "v",
    "ν": "v",
    "ο": "o",
    "α": "a",
    "ε": "e",
    "ι": "i",
    "κ": "k",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "β": "b",
    "η": "n",
    "μ": "u",
    "А": "a",
    "В": "b",
    "Е": "e",
    "К": "k",
    "М": "m",
    "Н": "h",
    "О": "o",
    "Р": "p",
    "С": "c",
    "Т": "t",
    "Х": "x",
    "І": "i",
    "Ј": "j",
    "Ѕ": "s",
    "Ґ": "g",
    "Α": "a",
    "Β": "b",
    "Ε": "e",
    "Ζ": "z",
    "Η": "h",
    "Ι": "i",
    "Κ": "k",
    "Μ": "m",
    "Ν": "n",
    "Ο": "o",
    "Ρ": "p",
    "Τ": "t",
    "Υ": "y",
    "Χ": "x",
    "’": "'",
    "‘": "'",
    "‛": "'",
    "ʼ": "'",
    "“": '"',
    "”": '"',
}
_VIEW_TABLE = str.maketrans(_HOMOGLYPHS)
_NEEDS_FOLD = re.compile("[\u0370-\u03ff\u0400-\u052f\u0261\u02bc\u2018-\u201d]")
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Characters NFKC leaves alone or whose folding does not matter for matching: ASCII, CJK ideographs,
# CJK and full-width punctuation, general punctuation. Everything else (full-width letters and digits,
# Latin-1, circled digits, ligatures, math alphanumerics, ...) is normalised run by run: NFKC over a
# whole 4,000-character Chinese message costs ~1.6 ms, over the few runs that need it microseconds.
_NFKC_RUN = re.compile(
    "[^\x00-\x7f\u4e00-\u9fff\u3001-\u303f\u2010-\u2027\u2030-\u205e"
    "\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]+"
)


# Unicode TAG characters (U+E0020-E007E) mirror printable ASCII and render as nothing: a message can carry a
# whole hidden sentence in them, which some models read. The rails read them as the ASCII they mirror (the
# language tag and the cancel tag are dropped).
_TAGS = {cp: cp - 0xE0000 for cp in range(0xE0020, 0xE007F)} | {0xE0001: None, 0xE007F: None}
# Combining marks stacked on letters or digits ("k̶i̶l̶l̶", "5̲5̲5̲") are dropped from what the rails read,
# after NFKC has composed the ones that belong to a letter (é stays é).
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def _nfkc(m: re.Match[str]) -> str:
    return _COMBINING.sub("", unicodedata.normalize("NFKC", m.group().translate(_TAGS)))


def normalize(text: str) -> str:
    """NFKC of the characters that matter (full-width letters/digits, compatibility forms), with
    invisible characters and stacked combining marks removed and TAG characters read as the ASCII they
    mirror; CJK and full-width punctuation are kept as the caller wrote them."""
    if text.isascii():
        return text
    return _NFKC_RUN.sub(_nfkc, _INVISIBLE.sub("", text))


_CHANGES = re.compile(f"{_INVISIBLE.pattern}|{_NFKC_RUN.pattern}")  # what normalize() may touch


def char_map(raw: str, norm: str) -> list[int] | None:
    """For each character of normalize(raw) == norm, the index of the raw character it came from.

    Only characters normalize() can change are mapped one by one; None if the pieces do not line up
    (NFKC composing across characters), in which case callers fall back to the normalised text."""
    index: list[int] = []
    pos = 0
    for m in _CHANGES.finditer(raw):
        index.extend(range(pos, m.start()))
        for k in range(m.start(), m.end()):
            index.extend([k] * len(normalize(raw[k])))
        pos = m.end()
    index.extend(range(pos, len(raw)))
    return index if len(index) == len(norm) else None


def _traditional_to_simplified() -> tuple[dict[int, str], re.Pattern[str]]:
    """OpenCC's Traditional-to-Simplified mapping, character for character (媽->妈, 證->证, 頭->头), and a
    class matching the characters it changes.

    Every rule and the learned detectors are written in Simplified Chinese; Taiwan and Hong Kong users
    write Traditional. Converting each CJK character on its own (not OpenCC's phrase-level conversion)
    keeps one view character per text character, so spans still line up; ~3,800 characters change.
    Built once at import from the library's dictionaries (~30 ms)."""
    chars = [chr(c) for r in ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00)) for c in range(*r)]
    converted = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # a library change that merges lines: read no Traditional at all
        return {}, re.compile("(?!)")
    table = {ord(t): s for t, s in zip(chars, converted) if len(s) == 1 and s != t}
    return table, re.compile("[" + "".join(sorted(map(chr, table))) + "]")


_T2S, _TRADITIONAL = _traditional_to_simplified()


def simplified(text: str) -> str:
    """`text` with Traditional Chinese characters read as Simplified, case kept, one character per
    character."""
    return text.translate(_T2S) if _TRADITIONAL.search(text) else text


def match_view(norm: str) -> str:
    """Lower-case, homoglyph-folded view of `norm` with Traditional Chinese read as Simplified, one
    character per character of `norm`."""
    folded = norm.translate(_VIEW_TABLE) if _NEEDS_FOLD.search(norm) else norm
    folded = simplified(folded)
    view = folded.lower()
    if len(view) != len(norm):  # a rare character whose lower case is longer (e.g. U+0130)
        view = "".join(c if len(c.lower()) != 1 else c.lower() for c in folded)
    return view


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def locale_of(text: str) -> str:
    """'zh' when Chinese characters are a good part of the text (judged on its last 400 characters)."""
    tail = text[-400:]
    cjk = len(_CJK.findall(tail))
    words = len(_LATIN_WORD.findall(tail))
    return "zh" if cjk and cjk >= words else "en"


# Chinese numerals written digit by digit ("一三八零零一三八零零零", a phone number read out): runs of five or
# more become ASCII digits for the rails, one character for one, so identifiers written this way are found
# and cut like any other. Shorter runs stay: they are ordinary words and counts ("三十片", "一二年级").
# 幺 is how a one is read out in a phone number ("幺三八").
_ZH_DIGIT = str.maketrans("〇零幺一二三四五六七八九", "001123456789")
# Grouped the way a number is read out ("零九三二 一二三 四五六"), the groups together must hold seven.
_ZN = "[〇零幺一二三四五六七八九]"
# (written to open with a class, as _SPACED_LATIN below is: see there)
_ZH_DIGIT_RUN = re.compile(f"{_ZN}(?:{_ZN}{{4,}}|{_ZN}{{1,3}}(?:[ -]{_ZN}{{2,4}}){{1,4}})")
# Digits that OCR or a hurried typist turned into look-alike letters ("tel O2O 7946 O123", "MRN l2345678",
# "DOB 12/O3/1958"): in a run of digits and separators that stands apart from words, holds at least five
# digit-like characters and mostly real digits, O/o become 0 and l/I/| become 1. A word never qualifies
# (a letter beside the run ends it), so "Oil", "I 2" and "lol" stay as written. A "|" is a 1 only between two
# digits: beside another "|" or at a run's edge it separates fields (HL7 "PID|||4432109^^^", a pasted table).
_OCR_RUN = re.compile(
    r"[0-9OolI|](?<![A-Za-z0-9][0-9OolI|])(?:[0-9OolI|]|[ /.\-](?=[0-9OolI|])){4,}(?![A-Za-z0-9])"
)
_OCR_DIGIT = str.maketrans("OolI", "0011")
_OCR_BAR = re.compile(r"(?<=\d)\|(?=\d)")
_OCR_PIECE = re.compile(r"[0-9OolI|]+")
_DIGIT = re.compile(r"\d")


def _ocr_digits(m: re.Match[str]) -> str:
    run = m.group()
    digits = sum(c.isdigit() for c in run)
    like = digits + sum(c in "OolI|" for c in run)
    if like == digits or like < 5 or digits < 3 or digits * 5 < like * 3:
        return run
    # only pieces that hold a real digit: a lone "I" or "l" between numbers is a word or a label
    return _OCR_PIECE.sub(lambda p: _ocr_piece(p.group()), run)


def _ocr_piece(piece: str) -> str:
    return _OCR_BAR.sub("1", piece.translate(_OCR_DIGIT)) if _DIGIT.search(piece) else piece


def _zh_digits(m: re.Match[str]) -> str:
    run = m.group()
    grouped = " " in run or "-" in run
    return run if grouped and len(run) - run.count(" ") - run.count("-") < 7 else run.translate(_ZH_DIGIT)


def with_ascii_digits(text: str) -> str:
    """`text` with digit-by-digit Chinese numeral runs and OCR look-alike digits as ASCII digits (same
    length)."""
    if not text.isascii() and _ZH_DIGIT_RUN.search(text) is not None:
        text = _ZH_DIGIT_RUN.sub(_zh_digits, text)
    if any(c in text for c in "OolI|"):
        text = _OCR_RUN.sub(_ocr_digits, text)
    return text


# Spelled-out or leetspeak text: "k i l l  m y s e l f", "k.i.l.l", "想 死", "k1ll mys3lf". The rails also
# read a plain copy of such a view (not one character per character, so its hits mark a category, not a span).
# (each starts with a character class and checks what stands before it after that: a pattern that opens with
# a look-behind is tried at every position, one that opens with a class skips to where the class matches)
_SPACED_LATIN = re.compile(r"[a-z](?<![a-z0-9][a-z])(?:[ .\-_*][a-z]){3,}(?![a-z0-9])")
_SPACED_CJK = re.compile("[\u4e00-\u9fff](?: [\u4e00-\u9fff]){2,}")
# whether there is one: from its spaces (a literal is found faster than a class in Chinese text)
_SPACED_CJK_AT = re.compile(" (?<=[\u4e00-\u9fff] )[\u4e00-\u9fff] [\u4e00-\u9fff]")
# a word of letters and leet digits/symbols holding at least one of each ("k1ll", "mys3lf", "t0"); "b12" and
# "covid19" hold other digits and are not words of this kind
_LEET_TOKEN = re.compile(
    r"(?<![a-z0-9@$])(?=[a-z013457@$]*[a-z])(?=[a-z013457@$]*[013457@$])[a-z013457@$]{2,}(?![a-z0-9])"
)
# ... and counts as leetspeak when a leet character stands before its last letter ("k1ll", "w4nt", "d1e"):
# with the digits only at the end it is a code or a lab name ("t4", "ld50", "vitamin d3")
_LEET_WORD = re.compile(r"[013457@$][a-z]")
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789@$")  # a run that can hold leet tokens
_WORD_RUN = re.compile(r"[a-z0-9@$]*")
_LEET = str.maketrans("013457@$", "oieastas")
_SPACES = re.compile(r"  +")


def _join_letters(m: re.Match[str]) -> str:
    """ "k i l l" -> "kill"; "k.i.l.l m.y.s.e.l.f" -> "kill myself" (a space between dotted letters is a
    word break)."""
    run = m.group()
    if any(c in run for c in ".-_*"):
        return re.sub(r"[.\-_*]", "", run)
    return run.replace(" ", "")


def _two_leet_words(view: str) -> bool:
    """Two different leet words in `view`. _LEET_TOKEN is read only over the runs of letters, digits and @$
    around the few places _LEET_WORD matches (a leet word holds one, and lies inside one such run)."""
    words: set[str] = set()
    done = 0
    for m in _LEET_WORD.finditer(view):
        if m.start() < done:
            continue  # in the run already read
        start = m.start()
        while start and view[start - 1] in _WORD_CHARS:
            start -= 1
        done = _WORD_RUN.match(view, m.start()).end()  # type: ignore[union-attr]
        words.update(t for t in _LEET_TOKEN.findall(view, start, done) if _LEET_WORD.search(t))
        if len(words) >= 2:
            return True
    return False


def plain_reading(view: str) -> str | None:
    """The view with spelled-out letters joined and leetspeak read as letters, or None when it has neither
    (two or more leet words are needed: one is a code or a lab value such as "b12")."""
    out = view
    spaced = _SPACED_LATIN.search(out) is not None or _SPACED_CJK_AT.search(out) is not None
    if spaced:
        out = _SPACED_LATIN.sub(_join_letters, out)
        out = _SPACED_CJK.sub(lambda m: m.group().replace(" ", ""), out)
        out = _SPACES.sub(" ", out)  # "k i l l  m y s e l f": the double space was the word break
    # two different leet words (one, however often, is a code such as "hba1c": the second read of a long
    # message costs about as much as the first, so it is kept for text that looks obfuscated)
    leet = _two_leet_words(out)
    if leet:
        out = _LEET_TOKEN.sub(lambda m: m.group().translate(_LEET), out)
    return out if spaced or leet else None
