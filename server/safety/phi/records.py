"""Identifiers in structured records: HL7 PID and NK1 segments, JSON name fields, the name column of a
pasted table or CSV, labelled form lines, the senders of an exported chat, and a letter's signature.

A record says which of its values is a name, so the value needs no cue of its own: "GARCIA
LOPEZ^MARIA^ELENA" in PID-5, `"given": ["Chidi", "Emmanuel"]`, the 姓名 column of a spreadsheet, "LEUNG, Ka
Yan 梁嘉欣" after 病人姓名. A value is taken as a name only when it reads as one (letters, at most six words,
capitalised in Latin script, two to four characters in Chinese), so "Patient: 65-year-old man" and a drug in
a `"name"` field of a medication list stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety.gate import Hits
from server.safety.phi import zh_words
from server.safety.phi.common import I, rx
from server.safety.phi.names import NAME_PARTICLES
from server.safety.phi.numbered import is_id_label
from server.safety.verdict import Span

# only a gate: the parsers below read the whole text once one of these words is in it; 号 only as a label's
# end before its separator ("病历号：", "卡号|"): the character alone is in every date ("3号")
_GATE_WORDS = (
    "name", "姓名", "pid|", "nk1|", "surname", "forename", "insured", "patient", "next of kin", "nok",
    "contact", "患者", "病人", "联系人", "家属", "孩子", "患儿", "小名", "乳名", "昵称", "nickname", "addr",
    "phone", "ph:", "tel:", "mobile", "ssn", "nric", "地址", "住址", "电话", "手机", "身份证", "身分证",
    "dob", "出生", "生日", "mrn", "no.",
)  # fmt: skip
_HAO_LABELS = tuple(f"号{m}{sep}" for m in ("", "码") for sep in (":", "：", "|", " |", ",", "，", "\t"))
_GATE = rx(
    "|".join(re.escape(w) for w in (*_GATE_WORDS, *_HAO_LABELS)),
    I,
    literals=frozenset((*_GATE_WORDS, *_HAO_LABELS)),
)

# a header cell or a form label that names a person's field (lower case, Simplified: the text the
# recognisers read is simplified; see phi/__init__.py)
_NAME_FIELDS = frozenset(
    {
        "name", "full name", "patient", "patient name", "pt name", "pt", "surname", "forename", "first name",
        "last name", "given name", "given names", "family name", "insured", "insured name", "member name",
        "nok", "next of kin", "emergency contact", "contact name", "姓名", "名字", "患者", "患者姓名", "病人",
        "病人姓名", "联系人", "紧急联系人", "家属", "家属姓名", "被保险人", "投保人", "受保人", "被保人",
        "孩子", "患儿", "小名", "乳名", "昵称", "nickname", "preferred name", "known as", "aka",
    }
)  # fmt: skip
# fields whose value is another identifier: the whole value goes, whatever its shape, when it holds enough
# digits (a phone, an id) or reads as a street address ("Address: 12/45 Railway Pde, Burwood NSW 2134")
_TYPED_FIELDS = {
    **dict.fromkeys(
        ("address", "addr", "home address", "地址", "住址", "家庭住址", "现住址", "居住地址", "联系地址"),
        "ADDRESS",
    ),
    **dict.fromkeys(
        ("phone", "ph", "tel", "telephone", "mobile", "mob", "cell", "contact number", "电话", "手机",
         "联系电话", "手机号", "电话号码", "手机号码"),
        "PHONE",
    ),
    **dict.fromkeys(
        ("ssn", "nric", "nik", "cnic", "bsn", "snils", "national id", "id card", "身份证", "身分证",
         "身份证号", "身分证号", "身份证号码", "证件号", "证件号码"),
        "NATIONAL_ID",
    ),
    # a birth date's label takes its value however it is written ("DOB: O8/l5/l95O" off a scan)
    **dict.fromkeys(
        ("dob", "d.o.b", "d.o.b.", "date of birth", "birth date", "出生日期", "生日", "出生年月"), "DATE"
    ),
}  # fmt: skip
# other header words: "| Name | DOB |" is a header, not a name field's value
_FIELD_WORDS = _NAME_FIELDS | frozenset(
    {"dob", "date of birth", "birth date", "出生日期", "生日", "phone", "tel", "电话", "手机", "sex",
     "gender", "性别", "age", "年龄", "mrn", "id", "address", "地址", "relationship", "关系",
     "value", "field"}
)  # fmt: skip
# a column headed only "name" holds people when the table also has a column about a person
_GENERIC_FIELDS = frozenset({"name", "名字"})
_PERSON_COLUMNS = frozenset(
    {"dob", "date of birth", "birth date", "出生日期", "生日", "sex", "gender", "性别", "age", "年龄", "mrn",
     "phone", "tel", "电话", "手机", "address", "地址", "relationship", "关系", "nhs", "nric", "身份证"}
)  # fmt: skip
_NOT_NAMES = frozenset(
    {"male", "female", "unknown", "n/a", "na", "none", "self", "yes", "no", "男", "女", "本人", "未知", "无"}
)
# words of a team's or a place's name, not a person's ("The Clinic Team", "Riverside Surgery")
_NOT_NAME_WORDS = frozenset(
    {"the", "team", "clinic", "hospital", "department", "dept", "staff", "office", "surgery", "practice",
     "pharmacy", "nurses", "nursing", "desk", "support", "services", "service", "center", "centre", "unit",
     "ward", "group", "care", "health", "medical", "reception", "admin", "doctors", "all"}
)  # fmt: skip
_HAN = re.compile(r"[\u4e00-\u9fff]+")
_LATIN_WORD = re.compile(r"[A-Z][A-Za-z'’\-.]*|[a-z]+")


# a digit a scan read inside a word ("Ge0rge Wash1ngton"): the letter it stands for
_OCR_IN_WORD = re.compile(r"(?<=[A-Za-z])[01345](?=[A-Za-z])")
_OCR_LETTER = {"0": "o", "1": "l", "3": "e", "4": "a", "5": "s"}


def looks_like_name(value: str) -> bool:
    """Whether a record's value reads as a person's name in Latin script, Chinese, or both."""
    value = _OCR_IN_WORD.sub(lambda m: _OCR_LETTER[m.group()], value.strip(" \t*_"))
    if not value or len(value) > 50 or value.lower() in _NOT_NAMES:
        return False
    if any(c.isdigit() for c in value) or "@" in value:
        return False
    han = _HAN.findall(value)
    if han and not all(2 <= len(run) <= 4 and not _everyday(run) for run in han):
        return False  # "老年男性", "配偶" after 患者 or 家属 are no names
    latin = re.sub(r"[\u4e00-\u9fff·^,，()（）]+", " ", value).split()
    if len(latin) > 6:
        return False
    for word in latin:
        if not _LATIN_WORD.fullmatch(word) or word.lower() in _NOT_NAME_WORDS:
            return False
        if word[0].islower() and word not in NAME_PARTICLES:  # "Daan van der Berg"
            return False
    return bool(han or latin)


def _everyday(run: str) -> bool:
    """A Chinese value that is an everyday word, or two of them ("老年男性"); a name field's value is a name
    unless it is plainly a word, so a frequent first half alone ("欧阳琳") does not veto it."""
    words = zh_words.everyday_words()
    return run in words or (len(run) == 4 and run[:2] in words and run[2:] in words)


# --- HL7 v2: PID-2/3/4 ids, 5 name, 6 mother's maiden name, 7 birth date, 9 alias, 11 address, 13/14
# phones, 18 account number, 19 SSN; NK1-2 name, 4 address, 5/6 phones
_SEGMENT = re.compile(r"(?:^|(?<=[\s>]))(PID|NK1)\|[^\n]*")
_HL7_FIELDS = {
    "PID": {2: "MRN", 3: "MRN", 4: "MRN", 5: "PERSON", 6: "PERSON", 7: "DATE", 9: "PERSON", 11: "ADDRESS",
            13: "PHONE", 14: "PHONE", 18: "MRN", 19: "SSN"},
    "NK1": {2: "PERSON", 4: "ADDRESS", 5: "PHONE", 6: "PHONE"},
}  # fmt: skip


def _hl7(text: str) -> Iterator[Span]:
    if "PID|" not in text and "NK1|" not in text:
        return  # (a plain look first: the segment pattern tries every position)
    for m in _SEGMENT.finditer(text):
        fields = _HL7_FIELDS[m.group(1)]
        at = m.start()
        for i, value in enumerate(m.group().split("|")):
            entity = fields.get(i)
            if entity and value.strip("^~ ") and (entity != "MRN" or any(c.isdigit() for c in value)):
                yield at, at + len(value), entity
            at += len(value) + 1


# --- JSON: a name key's string, list of strings, or FHIR HumanName objects (their family/given/text)
_JSON_KEY = re.compile(
    r'"(name|names|full_?name|patient_?name|first_?name|last_?name|given_?names?|family_?name|surname|'
    r"forename|family|given|insured(?:_?name)?|nok(?:_?name)?|contact_?name|姓名|患者姓名|病人姓名|联系人|家属姓名)"
    r'"\s*:\s*',
    I,
)
_JSON_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_HUMAN_NAME_PARTS = frozenset({"family", "given", "text"})
# a bare "name" key names a person only in a record about one ("name" of a drug or a ward otherwise)
_PERSON_RECORD = re.compile(
    r'birth|"gender"|"sex"|性别|出生|"(?:\w+_)?dob"|"patient(?:_\w+)?"|"mrn"|resourcetype"\s*:\s*"(?:patient|related)',
    I,
)


def _json(text: str) -> Iterator[Span]:
    if '"' in text and _PERSON_RECORD.search(text) is not None:
        yield from _json_fields(text)
    person_record: bool | None = None
    for m in _JSON_KEY.finditer(text):
        key = m.group(1).lower()
        if key in ("name", "names"):
            if person_record is None:
                person_record = _PERSON_RECORD.search(text) is not None
            if not person_record:
                continue
        at = m.end()
        if text.startswith('"', at):
            yield from _json_value(text, at)
        elif text.startswith(("[", "{"), at):
            yield from _json_container(text, at)


# every key's string (or list of strings) value, for the typed and numbered fields of a person's record
_JSON_PAIR = re.compile(r'"([^"\\\n]{1,40})"\s*:\s*(\[\s*)?"((?:[^"\\\n]|\\.){1,80})"')
_ADDRESS_KEYS = frozenset(
    {"line", "street", "address line", "addressline", "address1", "address2", "street address"}
)


def _json_fields(text: str) -> Iterator[Span]:
    """A person's record in JSON (FHIR's Patient included): an address line, a value under a typed or
    numbered key ("phone", "mrn", "会员卡号"), and, as in a record every number is someone's, any value with
    five digits ("ahcip": "48213-7750", an identifier's "value")."""
    for m in _JSON_PAIR.finditer(text):
        key, value = m.group(1).strip().lower().replace("_", " "), m.group(3)
        entity = "ADDRESS" if key in _ADDRESS_KEYS else _entity(key)
        if entity == "PERSON":
            continue  # the name keys are read by _json, with their lists and objects
        if entity is None and sum(c.isdigit() for c in value) >= 5:
            entity = "OTHER_ID"
        if entity is not None and (entity == "ADDRESS" or _reads_as(value, entity)):
            yield m.start(3), m.end(3), entity


def _json_value(text: str, at: int) -> Iterator[Span]:
    s = _JSON_STRING.match(text, at)
    if s and looks_like_name(s.group(1)):
        yield s.start(1), s.end(1), "PERSON"


def _json_container(text: str, at: int) -> Iterator[Span]:
    """The strings of a list or object after a name key (no deeper than HumanName's own lists)."""
    depth, i, key = 0, at, None
    while i < len(text) and i - at < 600:
        c = text[i]
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return
        elif c == '"':
            s = _JSON_STRING.match(text, i)
            if s is None:
                return
            i = s.end()
            if text[i : i + 1].strip() == "" and ":" in text[i : i + 3] or text.startswith(":", i):
                key = s.group(1).lower()  # an object's key
                continue
            if (key is None or key in _HUMAN_NAME_PARTS) and looks_like_name(s.group(1)):
                yield s.start(1), s.end(1), "PERSON"
            continue
        i += 1


# --- tables and CSV: a header row names the columns; rows of the same width follow


def _cells(line: str, sep: str) -> list[tuple[int, str]]:
    """(offset in the line, cell) for each cell of a table or CSV row."""
    out, at = [], 0
    for part in line.split(sep):
        out.append((at, part))
        at += len(part) + 1
    if sep == "|":  # "| a | b |": the edges are empty
        out = out[1:-1] if line.strip().startswith("|") and line.strip().endswith("|") else out
    return out


def _tables(text: str) -> Iterator[Span]:
    header: tuple[str, int, dict[int, str]] | None = None  # separator, width, the columns to read
    start = 0
    for line in text.split("\n"):
        line_start, start = start, start + len(line) + 1
        sep = _separator(line)
        if sep is None:
            header = None
            continue
        if sep == "|" and re.fullmatch(r"[\s|:\-]+", line):
            continue  # the Markdown rule under a header
        cells = _cells(line, sep)
        keys = [c.strip().lower().rstrip(":：") for _, c in cells]
        if len(cells) == 2 and _entity(keys[0]) and keys[1] not in _FIELD_WORDS:
            yield from _value(line_start, cells[1], _entity(keys[0]))  # a "| Insured | Rahul Mehta |" row
        elif columns := {i: e for i, k in enumerate(keys) if (e := _entity(k))}:
            names = [i for i, e in columns.items() if e == "PERSON"]
            if names and all(keys[i] in _GENERIC_FIELDS for i in names) and not _PERSON_COLUMNS & set(keys):
                header = None  # "| Name | Dose | Route |": a drug list
            else:
                header = (sep, len(cells), columns)
        elif header and header[0] == sep and header[1] == len(cells):
            for i, entity in header[2].items():
                yield from _value(line_start, cells[i], entity)


def _entity(field: str) -> str | None:
    """What a header cell or a label says its values are ("MRN", "Hosp No.", "病歷號": a person's numbers)."""
    if field in _NAME_FIELDS:
        return "PERSON"
    return _TYPED_FIELDS.get(field) or ("OTHER_ID" if is_id_label(field) else None)


def _separator(line: str) -> str | None:
    if line.count("|") >= 2:
        return "|"
    if line.count("\t") >= 2:
        return "\t"
    return "," if line.count(",") >= 2 else None


def _value(line_start: int, cell: tuple[int, str], entity: str) -> Iterator[Span]:
    offset, raw = cell
    value = raw.strip()
    if entity == "PERSON":
        value = re.split(r"\s*[(（]", value, maxsplit=1)[0]  # "Ananya Mehta (daughter)"
    if value and _reads_as(value, entity):
        begin = line_start + offset + raw.index(value)
        yield begin, begin + len(value), entity


def _reads_as(value: str, entity: str) -> bool:
    if entity == "PERSON":
        return looks_like_name(value)
    digits = sum(c.isdigit() for c in value)
    if entity == "ADDRESS":
        # a number, or a Chinese house number in numerals ("六十五号"): "医院门诊楼三楼" is a direction
        return len(value) >= 6 and (digits > 0 or "号" in value)
    return digits >= 4


# --- labelled form lines: "病人姓名：LEUNG, Ka Yan 梁嘉欣", "Next of kin: Declan (son)". A label starts a
# line or follows a field separator; each colon's label is looked up in _NAME_FIELDS (a set lookup per colon
# costs less than an alternation of labels tried at every position)
_COLON = re.compile(r"[:：]")
_LABEL_START = "\n|;；，,（("
_VALUE = re.compile(r"[ \t]*((?:[^\n|;；，。\d()（）]|(?<=[A-Za-z])[01345](?=[A-Za-z])){1,50})")
# where a labelled value ends: a wide gap, or the next label on its line ("病人：CHOW Wing Sze 周咏诗 HKID:")
_VALUE_END = re.compile(r"\s{2,}|\t|\s(?=[^\s:：]{1,20}[:：])")


_TYPED_VALUE = re.compile(r"[ \t]*([^\n|;；。]{1,80})")
# an address runs on past its commas; a phone or an id ends at one
_TYPED_END = {"ADDRESS": _VALUE_END, "OTHER": re.compile(r"[,，]|\s{2,}|\t|\s(?=[^\s:：\d]{1,20}[:：])")}


def _labelled(text: str) -> Iterator[Span]:
    for colon in _COLON.finditer(text):
        at = colon.start()
        begin = max(text.rfind(c, max(0, at - 24), at) for c in _LABEL_START) + 1
        entity = _entity(text[begin:at].strip(" \t*>-•").lower()) if at - begin <= 24 else None
        if entity == "PERSON":
            m = _VALUE.match(text, colon.end())
            if m is None:
                continue
            value = _VALUE_END.split(m.group(1), maxsplit=1)[0].rstrip(" ,")
            if looks_like_name(value):
                yield m.start(1), m.start(1) + len(value), "PERSON"
        elif entity is not None:
            m = _TYPED_VALUE.match(text, colon.end())
            if m is None:
                continue
            end = _TYPED_END["ADDRESS" if entity == "ADDRESS" else "OTHER"]
            value = end.split(m.group(1), maxsplit=1)[0].rstrip(" ,.")
            if _reads_as(value, entity):
                yield m.start(1), m.start(1) + len(value), entity


# --- exported chats: each line names its sender ("[12/02/2024, 08:02] Tunde: ...", "王丽华 21:03：...",
# "[微信群] 小张 19:45：...", "[LINE] 2024/3/12 下午 8:41 阿宏：..."), read when two lines or more have
# the form
_STAMP = r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4},?\s+(?:[上下]午\s*)?\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?"
_SENDER = r"[^\s\d:：\[\]]{1,12}(?: [^\s\d:：\[\]]{1,12}){0,2}"
_CHAT_LINE = re.compile(
    rf"^(?:\[[^\]\n]{{1,12}}\]\s*)?(?:\[?{_STAMP}\]?\s*({_SENDER})|({_SENDER})\s+\d{{1,2}}:\d{{2}})\s*[:：]",
    re.M,
)


def _chat_senders(text: str) -> Iterator[Span]:
    lines = list(_CHAT_LINE.finditer(text))
    if len(lines) < 2:
        return
    for m in lines:
        group = 1 if m.group(1) else 2
        if looks_like_name(m.group(group)):
            yield m.start(group), m.end(group), "PERSON"


# --- a letter's signature: the line after its closing ("Thanks,\nS. Whitfield-Hughes", "此致\n敬礼\n林淑芬")
_SIGNATURE = re.compile(
    r"^[ \t]*(?i:thanks|thank you|many thanks|regards|kind regards|best regards|warm regards|best wishes|best"
    r"|cheers|sincerely|yours sincerely|yours faithfully|yours truly|此致(?:\s*敬礼)?|谢谢|顺祝\S{0,6})"
    r"[ \t]*[,，.!！]?[ \t]*\n+[ \t]*([^\n]{2,40})[ \t]*$",
    re.M,
)


_CLINICIAN = re.compile(
    r"(?i:dr|doctor|prof|professor|nurse|sister|matron)\b\.?|.*(?:医生|大夫|护士|主任|教授)"
)


def _signatures(text: str) -> Iterator[Span]:
    for m in _SIGNATURE.finditer(text):
        name = m.group(1).strip()
        if looks_like_name(name) and _CLINICIAN.match(name) is None:  # a doctor's sign-off is no patient's
            begin = m.start(1) + m.group(1).index(name)
            yield begin, begin + len(name), "PERSON"


def records(text: str, hits: Hits) -> Iterator[Span]:
    """Names (and, in HL7, every identifying field) that a record's structure marks."""
    yield from _chat_senders(text)
    yield from _signatures(text)
    if _GATE not in hits:
        return
    yield from _hl7(text)
    yield from _json(text)
    yield from _tables(text)
    yield from _labelled(text)
