"""Identity and health numbers of the regions our users write from beyond the mainland, Hong Kong, Taiwan
and the US (identifiers.py): Singapore, Malaysia, Macau, Korea, Japan, India, the UK, Canada, Australia.

A shape distinctive enough alone is found anywhere: a check letter or digit that verifies (NRIC/FIN, NHS
number, Medicare card), a birth date inside the number (MyKad, Korean RRN), letters where a number would
have none (UK National Insurance, Ontario health card with its version code), Macau's bracketed check digit,
or a 4-4-4 digit grouping (Aadhaar, Taiwan's NHI card). Any other number needs the document's own word for
it ("NHS no.", "Aadhaar", "OHIP", "IC", "マイナンバー"); after that word the checksum is not required, since
the writer said what it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety.gate import Hits
from server.safety.phi.common import ID, NUMERIC_GATE, SEP, run, rx
from server.safety.verdict import Span

_DATE6 = r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"  # YYMMDD
# Every shape in one pattern (one regex run per window around the identifier-like runs of digits the gate
# found, not one per shape: answers that repeat a phone number hold many such windows); the group that
# matched names the shape, and shapes with a check digit are verified in code.
_SHAPES = rx(
    r"(?<![A-Za-z0-9/-])(?:"
    r"(?P<nric>[STFG]\d{7}[A-Z])"
    rf"|(?P<mykad>{_DATE6}-\d{{2}}-\d{{4}})"
    rf"|(?P<rrn>{_DATE6}-[1-8]\d{{6}})"
    r"|(?P<nino>[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D])"
    r"|(?P<ohip>\d{4}[ -]?\d{3}[ -]?\d{3}[ -]?[A-Z]{2})"
    r"|(?P<macau>[1578](?:/\d{6}/\d|\d{6}\s?[(（]\d[)）]))"
    r"|(?P<grouped>\d{4}(?P<s4>[ -])\d{4}(?P=s4)\d{4})"
    r"|(?P<nhs>\d{3}(?P<s3>[ -]?)\d{3}(?P=s3)\d{4})"
    r"|(?P<medicare>[2-6]\d{3} ?\d{5} ?\d(?:[ -/]?[1-9](?!\d))?)"
    r")(?![A-Za-z0-9/]|-\d)",
    literals=NUMERIC_GATE,
    window=24,
)
_SHAPE_ENTITY = {"ohip": "HEALTH_PLAN", "nhs": "HEALTH_PLAN", "medicare": "HEALTH_PLAN"}

# the word a document uses for the number, then the number (any shape holding a digit). Short words are
# gated with the characters around them ("\nic ", " sin:"), since "ic" and "sin" sit inside many words.
_SHORT_WORDS = (
    "nric",
    "fin",
    "ic",
    "i/c",
    "nhs",
    "chi",
    "nino",
    "sin",
    "ohip",
    "ramq",
    "phn",
    "ihi",
    "rrn",
    "bir",
)
_LONG_WORDS = (
    "nric/fin", "ic no", "ic number", "mykad", "national insurance", "ni no", "ni number", "social insurance",
    "health card", "care card", "personal health", "medicare", "aadhaar", "aadhar", "uidai", "pan card",
    "pan no", "pan number", "my number card", "resident registration", "national id", "citizen id",
    "identity no", "identity number", "id no", "id number",
)  # fmt: skip
_EDGES, _AFTERS = " \n(,.:;/-，：（", " \n:#.,=-：(0123456789"
_CTX_WORDS = "|".join(
    re.escape(w).replace(r"\ ", r"\s+") for w in sorted((*_SHORT_WORDS, *_LONG_WORDS), key=len, reverse=True)
)
_REGIONAL_CTX = rx(
    # the word may take a Chinese "number" after it ("Medicare 号", "OHIP 卡号")
    rf"(?i:\b(?:{_CTX_WORDS})(?![a-z])(?:\s*(?:card|number|no\.?|#|id|号码|卡号|号))?)" + SEP + ID,
    literals=frozenset(
        (*_LONG_WORDS, *(f"{e}{w}{a}" for w in _SHORT_WORDS for e in _EDGES for a in _AFTERS))
    ),
    prefix=True,
)
_REGIONAL_CTX_ZH = rx(
    r"(?:身份证|身分证|澳门身份证|居民身份证|登记证|大马身份证|新加坡身份证|マイナンバー|個人番号|个人番号|주민등록번호)"
    r"(?:号码|号|编号|字号)?" + SEP + ID
)
_HEALTH_WORDS = re.compile(r"nhs|chi\b|ohip|health|care|ramq|phn|medicare|ihi", re.I)


def _nric_ok(value: str) -> bool:
    """Singapore NRIC/FIN check letter (S, T, F, G series): weights 2,7,6,5,4,3,2; T and G add 4."""
    prefix = value[0]
    total = sum(int(d) * w for d, w in zip(value[1:8], (2, 7, 6, 5, 4, 3, 2), strict=True))
    total += 4 if prefix in "TG" else 0
    table = "JZIHGFEDCBA" if prefix in "ST" else "XWUTRQPNMLK"
    return value[8] == table[total % 11]


def _nhs_ok(digits: str) -> bool:
    """UK NHS number: weights 10..2 over the first nine digits, 11 minus the remainder is the tenth."""
    check = 11 - sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    return check != 10 and (check % 11) == int(digits[9])


def _medicare_au_ok(digits: str) -> bool:
    """Australian Medicare card: weights 1,3,7,9,1,3,7,9 over the first eight digits give the ninth."""
    total = sum(int(d) * w for d, w in zip(digits[:8], (1, 3, 7, 9, 1, 3, 7, 9), strict=True))
    return total % 10 == int(digits[8])


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


# a medical device's or a medicine's registration in China (国械注准20192070123, 国药准字H20003263): a product
_PRODUCT_REGISTRATION = re.compile(
    r"(?:国械注[准进许]|国食药监械|械备|国药准字|注册证号?|批准文号)[:：\s]*[A-Z]?$"
)


def regional_ids(text: str, hits: Hits) -> Iterator[Span]:
    """Identity and health numbers recognised by their shape alone."""
    for m in run(_SHAPES, text, hits):
        shape = m.lastgroup  # the shape's own group closes last
        value = m.group()
        if _PRODUCT_REGISTRATION.search(text, max(0, m.start() - 12), m.start()):
            continue
        if shape == "nric" and not _nric_ok(value):
            continue
        if shape == "nhs" and not _nhs_ok(_digits(value)):
            continue
        if shape == "medicare" and not _medicare_au_ok(_digits(value)):
            continue
        yield m.start(), m.end(), _SHAPE_ENTITY.get(shape, "NATIONAL_ID")


def regional_named_ids(text: str, hits: Hits) -> Iterator[Span]:
    """Numbers after the document's word for them (run before the phone and date shapes: "NHS number 943 476
    5919" is a health number, not a phone)."""
    for pat in (_REGIONAL_CTX, _REGIONAL_CTX_ZH):
        for m in run(pat, text, hits):
            if sum(c.isdigit() for c in m.group(1)) >= 5:  # "NHS 111", "IC 3": a service, not a person
                entity = "HEALTH_PLAN" if _HEALTH_WORDS.match(m.group()) else "NATIONAL_ID"
                yield m.start(1), m.end(1), entity


# India's PAN (income-tax number on every form and bill): five letters, the fourth the holder's kind (P for a
# person), four digits, a check letter. Four digits do not make an identifier-like run for the gate, so it
# is searched (one case-sensitive pass) whenever the text holds any other PHI gate.
# (It opens with a capital, then checks what stood before: a pattern that opens with a look-behind is tried at
# every position of the text.)
_PAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]{2}[ABCFGHJLPT][A-Z]\d{4}[A-Z](?![A-Za-z0-9])")


def pan_numbers(text: str, hits: Hits) -> Iterator[Span]:
    for m in _PAN.finditer(text):
        yield m.start(), m.end(), "NATIONAL_ID"


# Any country's identity or health number after its own name, however it is called: an acronym ("CNIC
# 35202-1234567-1", "NIK 3174054501650002", "SNILS 112-233-445 95", "BSN 123456782") or a word with its
# number word ("Emirates ID 784-1990-1234567-1", "PhilHealth no. 12-050123456-7", "Medi-Cal ID 91234567A",
# "Versichertennummer A123456780"). At least seven digits and no slash ("BP 190/110" is a reading); codes that
# name products and publications, not people, are left.
_NAMED_NUMBER = rx(
    r"(?<![\w-])([A-Z]{2,6}|[A-Z][\w-]{2,20}\s+(?:ID|No\.?|no\.?|[Nn]umber)|[A-Z]\w{2,20}nummer|n°\s*\w{2,8})"
    r"[\s:#.]*((?:[A-Za-z]{1,3})?\d[\d\s.-]{5,22}\d[A-Za-z]?)(?![\w/])",
    literals=NUMERIC_GATE,
    window=48,
)
_NOT_PEOPLE = frozenset(
    {"ISBN", "ISSN", "NDC", "DOI", "ICD", "CPT", "LOINC", "ATC", "GTIN", "UPC", "EAN", "REF", "LOT", "PMID",
     "NCT", "SKU", "IMEI", "UDI", "CAS"}
)  # fmt: skip


def named_numbers(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_NAMED_NUMBER, text, hits):
        name, number = m.group(1), m.group(2)
        if name.split()[0].upper() in _NOT_PEOPLE or sum(c.isdigit() for c in number) < 7:
            continue
        yield m.start(2), m.end(2), "NATIONAL_ID"
