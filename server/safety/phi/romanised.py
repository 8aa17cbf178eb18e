"""Names written in another script than the text around them: a romanised name after a Chinese relation or
patient word ("我阿公 Lim Ah Huat", "病人 Goh Mei Ling"), and the other form of a found name in brackets
("Kim Soo-jin (김수진)", "李國強（Lee Kwok-keung）", "Chén Xiǎohóng（陈小红）").

Bilingual families in Singapore, Malaysia, Hong Kong and Taiwan, and anyone filling in a form abroad, write a
relative's name in both scripts; the rules for each language see only their own half.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety import lexicon
from server.safety.gate import Hits
from server.safety.phi.common import run, rx
from server.safety.phi.names import ZH_TRIGGER
from server.safety.phi.records import looks_like_name
from server.safety.verdict import Span

# two to four words in Latin script, the first may be in capitals (Hong Kong's "CHOW Wing Sze"), the others
# capitalised; tone marks and Hokkien/Hakka diacritics allowed ("Tân Siù-lân", "Chén Xiǎohóng")
_CAP = r"[A-ZÀ-ÖØ-ÞĀ-Ž][a-zß-öø-ÿā-ž'’]+(?:-[a-zß-öø-ÿā-ž]+)?"
_ROMANISED = rf"((?:[A-Z]{{2,}}|{_CAP})(?: {_CAP}){{1,3}})"
_AFTER_RELATION = rx(ZH_TRIGGER + r"[ \t:：]*" + _ROMANISED + r"(?![\w'’-])")
# acronyms and brands that follow 我爸 or 病人 in a sentence and are no names ("我爸 CT Scan", "病人 ICU Bed")
_NOT_FIRST = frozenset({"CT", "MRI", "PET", "ECG", "EKG", "ICU", "ER", "HIV", "COVID", "IC", "NHS", "GP"})


def romanised_after_relation(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_AFTER_RELATION, text, hits):
        if m.group(1).split()[0] not in _NOT_FIRST:
            yield m.start(1), m.end(1), "PERSON"


# a pinyin name after the pinyin of 叫 or 姓名, in a chat typed without characters ("wo ma jiao Liu Guifen"):
# a romanised Chinese surname, then one or two given names of one or two syllables each
_PINYIN_CUE = rx(
    r"(?i:\b(?:jiao|xingming|mingzi(?:\s+shi)?)\b)[\s:：]+((?:[A-Z][a-z]+|[A-Z]{2,})(?: [A-Z][a-z]+){1,2})"
    r"(?![\w'’-])",
    literals=frozenset(("jiao ", "xingming", "mingzi")),
)


def pinyin_after_cue(text: str, hits: Hits) -> Iterator[Span]:
    surnames, syllables = lexicon.surnames(), lexicon.PINYIN_SYLLABLES
    for m in run(_PINYIN_CUE, text, hits):
        first, *given = m.group(1).lower().split()
        if first in surnames and first in syllables and all(_syllables(g, syllables) for g in given):
            yield m.start(1), m.end(1), "PERSON"


def _syllables(word: str, syllables: frozenset[str]) -> bool:
    """One or two romanised syllables: "fen", "guifen", "xiaoming"."""
    return word in syllables or any(
        word[:i] in syllables and word[i:] in syllables for i in range(1, len(word))
    )


# the other form of a name right after it, in brackets
_BRACKETED = re.compile(r"[ \t]*[(（]([^()（）\n]{1,30})[)）]")
_HANGUL = re.compile("[\uac00-\ud7a3]{2,4}")
_CJK_ONLY = re.compile(r"[\u4e00-\u9fff]{2,4}(?: [\u4e00-\u9fff]{1,3})?")


def bracketed_aliases(text: str, spans: list[Span]) -> list[Span]:
    """`spans` plus, for each person's name, its other form in the brackets that follow it."""
    extra = []
    for _, end, entity in spans:
        if entity != "PERSON":
            continue
        m = _BRACKETED.match(text, end)
        if m is None:
            continue
        alias = m.group(1).strip()
        if _HANGUL.fullmatch(alias) or _CJK_ONLY.fullmatch(alias) or _romanised(alias):
            extra.append((m.start(1), m.start(1) + len(m.group(1).rstrip()), "PERSON"))
    return spans + extra if extra else spans


def _romanised(alias: str) -> bool:
    return re.fullmatch(_ROMANISED, alias) is not None and looks_like_name(alias)
