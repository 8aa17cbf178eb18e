"""Identifiers: SSNs, identity cards (mainland, Hong Kong, Taiwan), and the numbers that need their
context word: record, plan, account, licence, vehicle, device, specimen, and bank cards."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator

from server.safety.gate import GatedPattern, Hits
from server.safety.phi.common import ID, NUMERIC_GATE, SEP, I, run, rx
from server.safety.verdict import Span

_SSN = rx(
    r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])", literals=NUMERIC_GATE, window=40
)
_SSN_CTX = rx(
    r"\b(?:ssn|social security(?: number| no\.?)?|social)[\s:#]*(?:is\s+|number\s+)?(\d{3}[ -]?\d{2}[ "
    r"-]?\d{4})\b",
    I,
)
_CN_ID = rx(
    r"(?<![0-9A-Za-z])(\d{6})((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(\d{3}[\dXx])(?![0-9A-Za-z])",
    literals=NUMERIC_GATE,
    window=40,
)
_CN_ID_CTX = rx(r"(?:身份证|证件)(?:号码|号)?[\s:：是为]*(\d{15}(?:\d{2}[\dXx])?)")
# Hong Kong identity card: one or two letters, six digits and the check digit in brackets ("K415308(2)"); the
# bracketed check digit is distinctive enough alone, the bare form needs an ID word (below) Taiwan national
# ID: a letter, 1 or 2 (sex), eight digits; alone only with its checksum. Both start one or two letters before
# a run of digits: they are matched only there (the gate's number-run positions), never searched
_NATIONAL_IDS = rx(r"[A-Za-z]{1,2}\d{6}", literals=NUMERIC_GATE, window=12)
_NATIONAL_ID_AT = re.compile(
    r"(?<![A-Za-z0-9])(?:([A-Z]{1,2}\d{6}\s?[(（][0-9A][)）])|([A-Za-z][12]\d{8})(?![A-Za-z0-9]))"
)
# after an identity-card word, either shape without the checksum ("身分證字號A223456781", "HKID: Y1234567")
_ID_CARD_CTX = rx(
    r"(?:\b(?i:hkid|hk\s?id|identity\s+card|id\s+card)|身份证|身分证|证件)"
    r"(?i:\s*(?:number|no\.?|#))?(?:号码|字号|号|编号)?[\s:：是为(（]*"
    r"([A-Za-z]{1,2}\d{6}\s?(?:[(（][0-9Aa][)）]|[0-9Aa])|[A-Za-z][12]\d{8})(?![A-Za-z0-9])",
    literals=frozenset(("hkid", "hk id", "identity card", "id card", "身份证", "身分证", "证件")),
)

# ---- identifiers that need their context word -------------------------------------------------------
# a context word must end where its word ends: "platelets 245", "hospitalized 3 times", "cardio 30
# minutes", "implanted 2019" are not a plate, record, card or implant number
_CTX_IDS: list[tuple[str, GatedPattern]] = [
    (
        "MRN",
        rx(
            r"(?i:\b(?:mrn|medical record|record|chart|patient id|hospital|case"
            r"|encounter)(?![a-z])(?:\s*(?:number|no\.?|#|id))?)" + SEP + ID
        ),
    ),
    ("MRN", rx(r"(?:病历|住院|门诊|病案|就诊卡|就诊|医疗卡|患者|档案)(?:号码|号|编号|卡号|ID)" + SEP + ID)),
    (
        "HEALTH_PLAN",
        rx(
            r"(?i:\b(?:member|insurance|policy|medicare|medicaid|subscriber|group|plan"
            r"|beneficiary)(?![a-z])(?:\s*(?:id|number|no\.?|#))?)" + SEP + ID
        ),
    ),
    (
        "HEALTH_PLAN",
        rx(
            r"(?i:\b(?:insurance|medicare|medicaid|health plan|aetna|cigna|humana|kaiser|blue cross|bcbs|"
            r"united ?health(?:care)?|uhc)\b)[^.\n]{0,24}?\b(?i:id|number|no\.?|#)[\s:#]*" + ID
        ),
    ),
    (
        "HEALTH_PLAN",
        rx(r"(?:医保|社保|健保|医疗保险|保险|保单|参保)(?:卡号|号码|号|单号|编号|卡)" + SEP + ID),
    ),
    (
        "ACCOUNT",
        rx(
            r"(?i:\b(?:account|acct|card|iban|routing|billing)(?![a-z])(?:\s*(?:number|no\.?|#))?)" + SEP + ID
        ),
    ),
    ("ACCOUNT", rx(r"(?:银行卡|银行账|账户|账|卡)号" + SEP + ID)),
    (
        "LICENSE",
        rx(
            r"(?i:\b(?:driver'?s?\s+licen[cs]e|licen[cs]e|dl\s*#|passport|dea|npi|certificate)(?:(?<=#)"
            r"|(?![a-z]))(?:\s*(?:number|no\.?|#))?)" + SEP + ID
        ),
    ),
    ("LICENSE", rx(r"(?:驾驶证|驾照|执业证书?|护照|资格证书?|通行证)(?:号码|号|编号)?" + SEP + ID)),
    (
        "VEHICLE",
        rx(
            r"(?i:\b(?:vin|licen[cs]e plate|plate|registration)(?![a-z])(?:\s*(?:number|no\.?|#))?)"
            + SEP
            + ID
        ),
    ),
    # the plate or VIN in brackets or quotes: "the plate (7XKM214)", "VIN: '1HGCM82633A004352'"
    (
        "VEHICLE",
        rx(
            r"(?i:\b(?:vin|licen[cs]e plate|number plate|plate|registration|rego)(?:\s*(?:number|no\.?|#))?)"
            r"(?:\s+(?:is|was|reads))?[\s:#=]*[(\[\"'“‘]\s*([A-Za-z0-9]{2,8}(?:[ -][A-Za-z0-9]{1,4})?"
            r"|[A-HJ-NPR-Za-hj-npr-z0-9]{17})[)\]\"'”’]"
        ),
    ),
    (
        "VEHICLE",
        rx(
            r"(?:车牌|车架|车辆识别)(?:号码|号|代码)?"
            + SEP
            + r"([\u4e00-\u9fa5]?[A-Za-z0-9·•.\- ]{5,17}[A-Za-z0-9])"
        ),
    ),
    (
        "DEVICE",
        rx(
            r"(?i:\b(?:serial|s/n|device|imei|udi|implant|pacemaker|pump)(?![a-z])(?:\s*(?:id|number|no\.?"
            r"|#))?)" + SEP + ID
        ),
    ),
    ("DEVICE", rx(r"(?:序列号|设备编号|设备号|设备ID|出厂编号|机身号)" + SEP + ID)),
    ("ADDRESS", rx(r"(?i:\b(?:zip|postcode|postal code)(?![a-z])(?:\s*code)?)[\s:#]*(\d{5}(?:-\d{4})?)\b")),
]
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# numbers of a specimen, a report or a study rather than of the record: "病理号P2024-11832", "标本编号
# S-88123", "accession # 24-118832", "specimen ID: SP23-4471"; the number word is required and the identifier
# must hold at least four digits ("lab number 5" is not one)
_SPECIMEN_WORDS = (
    "accession",
    "specimen",
    "pathology",
    "path",
    "biopsy",
    "lab",
    "requisition",
    "sample",
    "report",
    "study",
)
_SPECIMEN_ZH = (
    "病理",
    "检验",
    "标本",
    "影像",
    "放射",
    "检查",
    "报告",
    "送检",
    "化验",
    "超声",
    "申请单",
    "条码",
)
# gated on the word and its number word together ("lab #", "报告编号"): "lab", "report", 检查 and 报告 alone
# are everywhere
_SPECIMEN_IDS = [
    rx(
        rf"(?i:\b(?:{'|'.join(_SPECIMEN_WORDS)})\s*(?:number|no\.?|#|id)(?![a-z]))" + SEP + ID,
        literals=frozenset(
            f"{w}{sep}{n}" for w in _SPECIMEN_WORDS for sep in ("", " ") for n in ("number", "no", "#", "id")
        ),
        prefix=True,
    ),
    rx(
        rf"(?:{'|'.join(_SPECIMEN_ZH)})(?:号码|号|编号|单号|条码号|ID)" + SEP + ID,
        literals=frozenset(f"{w}{n}" for w in _SPECIMEN_ZH for n in ("号", "编号", "单号", "条码号", "id")),
        prefix=True,
    ),
]
# an accession or specimen label with a colon and no number word: "Accession: 24-CH-118734", "Specimen:
# SP23-4471"
_SPECIMEN_IDS.append(
    rx(
        r"(?i:\b(?:accession|specimen|requisition)\s*[:#])[\s:#]*" + ID,
        literals=frozenset(
            f"{w}{sep}" for w in ("accession", "specimen", "requisition") for sep in (":", " :", "#", " #")
        ),
        prefix=True,
    )
)
# record numbers under a hospital's or a service's own word for them ("Hosp No. RLH 771 0034", "UR Number:
# 0082 4471", "IP No.: 24/IP/08813", "Rx# 6402281-03", "病人编号 CHCSJ-2024-11873", "签约号
# CN-0023318"), slashed and lettered forms included; like specimen numbers: the word with its number word,
# and at least four digits
_RECORD_WORDS = (
    "hosp", "patient", "pt", "file", "ur", "ip", "op", "nicu", "imaging", "rx", "prescription", "chi",
    "visit", "admission", "registration",
)  # fmt: skip
_RECORD_ZH = ("病人", "体检", "处方", "签约", "检测", "随访", "覆诊卡", "复诊卡", "挂号")
_SLASHED_ID = r"((?:[A-Za-z0-9]+[/-]){1,4}[A-Za-z0-9]*\d[A-Za-z0-9]*|" + ID[1:]
_SPECIMEN_IDS += [
    rx(
        rf"(?i:\b(?:{'|'.join(_RECORD_WORDS)})\s*(?:number|no\.?|num|#|id)(?![a-z]))" + SEP + _SLASHED_ID,
        literals=frozenset(
            f"{w}{sep}{n}"
            for w in _RECORD_WORDS
            for sep in ("", " ")
            for n in ("number", "no", "num", "#", "id")
        ),
        prefix=True,
    ),
    rx(
        rf"(?:{'|'.join(_RECORD_ZH)})(?:号码|号|编号|卡号|ID)" + SEP + _SLASHED_ID,
        literals=frozenset(f"{w}{n}" for w in _RECORD_ZH for n in ("号", "编号", "卡号", "id")),
        prefix=True,
    ),
    rx(r"(?i:\buhid\s*[:#])[\s:#]*" + ID, literals=frozenset(("uhid:", "uhid :", "uhid#")), prefix=True),
]
# bank cards and accounts named as such, any digit grouping, Luhn or not: "收款银行卡：6222 0212 3456 7890
# 123"
_ACCOUNT_ZH = rx(
    r"(?:银行卡|银行账户|银行账号|收款卡|收款账户|收款账号|储蓄卡|借记卡|信用卡|账户|账号|卡号)(?:号码|号)?"
    r"[\s:：#是为]*(\d{4}(?:[ -]?\d{2,6}){1,5})(?!\d)"
)
# messaging ids: WeChat 6-20 characters from a letter, QQ 5-11 digits, LINE 4-20 ("加我微信 chenba_1975",
# "QQ号：12345678")
_CN_PLATE = rx(
    rf"[{_PROVINCES}][A-Za-z][·•.\s]?[A-Za-z0-9]{{5,6}}(?![A-Za-z0-9])",
    literals=frozenset(_PROVINCES),
    window=12,
)


def _cn_id_ok(digits: str) -> bool:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(digits[:17], weights))
    return "10X98765432"[total % 11] == digits[17].upper()


_TW_LETTERS = {c: n for n, c in enumerate("ABCDEFGHJKLMNPQRSTUVXYWZIO", 10)}


def _twid_ok(value: str) -> bool:
    """Taiwan ID checksum: the letter's two-digit code, then weights 8..1 and the check digit."""
    code = _TW_LETTERS[value[0].upper()]
    total = (
        code // 10
        + (code % 10) * 9
        + sum(int(d) * w for d, w in zip(value[1:9], range(8, 0, -1)))
        + int(value[9])
    )
    return total % 10 == 0


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


_CARD = rx(r"(?<![\d-])\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}(?![\d-])", literals=NUMERIC_GATE, window=40)


# the first two digits of a mainland resident ID: the province (Hong Kong, Macau and Taiwan residents' 81-83)
_PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82"
    " 83".split()
)


def _cn_id_shaped(m: re.Match[str]) -> bool:
    """A province code and a real birth date where the ID holds them: an ID with a mistyped check digit (or
    one copied wrong) is still a person's; an order or batch number rarely starts with a province's code and
    holds a date at just that place."""
    if m.group(1)[:2] not in _PROVINCE_CODES:
        return False
    try:
        born = datetime.date(int(m.group(2)), int(m.group(3)), int(m.group(4)))
    except ValueError:
        return False
    return born.year >= 1900 and born <= datetime.date.today()


def cn_ids(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_CN_ID, text, hits):
        if _cn_id_ok(m.group()) or _cn_id_shaped(m):
            yield m.start(), m.end(), "CN_ID"
    for m in run(_CN_ID_CTX, text, hits):  # the caller said it is an ID number: trust that over the checksum
        yield m.start(1), m.end(1), "CN_ID"


def national_ids(text: str, hits: Hits) -> Iterator[Span]:
    """HKID and Taiwan IDs without a context word (run last: "Aetna ID W123456789" stays a plan number)."""
    for at in hits.get(_NATIONAL_IDS, ()):
        for back in (1, 2):
            m = _NATIONAL_ID_AT.match(text, at - back) if at >= back else None
            if m is not None and (m.group(1) or _twid_ok(m.group(2))):
                yield m.start(), m.end(), "NATIONAL_ID"
                break
    for m in run(_ID_CARD_CTX, text, hits):
        yield m.start(1), m.end(1), "NATIONAL_ID"


def ssns(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_SSN, text, hits):
        yield m.start(), m.end(), "SSN"
    for m in run(_SSN_CTX, text, hits):
        yield m.start(1), m.end(1), "SSN"


def context_ids(text: str, hits: Hits) -> Iterator[Span]:
    for entity, pat in _CTX_IDS:
        for m in run(pat, text, hits):
            # an identifier has three digits at least: "plan, im 65" is an age after a word
            if sum(c.isdigit() for c in m.group(1)) >= 3:
                yield m.start(1), m.end(1), entity
    for pat in _SPECIMEN_IDS:
        for m in run(pat, text, hits):
            if sum(c.isdigit() for c in m.group(1)) >= 4:
                yield m.start(1), m.end(1), "MRN"
    for m in run(_CN_PLATE, text, hits):
        yield m.start(), m.end(), "VEHICLE"
    for m in run(_ACCOUNT_ZH, text, hits):
        if sum(c.isdigit() for c in m.group(1)) >= 8:  # "账户3000元" is a balance
            yield m.start(1), m.end(1), "ACCOUNT"


def _ean13_ok(digits: str) -> bool:
    """The check digit of a product barcode (EAN-13: weights 1 and 3 from the left)."""
    return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def cards(text: str, hits: Hits) -> Iterator[Span]:
    """Bank card numbers by their Luhn check digit, however they are grouped. Thirteen digits that are a
    valid product barcode (EAN-13, on every box: 6901234567892) are the barcode: 13-digit cards are no
    longer issued."""
    for m in run(_CARD, text, hits):
        digits = re.sub(r"\D", "", m.group())
        if len(digits) == 13 and _ean13_ok(digits):
            continue
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            yield m.start(), m.end(), "ACCOUNT"
