"""PHI recognisers: HIPAA Safe Harbor identifiers and their Chinese counterparts, as compiled regexes.

Each recogniser yields (start, end, entity) spans on the normalised text. Numbers that only mean
something in context (record, plan, account, licence, device numbers) need their context word;
free-standing formats (e-mail, URL, IP, phone, SSN, resident ID with its checksum, full dates) do not.
Names are found only in context (a title, "my name is", a relative, 患者/病人 + name, a common first
name followed by a surname), which is what keeps eponymous diseases (Parkinson's, Hashimoto) out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from server.safety.gate import NUMERIC, SHARED, GatedPattern, required_literals
from server.safety.normalize import match_view, simplified

Span = tuple[int, int, str]
Hits = dict[int, list[int]]

ENTITIES = (
    "PERSON", "ADDRESS", "DATE", "AGE", "PHONE", "FAX", "EMAIL", "SSN", "CN_ID", "MRN", "HEALTH_PLAN",
    "ACCOUNT", "LICENSE", "VEHICLE", "DEVICE", "URL", "IP", "NATIONAL_ID", "HANDLE",
)
# NATIONAL_ID: identity cards other than the mainland's (Hong Kong HKID, Taiwan 身分證); HANDLE: messaging ids
# (WeChat, QQ, LINE) that reach a person as surely as a phone number

_I = re.IGNORECASE
_G = SHARED  # PHI recognisers share the input rails' literal gate pass (see gate.py)


_PHI_INDICES: set[int] = set()  # this module's patterns in the shared gate (other rails own the rest)


def _rx(pattern: str, flags: int = 0, literals: frozenset[str] | None = None, window: int = 200,
        prefix: bool = False) -> GatedPattern:
    gp = _G.add(pattern, flags, literals, window, prefix)
    _PHI_INDICES.add(gp.index)
    return gp


_NUMERIC = frozenset({NUMERIC})
# an identifier: one token holding a digit, optionally a short letter prefix ("RN 884213") and further
# digit groups ("3301 2345 6789 0123")
_ID = r"((?:[A-Za-z]{1,4}[ -])?[A-Za-z0-9]*\d[A-Za-z0-9]*(?:[-.·][A-Za-z0-9]+)*(?: \d{2,6}\b)*)"
# separators between a context word and its identifier, allowing "device ID on my CGM is ..." and, before
# "is"/"was" only, a longer place: "account number at the billing office is ...", "member ID with my plan was",
# or a named one: "MRN at St. Luke's is ...", "member ID with Blue Shield was ..."
_SEP = (r"(?:\s+(?:on|of|for|in|from)\s+(?:my|the|his|her|our|their)(?:\s+[\w-]+){1,2}"
        r"|\s+(?:at|with|under|through)\s+(?:(?:my|the|his|her|our|their)(?:\s+[\w'-]+){1,3}|[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,3})"
        r"(?=\s+(?:is|was)\b))?"
        r"[\s:：#.,=是为]*(?:(?:is|number|no\.?|num|id)[\s:：#.]*)*")

# ---- free-standing formats -------------------------------------------------------------------------
_EMAIL = _rx(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL = _rx(r"\b(?:https?://|www\.)[^\s<>\"'，。；）)\]]+", _I)
# octets are checked in code: a plain dotted-quad regex is several times cheaper than one that
# spells out 0-255
_IPV4 = _rx(r"(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.]*\d)", literals=_NUMERIC, window=40)
_IPV6 = _rx(r"(?<![:\w])(?:[0-9a-f]{1,4}:){2,7}(?::|[0-9a-f]{1,4})(?![:\w])", _I)
_SSN = _rx(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])", literals=_NUMERIC, window=40)
_SSN_CTX = _rx(r"\b(?:ssn|social security(?: number| no\.?)?|social)[\s:#]*(?:is\s+|number\s+)?(\d{3}[ -]?\d{2}[ -]?\d{4})\b", _I)
_CN_ID = _rx(r"(?<![0-9A-Za-z])(\d{6})((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(\d{3}[\dXx])(?![0-9A-Za-z])", literals=_NUMERIC, window=40)
_CN_ID_CTX = _rx(r"(?:身份证|证件)(?:号码|号)?[\s:：是为]*(\d{15}(?:\d{2}[\dXx])?)")
# Hong Kong identity card: one or two letters, six digits and the check digit in brackets ("K415308(2)"); the
# bracketed check digit is distinctive enough alone, the bare form needs an ID word (below)
# Taiwan national ID: a letter, 1 or 2 (sex), eight digits; alone only with its checksum. Both start one or two
# letters before a run of digits: they are matched only there (the gate's number-run positions), never searched
_NATIONAL_IDS = _rx(r"[A-Za-z]{1,2}\d{6}", literals=_NUMERIC, window=12)
_NATIONAL_ID_AT = re.compile(r"(?<![A-Za-z0-9])(?:([A-Z]{1,2}\d{6}\s?[(（][0-9A][)）])|([A-Za-z][12]\d{8})(?![A-Za-z0-9]))")
# after an identity-card word, either shape without the checksum ("身分證字號A223456781", "HKID: Y1234567")
_ID_CARD_CTX = _rx(r"(?:\b(?i:hkid|hk\s?id|identity\s+card|id\s+card)|身份证|身分证|证件)"
                   r"(?i:\s*(?:number|no\.?|#))?(?:号码|字号|号|编号)?[\s:：是为(（]*"
                   r"([A-Za-z]{1,2}\d{6}\s?(?:[(（][0-9Aa][)）]|[0-9Aa])|[A-Za-z][12]\d{8})(?![A-Za-z0-9])",
                   literals=frozenset(("hkid", "hk id", "identity card", "id card", "身份证", "身分证", "证件")))
_CN_MOBILE = _rx(r"(?<![\d+])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)", literals=_NUMERIC, window=40)
# national numbers with a trunk 0 (UK 07700 900123, 020 7946 0958): 10-11 digits in groups
_NATIONAL_PHONE = _rx(r"(?<![\d+])0\d{2,4}[\s-]\d{3,4}(?:[\s-]?\d{3,4})(?!\d)", literals=_NUMERIC, window=40)
_CN_LANDLINE = _rx(r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3}-)\d{7,8}(?!\d)", literals=_NUMERIC, window=40)
_US_PHONE = _rx(r"(?<![\d-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\d-])", literals=_NUMERIC, window=40)
_INTL_PHONE = _rx(r"(?<![\w+])\+(?:[2-9]\d{0,2}|1)[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}(?!\d)", literals=_NUMERIC, window=40)
# a Hong Kong eight-digit number ("打我電話6123 8876") only after a phone word, like the seven-digit local one below
_HK_PHONE = _rx(r"[235679]\d{3}[ -]?\d{4}", literals=_NUMERIC, window=12)
_HK_PHONE_AT = re.compile(r"[235679]\d{3}[ -]?\d{4}(?![\d-])")
# (a phone word proper: "record number is 99812345" is no phone)
_HK_PHONE_CTX = re.compile(r"(?:\b(?:phone|cell|mobile|tel|telephone|landline|call|text|whatsapp|fax)\b|电话|手机|座机|传真)"
                           r"[^\d\n]{0,12}$", _I)
_FAX_CTX = re.compile(r"(?:\bfax|传真)", _I)
# a seven-digit local number ("my home line 555-0178") only after a phone word: alone it could be a range. It is
# looked for only when the message has both an identifier-like number and a phone word (_PHONE_WORDS is a gate,
# never run), and only where a number run starts (the gate's positions), not by a regex search of windows.
_LOCAL_PHONE = _rx(r"(?<![\d-])[2-9]\d{2}-\d{4}(?![\d-])", literals=_NUMERIC, window=40)
_LOCAL_PHONE_AT = re.compile(r"[2-9]\d{2}-\d{4}(?![\d-])")
_PHONE_WORD = r"(?:\b(?:phone|line|cell|mobile|tel|telephone|landline|call|text|reach|number|fax|contact)\b|电话|手机|座机|传真)"
# (phrases, not bare "call", "line" or "phone": those are in "decline", "[PHONE_1]" and most answers)
_PHONE_WORDS = _rx(_PHONE_WORD, _I, literals=frozenset((
    " phone", "phone:", "phone ", "phone is", "my cell", "cell:", "cell is", "cell phone", "mobile", "landline", "telephone",
    "tel:", "tel.", "fax", "call me", "call us", "call him", "call her", "call you", "call back", "text me", "reach me",
    "my number", "number is", "number:", "line is", "home line", "work line", "电话", "手机", "座机", "传真")))
_PHONE_CTX = re.compile(_PHONE_WORD + r"[^\d\n]{0,20}$", _I)

# ---- dates more specific than the year -------------------------------------------------------------
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|May|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_MONTH_I = _MONTH.replace("May", "(?-i:May)")
# month names are also pieces of common words ("mar" in "summary"): gate on the word's start
_MONTH_GATE = frozenset(f"{edge}{m}" for edge in " \n(,-/" for m in
                        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
_DATE_RES = [
    _rx(r"(?<![\d/.-])(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?![\d/.-]*\d)", literals=_NUMERIC, window=40),
    _rx(r"(?<![\d/.])(?:0?[1-9]|[12]\d|3[01])[/.-](?:0?[1-9]|[12]\d|3[01])[/.-](?:19|20)?\d{2}(?![\d/])", literals=_NUMERIC, window=40),
    _rx(rf"\b{_MONTH_I}\.?\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\b(?:,?\s+(?:19|20)\d{{2}}\b)?", _I,
        literals=_MONTH_GATE, window=30, prefix=True),
    _rx(rf"\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_I}\b\.?(?:,?\s+(?:19|20)\d{{2}}\b)?", _I,
        literals=_MONTH_GATE, window=30),
    # a report's "11-Nov-1955", "03/Feb/2024", "5.May.61"
    _rx(rf"\b(?:0?[1-9]|[12]\d|3[01])([-/. ]){_MONTH_I}\1(?:19|20)?\d{{2}}\b", _I,
        literals=frozenset(f"{edge}{m}" for edge in "-/." for m in
                           ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")), window=30),
    _rx(r"(?:(?:民国\s*\d{2,3}|(?:19|20)?\d{2})\s*年\s*)?\d{1,2}\s*月\s*\d{1,2}\s*[日号]"),
    # month + year is kept unless it is a birth/admission/discharge/death date
    _rx(rf"(?:\b(?:born|dob|date of birth|birthday|admitted|discharged|died|deceased)\b[\s:]*(?:in|on)?\s*)"
               rf"({_MONTH_I}\.?\s+(?:19|20)\d{{2}}|(?:0?[1-9]|1[0-2])/(?:19|20)\d{{2}})", _I),
    _rx(r"(?:出生|生于|出院|入院|去世|死亡)[^，。,;；]{0,4}?((?:19|20)\d{2}\s*年\s*\d{1,2}\s*月)"),
]
# month/day without a year after a care event or "on"/"since": "discharged on 9/2", "admitted 10/27",
# "seen Tuesday 3/14"; not a fraction or a dose ("on 1/2 a tablet", "5/10 mg", "by 1/3", "2/3 of"). The regex is
# the bare date (blood pressures make "5/" common); the context word is checked in the text before it.
_MONTH_DAY = _rx(r"(?<![\d/.])(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])"
                 r"(?![/\d]|\.\d|\s*(?:of|a|an|tabs?|tablets?|pills?|caps?|capsules?|doses?|mg|mcg|ml|cups?|scoops?|strength)\b)",
                 _I, literals=frozenset(f"{d}/" for d in "0123456789"), window=8)
_MONTH_DAY_CTX = re.compile(r"\b(?:on|since|until|till|admitted|discharged|seen|dated|due|starting|scheduled(?: for)?|dos)\s+"
                            r"(?:on\s+)?(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?$", _I)
_AGES_90 = [
    _rx(r"\b(?:9\d|1[01]\d)[- ](?:years?|yrs?)[- ]old\b", _I),
    _rx(r"\baged? (?:9\d|1[01]\d)\b", _I),
    _rx(r"(?<!\d)(?:9\d|1[01]\d)\s*(?:岁|周岁)"),
]

# ---- identifiers that need their context word -------------------------------------------------------
# a context word must end where its word ends: "platelets 245", "hospitalized 3 times", "cardio 30
# minutes", "implanted 2019" are not a plate, record, card or implant number
_CTX_IDS: list[tuple[str, GatedPattern]] = [
    ("MRN", _rx(r"(?i:\b(?:mrn|medical record|record|chart|patient id|hospital|case|encounter)(?![a-z])(?:\s*(?:number|no\.?|#|id))?)" + _SEP + _ID)),
    ("MRN", _rx(r"(?:病历|住院|门诊|病案|就诊卡|就诊|医疗卡|患者|档案)(?:号码|号|编号|卡号|ID)" + _SEP + _ID)),
    ("HEALTH_PLAN", _rx(r"(?i:\b(?:member|insurance|policy|medicare|medicaid|subscriber|group|plan|beneficiary)(?![a-z])(?:\s*(?:id|number|no\.?|#))?)" + _SEP + _ID)),
    ("HEALTH_PLAN", _rx(r"(?i:\b(?:insurance|medicare|medicaid|health plan|aetna|cigna|humana|kaiser|blue cross|bcbs|"
                        r"united ?health(?:care)?|uhc)\b)[^.\n]{0,24}?\b(?i:id|number|no\.?|#)[\s:#]*" + _ID)),
    ("HEALTH_PLAN", _rx(r"(?:医保|社保|健保|医疗保险|保险|保单|参保)(?:卡号|号码|号|单号|编号|卡)" + _SEP + _ID)),
    ("ACCOUNT", _rx(r"(?i:\b(?:account|acct|card|iban|routing|billing)(?![a-z])(?:\s*(?:number|no\.?|#))?)" + _SEP + _ID)),
    ("ACCOUNT", _rx(r"(?:银行卡|银行账|账户|账|卡)号" + _SEP + _ID)),
    ("LICENSE", _rx(r"(?i:\b(?:driver'?s?\s+licen[cs]e|licen[cs]e|dl\s*#|passport|dea|npi|certificate)(?:(?<=#)|(?![a-z]))(?:\s*(?:number|no\.?|#))?)" + _SEP + _ID)),
    ("LICENSE", _rx(r"(?:驾驶证|驾照|执业证书?|护照|资格证书?|通行证)(?:号码|号|编号)?" + _SEP + _ID)),
    ("VEHICLE", _rx(r"(?i:\b(?:vin|licen[cs]e plate|plate|registration)(?![a-z])(?:\s*(?:number|no\.?|#))?)" + _SEP + _ID)),
    # the plate or VIN in brackets or quotes: "the plate (7XKM214)", "VIN: '1HGCM82633A004352'"
    ("VEHICLE", _rx(r"(?i:\b(?:vin|licen[cs]e plate|number plate|plate|registration|rego)(?:\s*(?:number|no\.?|#))?)"
                    r"(?:\s+(?:is|was|reads))?[\s:#=]*[(\[\"'“‘]\s*([A-Za-z0-9]{2,8}(?:[ -][A-Za-z0-9]{1,4})?|[A-HJ-NPR-Za-hj-npr-z0-9]{17})[)\]\"'”’]")),
    ("VEHICLE", _rx(r"(?:车牌|车架|车辆识别)(?:号码|号|代码)?" + _SEP + r"([\u4e00-\u9fa5]?[A-Za-z0-9·•.\- ]{5,17}[A-Za-z0-9])")),
    ("DEVICE", _rx(r"(?i:\b(?:serial|s/n|device|imei|udi|implant|pacemaker|pump)(?![a-z])(?:\s*(?:id|number|no\.?|#))?)" + _SEP + _ID)),
    ("DEVICE", _rx(r"(?:序列号|设备编号|设备号|设备ID|出厂编号|机身号)" + _SEP + _ID)),
    ("ADDRESS", _rx(r"(?i:\b(?:zip|postcode|postal code)(?![a-z])(?:\s*code)?)[\s:#]*(\d{5}(?:-\d{4})?)\b")),
]
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# numbers of a specimen, a report or a study rather than of the record: "病理号P2024-11832", "标本编号 S-88123",
# "accession # 24-118832", "specimen ID: SP23-4471"; the number word is required and the identifier must hold
# at least four digits ("lab number 5" is not one)
_SPECIMEN_WORDS = ("accession", "specimen", "pathology", "path", "biopsy", "lab", "requisition", "sample", "report", "study")
_SPECIMEN_ZH = ("病理", "检验", "标本", "影像", "放射", "检查", "报告", "送检", "化验", "超声", "申请单", "条码")
# gated on the word and its number word together ("lab #", "报告编号"): "lab", "report", 检查 and 报告 alone are everywhere
_SPECIMEN_IDS = [
    _rx(rf"(?i:\b(?:{'|'.join(_SPECIMEN_WORDS)})\s*(?:number|no\.?|#|id)(?![a-z]))" + _SEP + _ID,
        literals=frozenset(f"{w}{sep}{n}" for w in _SPECIMEN_WORDS for sep in ("", " ") for n in ("number", "no", "#", "id")),
        prefix=True),
    _rx(rf"(?:{'|'.join(_SPECIMEN_ZH)})(?:号码|号|编号|单号|条码号|ID)" + _SEP + _ID,
        literals=frozenset(f"{w}{n}" for w in _SPECIMEN_ZH for n in ("号", "编号", "单号", "条码号", "id")), prefix=True),
]
# an accession or specimen label with a colon and no number word: "Accession: 24-CH-118734", "Specimen: SP23-4471"
_SPECIMEN_IDS.append(_rx(r"(?i:\b(?:accession|specimen|requisition)\s*[:#])[\s:#]*" + _ID,
                         literals=frozenset(f"{w}{sep}" for w in ("accession", "specimen", "requisition") for sep in (":", " :", "#", " #")),
                         prefix=True))
# bank cards and accounts named as such, any digit grouping, Luhn or not: "收款银行卡：6222 0212 3456 7890 123"
_ACCOUNT_ZH = _rx(r"(?:银行卡|银行账户|银行账号|收款卡|收款账户|收款账号|储蓄卡|借记卡|信用卡|账户|账号|卡号)(?:号码|号)?"
                  r"[\s:：#是为]*(\d{4}(?:[ -]?\d{2,6}){1,5})(?!\d)")
# messaging ids: WeChat 6-20 characters from a letter, QQ 5-11 digits, LINE 4-20 ("加我微信 chenba_1975", "QQ号：12345678")
_HANDLE = _rx(r"(?i:(?:微信|vx|v信|weixin|\bwechat|\bline|\bskype|\btelegram|\bwhatsapp)(?:号码|号|\s*id)?)"
              r"(?:\s*(?:is|:)\s*|[\s:：是为]*)(@?[A-Za-z][-_A-Za-z0-9.]{3,19})(?![-_A-Za-z0-9.@])",
              literals=frozenset(("微信", "vx", "v信", "weixin", "wechat", "line id", "line号", "line:", "skype", "telegram", "whatsapp")))
_QQ = _rx(r"(?i:\bqq)(?:号码|号|\s*(?:number|no\.?|#))?[\s:：是为]*([1-9]\d{4,10})(?!\d)", literals=frozenset({"qq"}), prefix=True)
_CN_PLATE = _rx(rf"[{_PROVINCES}][A-Za-z][·•.\s]?[A-Za-z0-9]{{5,6}}(?![A-Za-z0-9])", literals=frozenset(_PROVINCES), window=12)

# ---- street addresses ---------------------------------------------------------------------------------
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
           r"Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Crescent|Close|Row)")
# gate on " street" followed by what can end the word (the scan appends a newline to the text)
_STREET_WORDS = frozenset(f" {w.lower()}{end}" for w in _STREET[3:-1].split("|") for end in " .,;\n")
_ADDR_EN = _rx(
    rf"\b\d{{1,6}}\s+(?:[A-Z][A-Za-z'-]+\.?\s+){{1,4}}{_STREET}\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Unit|Suite|Ste|Flat|Room|#)\.?\s*#?[A-Za-z0-9-]+)?"
    # city, then the state with or without its comma ("Columbus, OH 43215", "Columbus OH 43215")
    r"(?:,\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?(?:,?\s+[A-Z]{2}\b)?(?:\s+\d{5}(?:-\d{4})?)?)?",
    literals=_STREET_WORDS,
)
_PO_BOX = _rx(r"\bP\.?\s?O\.?\s+Box\s+\d+\b", _I)
# anchored on "<road>123号"; the district/city prefix is gathered backwards in code (a leading lazy
# prefix in the regex would be retried at every Chinese character)
_ADDR_ZH = _rx(
    r"(?:路|街|大道|道|巷|弄|胡同)(?:[一二三四五六七八九十\d]+段)?\d+[号弄]"
    # then the building, floor and flat; a Hong Kong estate and block ("翠屏邨翠楠楼1503室") can take six characters
    r"(?:[\u4e00-\u9fa5A-Za-z]{0,4}\d+(?:号楼|号|栋|幢|座|单元|层|楼|室|户)|\d{3,5}(?![\d年月日岁])"
    r"|[\u4e00-\u9fa5]{1,4}(?:邨|村|苑|阁|轩|大厦|花园)[\u4e00-\u9fa5]{0,4}\d+(?:楼|层|室|座|号|字楼))*"
)
_ZH_ADDR_PREFIX = re.compile(r"[\u4e00-\u9fa5]{1,16}$")
_ZH_ADDR_LEAD = re.compile(r".*?(?:住喺|喺|住响|住在|住址[是为:：]?|地址[是为:：]?|位于|我家在|家在|住)")
# after an address word, a run holding a number: "地址：成都市武侯区人民南路四段12号6栋302"
_ADDR_ZH_CTX = _rx(r"(?:地址|住址|家住|住在|寄到|收货地址)(?:是|为|在)?[：:\s]*([\u4e00-\u9fa5A-Za-z0-9#\-]{4,40}?\d[\u4e00-\u9fa5A-Za-z0-9#\-]*)")
# a compound and a building with no road word: "朝阳区望京西园三区312号楼", "天河区天河北苑5栋2单元"; anchored on the
# building number, the district before it is gathered in code and required (a hospital's "门诊3号楼" is no address)
_ADDR_ZH_BLDG = _rx(r"\d+(?:号楼|栋|幢)(?:\d+单元)?(?:\d+(?:室|号|层))?", literals=frozenset(("号楼", "栋", "幢")), window=24,
                    prefix=False)
_ZH_DISTRICT = re.compile(r"[\u4e00-\u9fa5]{1,6}?(?:省|市|区|县|镇|乡)(?=[\u4e00-\u9fa5]{2})")
_ZH_NOT_HOME = re.compile(r"院|医|诊|病|科|校|学|中心|公司|单位|酒店|宾馆|商场")
# "住在心内科三病区12床" is a ward and a bed, no home
_ZH_WARD = re.compile(r"床|病区|病房|科|监护室|icu|ICU")
_ADDR_ZH2 = _rx(r"[\u4e00-\u9fa5]{2,8}(?:小区|花园|公寓|大厦|家园|新村|苑)\d+(?:号楼|栋|幢|座)(?:\d+单元)?(?:\d+室?)?")

# ---- names in context ---------------------------------------------------------------------------------
# a capitalised name word, Latin-1 letters included ("Inês", "Müller", "Núñez"), double-barrelled or a hyphenated
# Cantonese given name ("Tai-man")
_UP, _LOW = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
_CAP = rf"(?:O['’])?[{_UP}][{_LOW}]+(?:-[{_UP}{_LOW}][{_LOW}]+)?"
# a full name with an optional middle initial: "Roberta Q. Nakamura"
_FULL_NAME = rf"{_CAP}(?:\s+[A-Z]\.)?(?:\s+{_CAP}){{0,2}}"
_RELATIVES = (r"son|daughter|wife|husband|mother|father|mom|mum|dad|brother|sister|friend|grandma|grandpa|"
              r"grandmother|grandfather|grandson|granddaughter|partner|boyfriend|girlfriend|child|kid|baby|"
              r"nephew|niece|aunt|uncle|cousin|fianc[eé]e?|neighbou?r|roommate|colleague|boss|coworker|stepson|stepdaughter")
# gate for "my <relative> <name>": the pair, not the relative word alone ("son" is in "reason", "baby" in every
# paediatric question)
_MY_RELATIVE = frozenset(f"my {r}" for r in required_literals(f"(?:{_RELATIVES})") or ())
# gate for a relative or contact label followed by a full name: the word where a word starts, then a space or colon
_REL_LABEL_GATE = frozenset(f"{edge}{r}{after}" for r in (*(required_literals(f"(?:{_RELATIVES})") or ()),
                                                        "next of kin", "emergency contact", "contact person", "guardian", "caregiver")
                            for edge in " \n(" for after in (" ", ":", ","))
_NAME_RES: list[tuple[GatedPattern, int]] = [
    (_rx(window=60, pattern=rf"(?i:\b(?:my name is|my name's|name\s*:|patient name\s*:?|full name\s*:?|call me|signed,?|sincerely,?|regards,?)\s+)({_CAP}(?:\s+{_CAP}){{0,2}})"), 1),
    # "pt" alone is inside "symptoms" and "prompt": gate on the forms that can introduce a name
    (_rx(window=60, literals=frozenset({"i am ", "i'm ", "this is ", "it's ", "pt:", "pt :", "patient"}), prefix=True,
         pattern=rf"(?i:\b(?:i am|i'm|this is|it's|pt\s*:|patient\s*:?)\s+)({_CAP}(?:\s+{_CAP}){{1,2}})"), 1),
    (_rx(window=60, pattern=rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Mister)\.?\s+({_CAP}(?:\s+{_CAP}){{0,2}})"), 1),
    # a relative's name written in lower case, and nicknames: "her name's beatrice kowalski", "goes by Tommy"
    (_rx(window=60, pattern=r"(?i:\b(?:her|his|their|my \w+'s) name(?:'s| is)\s+)([a-z][a-z'-]+(?:\s+[a-z][a-z'-]+){0,2})"), 1),
    (_rx(window=60, pattern=rf"(?i:\b(?:goes by|known as|nicknamed|we call (?:him|her)|"
                            rf"(?:everyone|everybody|we all|they all|people|friends|family)\s+calls?\s+(?:him|her|me|them))\s+)({_CAP})"), 1),
    # the name on a document or the legal one: "Name as on passport: Anneliese Vogt", "her legal name is Roberta Q. Nakamura"
    (_rx(window=80, literals=frozenset(("name as", "name on", "legal name", "maiden name", "birth name", "real name",
                                        "given name", "registered name", "full name", "name in full")), prefix=True,
         pattern=r"(?i:\b(?:name\s+(?:as\s+(?:on|in|per|shown\s+on)|on)\s+(?:the\s+|my\s+|his\s+|her\s+|their\s+)?"
                 r"(?:passport|id|id card|card|record|form|insurance card|licen[cs]e|certificate)|name\s+in\s+full|"
                 r"(?:legal|full|maiden|birth|real|given|registered)\s+name)(?:\s+(?:is|was)|\s*:)\s+)"
                 rf"({_FULL_NAME})"), 1),
    # a report header's "Patient: HOLLOWAY, Graham P." (SURNAME, Given M.)
    (_rx(window=60, literals=frozenset(("patient:", "patient :", "pt:", "pt :", "name:", "name :", "surname:")),
         pattern=rf"(?i:\b(?:patient(?:\s+name)?|pt|name|surname)\s*:[ \t]*)([{_UP}][{_UP}'’-]+,[ \t]*{_CAP}(?:[ \t]+[A-Z]\.?(?![{_LOW}]))?)"), 1),
    (_rx(window=60, pattern=rf"(?i:\b(?:hey|hi|hello),? (?:it's|it is|this is)\s+)({_CAP})\b"), 1),
    (_rx(window=60, literals=_MY_RELATIVE, prefix=True, pattern=rf"(?i:\bmy\s+(?:{_RELATIVES})(?:'s)?,?\s+)({_CAP}(?:\s+{_CAP})?)"), 1),
    (_rx(window=60, pattern=rf"\b({_CAP}\s+{_CAP}),?\s+(?i:dob|d\.o\.b|born|mrn|date of birth|age[ds]?\s+\d)"), 1),
]
# a relative or contact named in full without "my", as in a handoff or a form: "Daughter Claire Pennington is the
# contact", "wife: Mary Jones", "next of kin Rosa Diaz" (two capitalised words; a title such as Dr. is no name).
# Relative words are common, so the regex is only matched where a gate literal starts (like _LOCAL_PHONE_AT),
# never searched over windows
_REL_LABEL_PAT = (rf"(?i:(?:{_RELATIVES}|next of kin|emergency contact|contact person|guardian|caregiver))"
                  rf"\s*[:,-]?\s+({_CAP}\s+{_CAP})\b")
_REL_LABEL = _rx(_REL_LABEL_PAT, literals=_REL_LABEL_GATE, prefix=True, window=60)
_REL_LABEL_AT = re.compile(_REL_LABEL_PAT)
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FIRST_NAMES = _words("""
james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony mark
donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan jacob gary
nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander frank patrick raymond
jack dennis jerry tyler aaron jose adam nathan henry douglas zachary peter kyle noah ethan jeremy walter christian
keith roger terry austin sean gerald carl harold dylan arthur lawrence jordan jesse bryan billy bruce gabriel joe
logan alan juan albert willie elijah wayne randy vincent mason roy ralph bobby russell bradley philip eugene liam
lucas oliver leo owen luke isaac carlos luis miguel wei ming tom mike chris dan steve bob jim ben sam alex
mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty sandra margaret ashley
kimberly emily donna michelle carol amanda melissa deborah stephanie dorothy rebecca sharon laura cynthia amy
kathleen angela shirley brenda emma anna pamela nicole samantha katherine christine helen debra rachel carolyn
janet maria catherine heather diane olivia julie joyce victoria ruth virginia lauren kelly christina joan evelyn
judith andrea hannah megan cheryl jacqueline martha madison teresa gloria sara janice ann kathryn abigail sophia
frances jean alice judy isabella julia grace amber denise danielle marilyn beverly charlotte natalie theresa
diana brittany doris kayla alexis lori marie mia ava chloe zoe lily ella sophie jane kate lucy rose sue meg
rosa carmen lucia ana sofia elena isabel pedro diego antonio manuel francisco javier jorge ricardo fernando
alejandro raul ramon rafael sergio andres eduardo roberto mario hector oscar ruben alberto marta yolanda veronica
adriana beatriz mohammed ahmed fatima aisha priya raj anil sunita
""")
# two capitalised words starting at a common first name; the name list is the gate and is checked in code (a
# 340-way alternation tried at every position cost five times more). Only the first word is consumed, so that
# "The James Smith" still finds "James Smith" after rejecting "The James".
_TWO_CAPS = _rx(rf"\b([A-Z][a-z]+)(?=\s+({_CAP})\b)",
                literals=frozenset(f"{n} " for n in _FIRST_NAMES), window=40, prefix=True)
# a relative's name typed in lower case, "my grandma rosa delgado was admitted": a known first name (not one that
# is also a common word: "my mom rose early"), then a surname only when a verb or punctuation follows it
_LOWER_FIRST = _FIRST_NAMES - _words("mark rose grace frank jack bob sue amber lily will joy hope may june ray")
_REL_LOWER = _rx(
    rf"(?i:\bmy\s+(?:{_RELATIVES})(?:'s)?,?\s+)((?-i:{'|'.join(sorted(_LOWER_FIRST))}))\b"
    r"((?-i:\s+(?!(?:is|was|has|had|and|who|got|gets|just|went|needs|keeps|can|will|would|did|does|says|said|also|"
    r"still|fell|came|lives|turned|died|passed|with|from|in|on|at|to|for|the|a|an)\b)[a-z][a-z'-]+)"
    r"(?=\s*(?:[,.;:!?()]|$|(?:was|is|has|had|who|got|just|went|needs|passed|died|fell|lives|and)\b)))?",
    literals=_MY_RELATIVE, prefix=True, window=80)
_NOT_NAMES = _words("""
parkinson parkinsons hashimoto hashimotos crohn crohns alzheimer alzheimers graves addison addisons cushing cushings
hodgkin hodgkins bell bells tourette tourettes down raynaud raynauds sjogren sjogrens kawasaki guillain barre
huntington huntingtons wilson wilsons paget pagets bright lyme asperger aspergers reye meniere menieres
the and but not just very so my his her our their your this that what when where how why who which a an
i im dr doctor nurse monday tuesday wednesday thursday friday saturday sunday january february march april may
june july august september october november december god jesus covid ok okay hi hello dear thanks thank please
pregnant diabetic fine sorry worried scared tired afraid sure here there also still only new type stage
reception team staff office admin clinic pharmacy support desk surgery practice
hospital infirmary medical health centre center university college school church
facebook instagram twitter whatsapp tiktok youtube google reddit linkedin wechat
""")

_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡杜叶程苏魏吕丁任沈姚卢"
             "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤"
             "庞樊兰殷施陈倪严牛温芦季俞章鲁葛伍申尤毕聂焦向柳邢岳齐沿梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关苗凌费"
             "纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁隋植甘景薄单包司柏宁柯阮桂闵")
_COMPOUND_SURNAMES = "欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|长孙|宇文|司徒|令狐|夏侯|轩辕"
_ZH_TRIGGER = (r"(?:患者|病人|病患|患儿|伤者|产妇|孕妇|家属|姓名|我叫|我的名字是|名字叫|名叫|叫做|本人|老公|老婆|丈夫|妻子|爱人|"
               r"爸爸|妈妈|父亲|母亲|儿子|女儿|爷爷|奶奶|外公|外婆|姥姥|姥爷|哥哥|姐姐|弟弟|妹妹|孙子|孙女|朋友|同事|室友|邻居|先生|"
               r"我妈|我爸|我哥|我姐|我弟|我妹|老妈|老爸|我婆婆|我公公|"
               # uncles, aunts, in-laws and cousins; Cantonese and Taiwanese forms (the text is read as Simplified)
               r"舅舅|舅妈|姑姑|姑妈|姑父|姨妈|小姨|姨父|叔叔|婶婶|伯伯|伯父|伯母|阿公|阿嬷|阿嫲|阿婆|阿爷|岳父|岳母|"
               r"嫂子|姐夫|表哥|表姐|表弟|表妹|堂哥|堂姐|堂弟|堂妹|侄子|侄女|外甥|外甥女|外孙|外孙女|老豆|阿爸|阿妈|细佬|家姐|"
               # account holders and payees: "开户人：孙浩然", "户名 孙浩然"
               r"开户人|户名|持卡人|收款人|账户名|"
               # "他叫李建国", and the name fields of forms and parcels ("收件人陈志刚", "紧急联系人：王芳")
               r"他叫|她叫|收件人|收货人|寄件人|联系人|监护人|委托人|申请人|就诊人|受检人|被保险人|投保人)")
_ZH_SURNAMED = rf"((?:{_COMPOUND_SURNAMES}|[{_SURNAMES}])[\u4e00-\u9fa5]{{1,2}})"
# "我妈叫李秀英": the relative, then 叫 / 名叫 / 叫做, then the name
# (or the name in brackets after the relative: "妈妈（孙桂芳）")
_ZH_NAME = _rx(_ZH_TRIGGER + r"[\s:：，,（(]*(?:叫|名叫|叫做)?" + _ZH_SURNAMED)
# a surname and a title is a clinician, never a patient's name ("他叫王医生来看", "联系人张主任")
_ZH_TITLE = re.compile(r"(?:医生|大夫|护士|主任|教授|院长|医师|药师|老师)")
# a neighbour named with a kinship title: "我隔壁的王桂兰阿姨", "楼下的李建国大爷"; the full name is required ("张阿姨"
# is a surname and a title)
_ZH_NEIGHBOUR = _rx(r"(?:隔壁|邻居|楼上|楼下|对门|同村)(?:家)?的?" + _ZH_SURNAMED
                    + r"(?=阿姨|叔叔|奶奶|爷爷|大爷|大妈|大娘|大婶|婆婆|伯伯|阿婆|阿伯|大姐|大哥|老师傅|老人家|老太太|老先生)")
# "老周（周德明）": a 老/小 nickname with the full name in brackets (both are identifying)
_ZH_NICK_FULL = _rx(rf"((?:老|小)[{_SURNAMES}])[（(]{_ZH_SURNAMED}[）)]", literals=frozenset("（("))
# "我是赵敏的家属": the name comes before the relation
_ZH_NAME_BEFORE = _rx(r"(?:我是|我们是|作为|是)" + _ZH_SURNAMED
                      + r"的(?:家属|家人|妈妈|母亲|爸爸|父亲|儿子|女儿|丈夫|妻子|爱人|老公|老婆|监护人|陪护)")
# characters that end a name rather than belong to it (the next word has begun)
_ZH_STOP = frozenset("今因于在的是有男女年岁说患诉主自入出需手电身住病来去和与及等也都很就才又还已被将要想会能让给从向对近突无昨前后这那个了吗呢吧啊，")
_ZH_NOT_NAMES = frozenset(("高血", "高烧", "高热", "高压", "高龄", "黄疸", "白细", "白血", "白天", "马上", "何时", "方便", "常规", "常常",
                 "夏天", "石膏", "金黄", "毛囊", "任何", "许多", "许久", "周围", "周身", "周前", "周后", "陈旧", "成人", "田间",
                 "江湖", "曾经", "史上", "龙头", "时候", "时间", "单位", "包括", "齐全", "关节", "管理", "路上", "申请", "程度",
                 "宁可", "景象", "甘油", "万一", "严重", "于是", "向来", "朱砂", "孔洞", "左侧", "左边", "左手", "左腿", "左眼",
                 "柏油", "谷丙", "谷草", "牛奶", "牛肉", "章节", "包皮", "苗条", "齐刷", "温度", "温水", "舒服", "季节", "成年",
                 "游泳", "阳性", "卫生", "屈光", "查出", "查体", "单侧", "司机", "平时", "钱包", "项目", "曲线", "能力"))


def _cn_id_ok(digits: str) -> bool:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(digits[:17], weights))
    return "10X98765432"[total % 11] == digits[17].upper()


_TW_LETTERS = {c: n for n, c in enumerate("ABCDEFGHJKLMNPQRSTUVXYWZIO", 10)}


def _twid_ok(value: str) -> bool:
    """Taiwan ID checksum: the letter's two-digit code, then weights 8..1 and the check digit."""
    code = _TW_LETTERS[value[0].upper()]
    total = code // 10 + (code % 10) * 9 + sum(int(d) * w for d, w in zip(value[1:9], range(8, 0, -1))) + int(value[9])
    return total % 10 == 0


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


_CARD = _rx(r"(?<![\d-])\d{4}(?:[ -]?\d{4}){2}[ -]?\d{1,7}(?![\d-])", literals=_NUMERIC, window=40)


def _run(pattern: GatedPattern, text: str, hits: Hits) -> Iterator[re.Match[str]] | tuple[()]:
    """Matches of a gated pattern; nothing at all (not even a generator) when its literals are absent."""
    return pattern.finditer(text, hits) if pattern.index in hits else ()


def _simple(pattern: GatedPattern, entity: str, group: int = 0) -> Callable[[str, Hits], Iterator[Span]]:
    def find(text: str, hits: Hits) -> Iterator[Span]:
        for m in _run(pattern, text, hits):
            yield m.start(group), m.end(group), entity
    return find


# toll-free and hotline numbers belong to a business, never a person: China's 400/800 service lines, North America's
# 800/888/877/866/855/844/833
_HOTLINE = re.compile(r"\+?(?:1[\s.-]?)?\(?(?:400|800|833|844|855|866|877|888)\)?[\s.-]?\d{3}[\s.-]?\d{4}")


def _phones(text: str, hits: Hits) -> Iterator[Span]:
    for pat in (_CN_MOBILE, _CN_LANDLINE, _US_PHONE, _INTL_PHONE, _NATIONAL_PHONE):
        for m in _run(pat, text, hits):
            digits = sum(c.isdigit() for c in m.group())
            if digits < 7 or (pat is _NATIONAL_PHONE and not 10 <= digits <= 11) or _HOTLINE.fullmatch(m.group()):
                continue
            before = text[max(0, m.start() - 24):m.start()]
            yield m.start(), m.end(), "FAX" if _FAX_CTX.search(before) else "PHONE"
    for at in hits.get(_HK_PHONE.index, ()) if _PHONE_WORDS.index in hits else ():
        m = _HK_PHONE_AT.match(text, at)
        if m is not None and not (at and text[at - 1] in "0123456789+-"):
            before = text[max(0, at - 24):at]
            if _HK_PHONE_CTX.search(before):
                yield m.start(), m.end(), "FAX" if _FAX_CTX.search(before) else "PHONE"
    last = -99  # a second number right after an accepted one ("555-0142 or 555-0199") is one too
    for at in sorted(hits.get(_LOCAL_PHONE.index, ())) if _PHONE_WORDS.index in hits else ():
        m = _LOCAL_PHONE_AT.match(text, at)
        if m is None or (at and text[at - 1] in "0123456789-"):
            continue
        before = text[max(0, at - 32):at]
        if at - last <= 6 or _PHONE_CTX.search(before):
            last = m.end()
            yield m.start(), m.end(), "FAX" if _FAX_CTX.search(before) else "PHONE"


def _cn_ids(text: str, hits: Hits) -> Iterator[Span]:
    for m in _run(_CN_ID, text, hits):
        if _cn_id_ok(m.group()):
            yield m.start(), m.end(), "CN_ID"
    for m in _run(_CN_ID_CTX, text, hits):  # the caller said it is an ID number: trust that over the checksum
        yield m.start(1), m.end(1), "CN_ID"


def _national_ids(text: str, hits: Hits) -> Iterator[Span]:
    """HKID and Taiwan IDs without a context word (run last: "Aetna ID W123456789" stays a plan number)."""
    for at in hits.get(_NATIONAL_IDS.index, ()):
        for back in (1, 2):
            m = _NATIONAL_ID_AT.match(text, at - back) if at >= back else None
            if m is not None and (m.group(1) or _twid_ok(m.group(2))):
                yield m.start(), m.end(), "NATIONAL_ID"
                break
    for m in _run(_ID_CARD_CTX, text, hits):
        yield m.start(1), m.end(1), "NATIONAL_ID"


def _ssns(text: str, hits: Hits) -> Iterator[Span]:
    for m in _run(_SSN, text, hits):
        yield m.start(), m.end(), "SSN"
    for m in _run(_SSN_CTX, text, hits):
        yield m.start(1), m.end(1), "SSN"


def _dates(text: str, hits: Hits) -> Iterator[Span]:
    for i, pat in enumerate(_DATE_RES):
        group = 1 if i >= 6 else 0
        for m in _run(pat, text, hits):
            yield m.start(group), m.end(group), "DATE"
    for m in _run(_MONTH_DAY, text, hits):
        if _MONTH_DAY_CTX.search(text, max(0, m.start() - 40), m.start()):
            yield m.start(), m.end(), "DATE"
    for pat in _AGES_90:
        for m in _run(pat, text, hits):
            yield m.start(), m.end(), "AGE"


def _context_ids(text: str, hits: Hits) -> Iterator[Span]:
    for entity, pat in _CTX_IDS:
        for m in _run(pat, text, hits):
            yield m.start(1), m.end(1), entity
    for pat in _SPECIMEN_IDS:
        for m in _run(pat, text, hits):
            if sum(c.isdigit() for c in m.group(1)) >= 4:
                yield m.start(1), m.end(1), "MRN"
    for m in _run(_CN_PLATE, text, hits):
        yield m.start(), m.end(), "VEHICLE"
    for m in _run(_ACCOUNT_ZH, text, hits):
        if sum(c.isdigit() for c in m.group(1)) >= 8:  # "账户3000元" is a balance
            yield m.start(1), m.end(1), "ACCOUNT"
    for m in _run(_HANDLE, text, hits):
        # a handle holds a digit, an underscore or a hyphen: "加微信 chenba_1975", not "WhatsApp messages"
        if any(c.isdigit() or c in "_-" for c in m.group(1)):
            yield m.start(1), m.end(1), "HANDLE"
    for m in _run(_QQ, text, hits):
        yield m.start(1), m.end(1), "HANDLE"
    for m in _run(_CARD, text, hits):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            yield m.start(), m.end(), "ACCOUNT"


def _addresses(text: str, hits: Hits) -> Iterator[Span]:
    for pat in (_ADDR_EN, _PO_BOX):
        for m in _run(pat, text, hits):
            yield m.start(), m.end(), "ADDRESS"
    for m in _run(_ADDR_ZH, text, hits):
        prefix = _ZH_ADDR_PREFIX.search(text, max(0, m.start() - 16), m.start())
        start = prefix.start() if prefix else m.start()
        # the gathered prefix can include "我家住在": start after the last such lead-in
        lead = _ZH_ADDR_LEAD.match(text, start, m.start())
        yield (lead.end() if lead else start), m.end(), "ADDRESS"
    for m in _run(_ADDR_ZH2, text, hits):
        yield m.start(), m.end(), "ADDRESS"
    for m in _run(_ADDR_ZH_BLDG, text, hits):
        prefix = _ZH_ADDR_PREFIX.search(text, max(0, m.start() - 16), m.start())
        if prefix is None:
            continue
        # start after the last lead-in word ("我们在", "地址是", "住"), then at the district
        lead = max(prefix.group().rfind(w) + len(w) for w in ("在", "是", "到", "住", "址"))
        start = prefix.start() + max(lead, 0)
        district = _ZH_DISTRICT.search(text, start, m.start())
        if district and not _ZH_NOT_HOME.search(text, start, m.start()):
            yield district.start(), m.end(), "ADDRESS"
    for m in _run(_ADDR_ZH_CTX, text, hits):
        if not _ZH_WARD.search(m.group(1)):
            yield m.start(1), m.end(1), "ADDRESS"


# what makes a first-name-and-surname pair no patient: a clinician's title ("Dr. Angela Whitmore", "Nurse Mary
# Jones") or a public figure's news ("I read that Bruce Willis ...", "the actor Tom Hanks")
_NOT_PATIENT_BEFORE = re.compile(
    r"(?:\b(?:dr|doctor|prof|professor|nurse|np|pa-c|rn|surgeon|consultant|pharmacist|therapist|dietitian|midwife)\.?,?\s+"
    r"|\b(?:i|we)\s+(?:just\s+)?(?:read|heard|saw)(?:\s+(?:online|somewhere|on the news|in the news|in an article))?\s+that\s+"
    r"|\b(?:the\s+)?(?:actor|actress|singer|celebrity|president|senator|rapper|footballer|athlete|comedian|author|"
    r"presenter|broadcaster|star|musician|astronaut|billionaire)\s+)$", _I)


def _is_name(candidate: str) -> bool:
    words = [w.lower().replace("'", "").replace("’", "") for w in candidate.split()]
    return bool(words) and not any(w in _NOT_NAMES or w.rstrip("s") in _NOT_NAMES for w in words)


def _names(text: str, hits: Hits) -> Iterator[Span]:
    for pat, group in _NAME_RES:
        for m in _run(pat, text, hits):
            start, end = m.span(group)
            # keep the words up to the first one that is not a name ("joan and she" -> "joan")
            words = re.sub(r"['’]s$", "", m.group(group)).split()
            cut = next((i for i, w in enumerate(words) if not _is_name(w)), len(words))
            words = words[:cut]
            if words and _is_name(" ".join(words)):
                yield start, start + len(" ".join(words)), "PERSON"
    for at in hits.get(_REL_LABEL.index, ()):
        m = _REL_LABEL_AT.match(text, at + 1)  # the literal starts at its edge character (-1: the text's start)
        if m is not None:
            words = m.group(1).split()
            if _is_name(words[0]) and _is_name(m.group(1)):
                yield m.start(1), m.end(1), "PERSON"
    for m in _run(_REL_LOWER, text, hits):
        if _is_name(m.group(0)[m.start(1) - m.start():]):
            yield m.start(1), m.end(2) if m.group(2) else m.end(1), "PERSON"
    for m in _run(_TWO_CAPS, text, hits):
        if (m.group(1).lower() in _FIRST_NAMES and _is_name(m.group(2))
                and not _NOT_PATIENT_BEFORE.search(text, max(0, m.start() - 40), m.start())):
            yield m.start(1), m.end(2), "PERSON"
    for m in _run(_ZH_NICK_FULL, text, hits):
        yield m.start(1), m.end(1), "PERSON"
        yield m.start(2), m.end(2), "PERSON"
    for m in (*_run(_ZH_NAME, text, hits), *_run(_ZH_NAME_BEFORE, text, hits), *_run(_ZH_NEIGHBOUR, text, hits)):
        start, end = m.span(1)
        name = m.group(1)
        if "某" in name or name[:2] in _ZH_NOT_NAMES or any(_ZH_TITLE.match(text, start + i) for i in (1, 2, len(name))):
            continue
        if len(name) == 3 and name[2] in _ZH_STOP:
            name, end = name[:2], end - 1
        # a school year or a placeholder, not a name: "我表弟高三", "张三"
        if name[-1] in _ZH_STOP or (len(name) == 2 and name[1] in "一二三四五六七八九十"):
            continue
        yield start, end, "PERSON"


def _ipv4(text: str, hits: Hits) -> Iterator[Span]:
    for m in _run(_IPV4, text, hits):
        if all(int(octet) <= 255 for octet in m.group().split(".")):
            yield m.start(), m.end(), "IP"


_FINDERS: list[Callable[[str, Hits], Iterator[Span]]] = [
    _simple(_EMAIL, "EMAIL"), _simple(_URL, "URL"), _ipv4, _simple(_IPV6, "IP"),
    _ssns, _cn_ids, _phones, _dates, _context_ids, _addresses, _names, _national_ids,
]
_TRAILING = ".,;:!?)]}'\"，。；：！？）"


def _simplified(text: str, view: str | None) -> str:
    """`text` with Traditional Chinese read as Simplified, case kept, one character per character: the rules
    are written in Simplified ("我妈妈", "电话", "号") and run on this. Only texts whose view differs from their
    lower case beyond ASCII can hold Traditional characters."""
    if text.isascii() or (view is not None and view == text.lower()):
        return text
    return simplified(text)


def find_phi(text: str, entities: frozenset[str] | None = None, view: str | None = None,
             hits: Hits | None = None) -> list[Span]:
    """Non-overlapping PHI spans in `text` (already normalised), left to right.

    `view` is the lower-cased text of the same length (normalize.match_view) and `hits` its gate scan
    (gate.SHARED.scan) when the caller already has them.
    """
    if hits is None:
        hits = _G.scan(match_view(text) if view is None else view)
    # every recogniser is gated: none of their gate literals, no PHI (the shared scan also reports
    # the other rails' literals, which must not send ordinary text through every recogniser)
    if not hits or _PHI_INDICES.isdisjoint(hits):
        return []
    text = _simplified(text, view)
    spans: list[Span] = []
    for finder in _FINDERS:
        for start, end, entity in finder(text, hits):
            while end > start and text[end - 1] in _TRAILING:
                if text[end - 1] in ")）" and ("(" in text[start:end - 1] or "（" in text[start:end - 1]):
                    break
                end -= 1
            while end > start and text[end - 1] == " ":
                end -= 1
            if end > start and (entities is None or entity in entities):
                spans.append((start, end, entity))
    if not spans:
        return spans
    # Longest span wins an overlap: "John Alvarez, MRN 00482913" style contexts can be matched twice.
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    merged: list[Span] = []
    for span in spans:
        if merged and span[0] < merged[-1][1]:
            last = merged[-1]
            if span[1] > last[1]:
                merged[-1] = (last[0], span[1], last[2] if last[1] - last[0] >= span[1] - span[0] else span[2])
            continue
        merged.append(span)
    return merged
