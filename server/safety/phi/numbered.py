"""Identifiers under any noun that says it holds a number: "VA file number C-28 447 190", "Hospital IP No. |
1180442", "病历号 MMH-ER-77821", "出生医学证明编号 Q510123456".

identifiers.py knows the nouns of records, plans, accounts, licences and devices; services have more than any
list holds ("NHI", "AHCIP", "DVA file", "会员卡", "出生医学证明"). HIPAA's last identifier is "any other
unique identifying number", so a value after a number word is taken whatever noun it follows, unless that noun
names a thing rather than a person: a lot, a batch, a model, a room, a page, a drug's approval (批号,
型号, 国药准字号). The value must hold five digits, or four among letters ("bed no. 12" and "claim 2024" are
none), and a number word alone is not enough: only "ID" is a label by itself ("ID: 48213-7750"); "No. 1
Hospital" and "#2024goals" name no one.

The number word is found by the gate and the noun read back from it in Python: a pattern that started at
the noun would have to try every word of the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety.gate import Hits
from server.safety.phi.common import NUMERIC_GATE, run, rx
from server.safety.verdict import Span

# an identifier after its number word: letter groups before the digits ("MMH-ER-77821", "LUTH/24/07719",
# "RN 884213": capitals, if a space follows, so "claim was 2024" keeps its verb), digit groups after ("C-28
# 447 190")
_VALUE = (
    r"((?:[A-Za-z]{1,6}[-/]|[A-Z]{1,4} ){0,3}[A-Za-z0-9]*\d[A-Za-z0-9]*(?:[-./·][A-Za-z0-9]+)*"
    r"(?: \d{2,6}(?![\w.]))*)"
)
_BETWEEN = r"[ \t:：#.|=是为]*(?:(?:is|was)\s+)?"
_LATIN = rx(
    r"(?:(?i:(?<![a-z])(?:number|num|id)(?![a-z]))|(?<![A-Za-z])(?:[Nn][Oo]\.|No(?=[ \t]*[:#|])|NO(?![a-z])))"
    + _BETWEEN
    + _VALUE,
    # "id" after what can stand before the word (inside "did" and "said" it is none)
    literals=frozenset(
        ("number", "num", "no.", "no:", "no ", "no|", "no#", *(f"{c}id" for c in " \n\t(_-/|[{\"'"))
    ),
    prefix=True,
    window=80,
)
# the pinyin of 号 closing a noun written in pinyin, lower case ("zhuyuanhao 24030991")
_PINYIN_NUMBER = rx(
    r"(?<![A-Za-z])([a-z]{2,16})hao(?![A-Za-z])" + _BETWEEN + _VALUE,
    literals=frozenset(("hao ", "hao:", "hao\n", "hao：")),
    window=100,
)
# a few nouns are labels by themselves, with no number word: "Rx: 4471902", "Claim CLM-2024-0081442",
# "accession S24-019331", "NHI ZAC5361" (New Zealand's National Health Index), "AHCIP 48213-7750",
# "shenfenzheng 510107196304221" (身份证 in pinyin)
_LABELS = ("rx", "claim", "accession", "nhi", "ahcip", "shenfenzheng", "sfz")
_LABELLED = rx(
    rf"(?i:\b(?:{'|'.join(_LABELS)})(?![a-z]))[ \t:#]*" + _VALUE,
    literals=frozenset(_LABELS),
    prefix=True,
    window=60,
)
_CJK_WORD = rx(
    r"号码?" + _BETWEEN + _VALUE,
    literals=frozenset(("号",)),
    prefix=True,
    window=80,
)
_LATIN_NOUN = re.compile(r"([A-Za-z][A-Za-z'’-]*)\.?[ \t]*$")
_HAN_NOUN = re.compile(r"[\u4e00-\u9fff]{1,6}$")
# nouns of things, not people: their numbers are printed on boxes, pages and doors
_THING_WORDS = frozenset(
    {"lot", "batch", "model", "part", "catalog", "catalogue", "cat", "product", "item", "sku", "article",
     "ndc", "room", "bed", "page", "version", "step", "question", "flight", "gate", "seat", "table",
     "order", "tracking", "parcel", "track", "exhibit", "figure", "fig", "chapter", "section", "rule",
     "bus", "route", "platform", "trial", "nct", "protocol", "guideline", "approval", "issue", "ticket",
     "helpline", "hotline", "switchboard", "freephone", "lifeline", "crisis", "phone", "telephone", "fax",
     "mobile", "cell", "contact", "unit", "floor", "suite", "level", "year", "week", "day", "cycle", "round",
     "dose", "reference", "standard", "iso", "patent", "test", "kit", "box", "pack", "bottle", "ward",
     "bay", "extension", "ext", "pager", "bleep", "the", "a", "an", "this", "that", "which", "what", "any",
     "random", "lucky", "big", "small", "large", "odd", "even", "prime", "magic"}
)  # fmt: skip
_ZH_NUMBER_WORDS = "号码编卡单"  # what a Chinese noun of a number ends in: 病历号, 会员卡, 快递单
_THING_ZH = (
    "批", "批次", "型", "货", "准字", "文", "版", "版本", "房", "房间", "床", "床位", "序", "页", "航班",
    "车次", "座", "座位", "快递", "运单", "物流", "订单", "产品", "商品", "标准", "专利", "注册证", "备案",
    "许可证", "电话", "手机", "热线", "分机", "楼", "单元", "几", "口", "信", "符", "问", "记", "代", "称",
    "挂", "期", "届", "第", "型号", "药品", "器械", "试剂", "发票",
)  # fmt: skip


# An identifier's own shape, with no word before it: one to three capitals, then six to twelve digits
# ("W2847719302", "ZY2024031577", "QX4481902", "PJN448102H"). In every labelled set of the project such a
# token is a person's number; the exceptions are registry and product codes, named by their prefix or by
# the noun before them (NCT04368728, 国药准字H20003263, "lot AB123456").
_SHAPED = rx(
    r"(?<![A-Za-z0-9_/.-])([A-Z]{1,3})\d{6,12}[A-Z]?(?![A-Za-z0-9_-])",
    literals=NUMERIC_GATE,
    window=24,
)
_REGISTRY_PREFIXES = frozenset(
    {"NCT", "ISRCTN", "CTR", "EU", "DOI", "ISBN", "ISSN", "ATC", "UN", "CAS", "EC", "US"}
)
_BARE_NUMBER_WORDS = frozenset({"编号", "编码", "代码", "号", "号码", "code", "no", "number", "num"})
_NOUN_BEFORE = re.compile(r"([A-Za-z][A-Za-z'’-]*|[\u4e00-\u9fff]{1,6})[\s:：#.\-]*$")


def _shaped_ok(text: str, m: re.Match[str]) -> bool:
    if m.group(1) in _REGISTRY_PREFIXES:
        return False
    before = _NOUN_BEFORE.search(text, max(0, m.start() - 24), m.start())
    if before is None:
        return True
    noun = before.group(1)
    if noun in _BARE_NUMBER_WORDS or noun.lower() in _BARE_NUMBER_WORDS:
        return False  # a number word with no noun says nothing of whose: "編號 A223456782 的藥"
    if noun.isascii():
        return noun.lower() not in _THING_WORDS
    return not _zh_thing(noun)  # 国药准字号


def _enough(value: str) -> bool:
    """Four digits among letters ("ZAC5361"), five without ("the claim was 2024 dollars" holds a year)."""
    digits = sum(c.isdigit() for c in value)
    return digits >= 5 or (digits >= 4 and any(c.isalpha() for c in value))


_OWNERS = frozenset({"my", "your", "his", "her", "our", "their", "mum's", "mom's", "dad's"})


# the pinyin of 号 closes a noun written in pinyin ("zhuyuanhao 24030991", "binglihao: A0012"); these are
# things' numbers (批号, 型号, 订单号, 房间号, 床号, 货号, 序号, 页号, 快递单号, 准字号)
_PINYIN_THINGS = ("pi", "xing", "dingdan", "fangjian", "chuang", "chuangwei", "huo", "xu", "ye", "kuaididan",
                  "zhunzi", "wen", "pici", "dan")  # fmt: skip


def _latin_noun_ok(before: str, word: str) -> bool:
    """The word before a Latin number word (`before`: the 40 characters before it) names a person's number
    ("file", "NHI", "IP") or its owner ("his ID"), or there is none and the number word is "ID" (a form's own
    label)."""
    m = _LATIN_NOUN.search(before)
    if m is None:
        return word == "id"
    noun = m.group(1).lower()
    if noun in _OWNERS:
        return word in ("id", "nu")  # "his ID 4471 2209", "my number is ..."; not "my no. 1 fan"
    return noun.rstrip("'’") not in _THING_WORDS


# a table's header or a form's label that is an identifier by itself
_ID_LABELS = frozenset(
    {"id", "mrn", "uhid", "ur", "hn", "nhs", "nhi", "chi", "nric", "ssn", "medicare", "chart", "record",
     "hospital no", "病历", "病案", "住院", "门诊"}
)  # fmt: skip
_LABEL_ENDINGS = ("no", "no.", "number", "num", "#", "id", "号")
_LABEL_NUMBER = re.compile(r"^(.*?)[ \t]*(?:(?<![a-z])(?:no\.?|number|num|#|id)|号码|编号|卡号|号)$")


def is_id_label(label: str) -> bool:
    """Whether a header cell or a form label (lower case) says its values are a person's numbers: "MRN",
    "Hosp No.", "会员卡号", "病歷號"; not "Lot No.", "批号", "Order #"."""
    if label in _ID_LABELS:
        return True
    if len(label) > 30 or not label.endswith(_LABEL_ENDINGS):
        return False  # a prose line read as a row of cells: no regex over its every cell
    m = _LABEL_NUMBER.match(label)
    if m is None or not m.group(1):
        return False
    noun = m.group(1)
    if noun.isascii():
        return noun.split()[-1].rstrip(".'’") not in _THING_WORDS
    return not _zh_thing(noun)


def shaped(text: str, hits: Hits) -> Iterator[Span]:
    """Tokens with an identifier's own shape (input rails only, after the records, which name a column's
    entity better)."""
    for m in run(_SHAPED, text, hits):
        if _shaped_ok(text, m):
            yield m.start(), m.end(), "OTHER_ID"


def numbered(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_LATIN, text, hits):
        if not _enough(m.group(1)):
            continue
        if _latin_noun_ok(text[max(0, m.start() - 40) : m.start()], text[m.start() : m.start() + 2].lower()):
            yield m.start(1), m.end(1), "OTHER_ID"
    for m in run(_PINYIN_NUMBER, text, hits):
        if m.group(1) not in _PINYIN_THINGS and _enough(m.group(2)):
            yield m.start(2), m.end(2), "OTHER_ID"
    for m in run(_LABELLED, text, hits):
        if _enough(m.group(1)):
            yield m.start(1), m.end(1), "OTHER_ID"
    for m in run(_CJK_WORD, text, hits):
        if not _enough(m.group(1)):
            continue
        noun = _HAN_NOUN.search(text, max(0, m.start() - 6), m.start())
        if noun is not None and _zh_noun_ok(noun.group()):
            yield m.start(1), m.end(1), "OTHER_ID"


def _zh_noun_ok(noun: str) -> bool:
    """The characters before 号 name a person's number ("病历", "会员卡", "出生医学证明编"), not a thing's
    ("订单", "批", "型") and not nothing ("编号：" alone)."""
    return bool(noun.rstrip(_ZH_NUMBER_WORDS)) and not _zh_thing(noun)


def _zh_thing(noun: str) -> bool:
    """Whether Chinese characters before a number name a thing ("订单", "批", "国药准字", "快递单"), read as
    written and without the number words they end in (号, 码, 编, 卡, 单): the one test of every Chinese
    noun above (a number after it, a shaped token after it, a table's header)."""
    return noun.endswith(_THING_ZH) or noun.rstrip(_ZH_NUMBER_WORDS).endswith(_THING_ZH)
