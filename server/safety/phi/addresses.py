"""Street addresses, English and Chinese, P.O. boxes, UK and Canadian postcodes, and an address of any
country after the words that give one."""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety.gate import Hits
from server.safety.phi.common import I, run, rx
from server.safety.verdict import Span

_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
    r"Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Crescent|Cres|Close|Row|Parade|Pde|Tce|Grove|Gr|Mews"
    r"|Gardens|Gdns|Esplanade|Esp|Circuit|Cct)"
)
# after the street: the town, then a state or province and its postcode ("Columbus, OH 43215", "Cairns North
# QLD 4870", "Montréal QC H2J 2L3")
_TOWN = (
    r"(?:,\s+[A-ZÀ-Þ][\w'’-]+(?:\s+[A-Z][a-z]+){0,2}(?:,?\s+[A-Z]{2,3}\b)?"
    r"(?:\s+(?:\d{4,5}(?:-\d{4})?|[A-Z]\d[A-Z] ?\d[A-Z]\d)\b)?)?"
)
# gate on " street" followed by what can end the word (the scan appends a newline to the text)
_STREET_WORDS = frozenset(f" {w.lower()}{end}" for w in _STREET[3:-1].split("|") for end in " .,;\n")
# a house number in digits, or said in two words or more ("four twelve Linden Street", "twenty two Cedar
# Grove"; "the two Main Street shops" is a count)
_NUMBER_WORD = (
    r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)"
)
# (a flat before the house as Australia writes it, "4/22"; a lettered house, "12A")
_HOUSE_NUMBER = (
    r"(?:(?:\d{1,4}[A-Za-z]?/)?\d{1,6}[A-Za-z]?"
    rf"|(?i:{_NUMBER_WORD}(?:[ -](?:and )?{_NUMBER_WORD}){{1,3}}))"
)
# a street's name: capitalised words, a compass point and an ordinal ("W 57th")
_STREET_NAME = r"(?:(?:[A-Z][A-Za-z'-]+\.?|[NSEW]\.?|[NS][EW]|\d{1,3}(?:st|nd|rd|th))\s+){1,4}"
_ADDR_EN = rx(
    rf"\b{_HOUSE_NUMBER}\s+{_STREET_NAME}{_STREET}\b\.?"
    # a numbered road ("County Rd 14"), then the flat
    r"(?:\s+\d{1,4}\b(?![.:]\d))?"
    rf"(?:,?\s+(?i:apt|apartment|unit|suite|ste|flat|room|#)\.?\s*#?(?:[A-Za-z0-9-]+|{_NUMBER_WORD}))?"
    + _TOWN,
    literals=_STREET_WORDS,
)
# the street word first, as in French, Spanish, Italian and Malay ("4520 rue Saint-Denis, Montréal QC H2J
# 2L3", "12 Jalan Ampang")
_ROUTE_FIRST = (
    "rue",
    "avenue",
    "boulevard",
    "chemin",
    "allée",
    "calle",
    "avenida",
    "via",
    "viale",
    "jalan",
    "jln",
)
_ADDR_ROUTE_FIRST = rx(
    rf"\b\d{{1,6}},?\s+(?i:{'|'.join(_ROUTE_FIRST)})\s+(?:(?:de|du|des|la|le|del|di|da|l'|d')\s*)*"
    rf"(?:[A-ZÀ-Þ][\w'’-]*\s?){{1,4}}" + _TOWN,
    literals=frozenset(f" {w} " for w in _ROUTE_FIRST),
)
# the street word first and the number after, as in Spain, Italy, Portugal and Malaysia ("Calle Mayor 5",
# "Via Roma 12", "Rua Augusta 100"); a Vietnamese house and its district ("14 Nguyen Hue, District 1")
_ROUTE_THEN_NUMBER = ("Calle", "Avenida", "Via", "Viale", "Rua", "Carrer", "Paseo", "Jalan")
_ADDR_NUMBER_LAST = rx(
    rf"\b(?:{'|'.join(_ROUTE_THEN_NUMBER)})\s+(?:(?:de|del|la|dos|das|do|da|di)\s+)*(?:[A-ZÀ-Þ][a-zà-ÿ'’-]+\s+){{1,4}}"
    r"\d{1,5}\b(?![.:/]\d)",
    literals=frozenset(f"{w.lower()} " for w in _ROUTE_THEN_NUMBER),
)
_ADDR_DISTRICT = rx(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-ZÀ-Ỹ][\wÀ-ỹ'’-]*\s+){1,4}?[A-ZÀ-Ỹ][\wÀ-ỹ'’-]*,\s+"
    r"(?:District|Quận|Quan|Phường|Phuong)\s+\d{1,2}\b",
    literals=frozenset(("district ", "quận ", "quan ", "phường ", "phuong ")),
)
_PO_BOX = rx(r"\b(?:G?P\.?\s?O\.?|R\.?R\.?\s*\d{1,3})\s+Box\s+\d+\b", I, literals=frozenset((" box ",)))
# anchored on "<road>123号"; the district/city prefix is gathered backwards in code (a leading lazy
# prefix in the regex would be retried at every Chinese character)
# a house number in digits, or in Chinese numerals as a voice transcript writes it ("科华北路六十五号二栋
# 三单元"), which needs a city or district before it ("走这条路十号那天" is a date) and no bare 道
# ("知道三号要复查")
_ZN = r"[一二三四五六七八九十百零〇两]"
_ADDR_ZH = rx(
    rf"(?:(?:路|街|大道|道|巷|弄|胡同)(?:[一二三四五六七八九十\d]+段)? ?\d+ ?[号弄]"
    rf"|(?:路|街|大道|巷|弄|胡同)(?:{_ZN}+段)?{_ZN}{{1,4}}[号弄])"
    # then the building, floor and flat; a Hong Kong estate and block ("翠屏邨翠楠楼1503室") can take six
    # characters
    rf"(?:[\u4e00-\u9fa5A-Za-z]{{0,4}} ?(?:\d+|{_ZN}{{1,3}}) ?(?:号楼|号|栋|幢|座|单元|层|楼|室|户)"
    r"|\d{3,5}(?![\d年月日岁])"
    r"|[\u4e00-\u9fa5]{1,4}(?:邨|村|苑|阁|轩|大厦|花园)[\u4e00-\u9fa5]{0,4}\d+(?:楼|层|室|座|号|字楼))*"
)
_ZH_ADDR_PREFIX = re.compile(r"[\u4e00-\u9fa5]{1,16}$")
_ZH_ADDR_LEAD = re.compile(r".*?(?:住喺|喺|住响|住在|住址[是为:：]?|地址[是为:：]?|位于|我家在|家在|住)")
# after an address word, a run holding a number: "地址：成都市武侯区人民南路四段12号6栋302"
_ADDR_ZH_CTX = rx(
    r"(?:地址|住址|家住|住在|住喺|住响|寄到|收货地址)(?:是|为|在|系)?[：:\s]*([\u4e00-\u9fa5A-Za-z0-9#\-]{4,"
    r"40}?\d[\u4e00-\u9fa5A-Za-z0-9#\-]*)"
)
# a compound and a building with no road word: "朝阳区望京西园三区312号楼", "天河区天河北苑5栋2单元"; anchored
# on the building number, the district before it is gathered in code and required (a hospital's "门诊3号楼" is
# no address)
_ADDR_ZH_BLDG = rx(
    r"\d+(?:号楼|栋|幢)(?:\d+单元)?(?:\d+(?:室|号|层))?",
    literals=frozenset(("号楼", "栋", "幢")),
    window=24,
    prefix=False,
)
_ZH_DISTRICT = re.compile(r"[\u4e00-\u9fa5]{1,6}?(?:省|市|区|县|镇|乡)(?=[\u4e00-\u9fa5]{2})")
_ZH_NOT_HOME = re.compile(r"院|医|诊|病|科|校|学|中心|公司|单位|酒店|宾馆|商场")
# "住在心内科三病区12床" is a ward and a bed, no home
_ZH_WARD = re.compile(r"床|病区|病房|科|监护室|icu|ICU")
# a home written from the flat outwards ("Flat 5B, 12/F, Tower 2, Taikoo Shing", "Room 1203, Building 5,
# Jinqiao Garden", "Unit 3, 17 Kingsway", "Block C-12-3, Pangsapuri Seri Mas", "Lot 5, Kampung Baru"): the
# flat, then parts that only an address has - a floor, a tower, a numbered house, an estate - and the
# capitalised names after them; a hospital's room is no home
_UNIT = rx(
    r"\b(?:Flat|Unit|Apt\.?|Apartment|Suite|Room|Rm\.?|Block|Blk\.?|Lot)\s+#?[A-Z0-9][\w-]{0,8}\b",
    literals=frozenset(
        f"{w} " for w in ("flat", "unit", "apt", "apartment", "suite", "room", "rm", "block", "blk", "lot")
    ),
    prefix=True,
)
_UNIT_PART = re.compile(
    r",?\s+(?:(?P<floor>\d{1,3}/F|\d{1,3}(?:st|nd|rd|th)\s+(?i:floor)|(?i:floor|level)\s+\d{1,3}"
    r"|(?:Tower|Building|Bldg|Block|Blk|Wing|Phase)\s+[A-Z0-9][\w-]{0,5})"
    # a numbered house, not a count ("30 Capsules"), an estate, a Malay kampung or taman
    r"|(?P<home>\d{1,5}[A-Za-z]?\s+(?!(?i:tablets?|capsules?|caps|vials?|doses?|patients?|beds?|units?|packs?"
    r"|boxes|bottles?|days?|weeks?|months?|years?|hours?|minutes?|mg|ml|mcg)\b)[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+){0,3}"
    r"|(?:[A-Z][\w'’-]+\s+){0,3}(?:Gardens?|Estate|Mansions?|Court|Heights|Villas?|Residences?|Apartments"
    r"|Condominium|Village)"
    r"|(?:Pangsapuri|Taman|Kampung|Kg\.?|Lorong|Persiaran|Desa|Bandar)\s+[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+){0,3})"
    r"|(?P<name>[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+){0,2}))\b"
)
# a hospital's or an office's room, floor and block are no home
_NOT_HOME = re.compile(
    r"(?i:hospital|clinic|centre|center|medical|ward|surgery|pharmacy|school|university|office|hotel|department"
    r"|outpatient|inpatient|theatre|laborator)"
)
# (a room or a block with a floor is a hospital's as often: those need a home's part)
_FLOOR_ENOUGH = ("flat", "unit", "apt", "apartment", "lot")
_ADDR_ZH2 = rx(
    r"[\u4e00-\u9fa5]{2,8}(?:小区|花园|公寓|大厦|家园|新村|苑)\d+(?:号楼|栋|幢|座)(?:\d+单元)?(?:\d+室?)?"
)

# an address of any country after the words that give one ("she lives at 1523 S Euclid St, Anaheim CA 92802",
# "他住 Blk 123 Ang Mo Kio Ave 3 #08-1234 Singapore 560123", "wohnhaft Hauptstraße 12, 80331 München"): a
# stretch that starts with a number (or No./Blk/Lot/Flat and one) or a street written before its number, and
# holds a street word or a postcode
_RESIDENCE = rx(
    r"(?:(?i:\b(?:lives?|living|resides?|residing|staying)\s+(?:at|in)|\baddress\s+is|\bwohnhaft)"
    r"|住在|住喺|家住|住)[ \t:：]*"
    r"((?:(?:No\.?|Blk|Block|Flat|Unit|Lot|House\s+No\.?)\s*)?\d[\w/#-]*,?\s+[^\n;。，]{3,70}?"
    # or the street first, as in German and Dutch ("Hauptstraße 12, 80331 München")
    r"|[A-ZÀ-Þ][^\W\d_]*(?:straße|strasse|gracht|weg|laan|plein|gasse|platz)\s+\d[^\n;。，]{3,70}?)"
    r"(?=\.(?:\s+[A-Z]|\s*$)|[;。，\n]|\s+(?:and|but|so|which|where)\b|$)",
    literals=frozenset(("live", "living", "reside", "residing", "staying", "address is", "wohnhaft", "住")),
)
_STREET_OR_POSTCODE = re.compile(
    r"(?i:\b(?:st|street|rd|road|ave|avenue|lane|ln|dr|drive|cres|crescent|pde|parade|way|ct|court|close|pl"
    r"|place|blvd|hwy|highway|jalan|jln|lorong|taman|blk|block|lot|rue|terrace|tce|grove|gardens|cross|nagar"
    r"|marg)\b|stra(?:ss|ß)e\b|gracht\b|weg\b|laan\b)"
    r"|\b\d{4,6}\b|\b[A-Z]\d[A-Z] ?\d[A-Z]\d\b|\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b"
)


def _flat_outwards(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_UNIT, text, hits):
        end, placed, home = m.end(), False, False
        while (part := _UNIT_PART.match(text, end)) is not None:
            if part.group("name") is not None and not placed:
                break  # a name is the address's only after a part that places it
            placed, home, end = True, home or part.group("home") is not None, part.end()
        lead = m.group().split()[0].lower().rstrip(".")
        if (home or (placed and lead in _FLOOR_ENOUGH)) and not _NOT_HOME.search(text, m.start(), end + 40):
            yield m.start(), end, "ADDRESS"


def addresses(text: str, hits: Hits) -> Iterator[Span]:
    yield from _flat_outwards(text, hits)
    for pat in (_ADDR_EN, _ADDR_ROUTE_FIRST, _ADDR_NUMBER_LAST, _ADDR_DISTRICT, _PO_BOX):
        for m in run(pat, text, hits):
            yield m.start(), m.end(), "ADDRESS"
    for m in run(_ADDR_ZH, text, hits):
        prefix = _ZH_ADDR_PREFIX.search(text, max(0, m.start() - 16), m.start())
        start = prefix.start() if prefix else m.start()
        # the gathered prefix can include "我家住在": start after the last such lead-in
        lead = _ZH_ADDR_LEAD.match(text, start, m.start())
        start = lead.end() if lead else start
        if any(c.isdigit() for c in m.group()) or _ZH_DISTRICT.search(text, start, m.start()):
            yield start, m.end(), "ADDRESS"
    for m in run(_ADDR_ZH2, text, hits):
        yield m.start(), m.end(), "ADDRESS"
    for m in run(_ADDR_ZH_BLDG, text, hits):
        prefix = _ZH_ADDR_PREFIX.search(text, max(0, m.start() - 16), m.start())
        if prefix is None:
            continue
        # start after the last lead-in word ("我们在", "地址是", "住"), then at the district
        lead = max(prefix.group().rfind(w) + len(w) for w in ("在", "是", "到", "住", "址"))
        start = prefix.start() + max(lead, 0)
        district = _ZH_DISTRICT.search(text, start, m.start())
        if district and not _ZH_NOT_HOME.search(text, start, m.start()):
            yield district.start(), m.end(), "ADDRESS"
    for m in run(_RESIDENCE, text, hits):
        # a number and a street word or a postcode after it: "lives at 3 different places" is none
        if _STREET_OR_POSTCODE.search(m.group(1).split(None, 1)[-1]) is not None:
            yield m.start(1), m.end(1), "ADDRESS"
    for m in run(_ADDR_ZH_CTX, text, hits):
        if not _ZH_WARD.search(m.group(1)):
            yield m.start(1), m.end(1), "ADDRESS"


# what makes a first-name-and-surname pair no patient: a clinician's title ("Dr. Angela Whitmore", "Nurse Mary


# Postcodes precise enough to locate a household: the UK's ("SW1A 1AA", "M1 1AE") and Canada's ("K1A 0B1"),
# in capitals as written on letters and forms. Neither has a literal to gate on, so they are searched (one
# case-sensitive pass) whenever the text holds any other PHI gate; a postcode alone in a text with nothing
# else is left to the address rules around it. US ZIP codes need their word (identifiers.py).
# The pattern opens with a capital and reads what it was (and what stood before it) by look-behind: one that
# opens with a look-behind is tried at every position of the text, one that opens with a class skips to it.
_POSTCODES = re.compile(
    r"[A-Z](?<![A-Za-z0-9][A-Z])(?:"
    r"(?<=[A-PR-UWYZ])[A-HK-Y]?\d[A-HJKPSTUW\d]? ?\d[ABD-HJLNP-UW-Z]{2}"  # UK
    r"|(?<=G)IR ?\d[ABD-HJLNP-UW-Z]{2}"  # UK: GIR 0AA
    r"|(?<=[ABCEGHJ-NPRSTVXY])\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d"  # Canada
    r")(?![A-Za-z0-9])"
)


def postcodes(text: str, hits: Hits) -> Iterator[Span]:
    for m in _POSTCODES.finditer(text):
        yield m.start(), m.end(), "ADDRESS"
