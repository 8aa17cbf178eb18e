"""Contact identifiers: e-mail, URLs, IP addresses, phone and fax numbers, messaging handles."""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety.gate import Hits
from server.safety.phi.common import NUMERIC_GATE, I, run, rx, simple
from server.safety.verdict import Span

_EMAIL = rx(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL = rx(r"\b(?:https?://|www\.)[^\s<>\"'，。；）)\]]+", I)
# octets are checked in code: a plain dotted-quad regex is several times cheaper than one that
# spells out 0-255
_IPV4 = rx(r"(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.]*\d)", literals=NUMERIC_GATE, window=40)
# IPv6: eight groups, or fewer with one "::" standing for the zeros ("fe80::1ff:fe23:4567:890a"); a clock
# time ("08:31:44") has neither. The count of groups and a digit are checked in code ("std::vector" holds no
# hex digit run, "abc::def" no digit).
_H6 = "[0-9a-f]{1,4}"
_IPV6 = rx(
    rf"(?<![:\w.])(?:(?:{_H6}:){{7}}{_H6}|(?:{_H6}(?::{_H6}){{0,6}})?::(?:{_H6}(?::{_H6}){{0,6}})?)(?![:\w])",
    I,
)
# a network card's hardware address (MAC): six pairs, a device identifier
_MAC = rx(r"(?<![:\w-])[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}(?![:\w-])", I)

_CN_MOBILE = rx(
    r"(?<![\d+])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)", literals=NUMERIC_GATE, window=40
)
# national numbers with a trunk 0 (UK 07700 900123, 020 7946 0958): 10-11 digits in groups
_NATIONAL_PHONE = rx(
    r"(?<![\d+])0\d{2,4}[\s-]\d{3,4}(?:[\s-]?\d{3,4})(?!\d)", literals=NUMERIC_GATE, window=40
)
_CN_LANDLINE = rx(r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3}-)\d{7,8}(?!\d)", literals=NUMERIC_GATE, window=40)
_US_PHONE = rx(
    r"(?<![\d-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\d-])",
    literals=NUMERIC_GATE,
    window=40,
)
_INTL_PHONE = rx(
    r"(?<![\w+])\+(?:[2-9]\d{0,2}|1)[\s-]?\(?\d{1,4}\)?(?:[\s-]?\d{2,4}){2,4}(?!\d)",
    literals=NUMERIC_GATE,
    window=40,
)
# a Hong Kong eight-digit number ("打我電話6123 8876") only after a phone word, like the seven-digit local one
# below
_HK_PHONE = rx(r"[235679]\d{3}[ -]?\d{4}", literals=NUMERIC_GATE, window=12)
_HK_PHONE_AT = re.compile(r"[235679]\d{3}[ -]?\d{4}(?![\d-])")
# (a phone word proper: "record number is 99812345" is no phone)
_HK_PHONE_CTX = re.compile(
    r"(?:\b(?:phone|cell|mobile|tel|telephone|landline|call|text|whatsapp|fax)\b|电话|手机|座机|传真)"
    r"[^\d\n]{0,12}$",
    I,
)
_FAX_CTX = re.compile(r"(?:\bfax|传真)", I)
# a seven-digit local number ("my home line 555-0178") only after a phone word: alone it could be a range. It
# is looked for only when the message has both an identifier-like number and a phone word (_PHONE_WORDS is a
# gate, never run), and only where a number run starts (the gate's positions), not by a regex search of
# windows.
_LOCAL_PHONE = rx(r"(?<![\d-])[2-9]\d{2}-\d{4}(?![\d-])", literals=NUMERIC_GATE, window=40)
_LOCAL_PHONE_AT = re.compile(r"[2-9]\d{2}-\d{4}(?![\d-])")
_PHONE_WORD = (
    r"(?:\b(?:phone|line|cell|mobile|tel|telephone|landline|call|text|reach|number|fax|contact)\b"
    r"|电话|手机|座机|传真)"
)
# (phrases, not bare "call", "line" or "phone": those are in "decline", "[PHONE_1]" and most answers)
_PHONE_WORDS = rx(
    _PHONE_WORD,
    I,
    literals=frozenset(
        (
            " phone",
            "phone:",
            "phone ",
            "phone is",
            "my cell",
            "cell:",
            "cell is",
            "cell phone",
            "mobile",
            "landline",
            "telephone",
            "tel:",
            "tel.",
            "fax",
            "call me",
            "call us",
            "call him",
            "call her",
            "call you",
            "call back",
            "text me",
            "reach me",
            "my number",
            "number is",
            "number:",
            "line is",
            "home line",
            "work line",
            "电话",
            "手机",
            "座机",
            "传真",
            "contacted on",
            "contacted at",
            "ring her",
            "ring him",
            "ring me",
            "致电",
        )
    ),
)
_PHONE_CTX = re.compile(_PHONE_WORD + r"[^\d\n]{0,20}$", I)
# eight to thirteen digits in any grouping right after a word that names a phone ("my number is 9123 456
# 789", "手机 0912-345-678"): the shapes above are national formats, this is the writer saying what it is.
# Looked for, like the local number, only where a number run starts and only when a phone word is present.
_GROUPED_DIGITS = rx(r"\d[\d -]{6,16}\d", literals=NUMERIC_GATE, window=24)
# (an area code in brackets first: "(02) 9555 0123"; not cut off by a line break)
_GROUPED_DIGITS_AT = re.compile(r"(?:\(\d{2,4}\) ?)?\d(?:[ -]?\d){7,12}(?![\d-]|\s*\d)")
_NAMED_PHONE_CTX = re.compile(
    r"(?:\b(?:phone|cell|mobile|tel|telephone|landline|whatsapp|my number|contact number)\b"
    r"|电话|手机|座机|致电)"
    r"(?:\s+(?:no\.?|number|#))?(?:\s+is)?[\s:：#]*$"
    # a call or a message to a number: "call me on", "contacted on", "ring her at"
    r"|\b(?:call(?:ed)?|ring|rang|contacted|reach(?:ed)?|text(?:ed)?)(?:\s+(?:me|him|her|us|them))?\s+(?:on|at)\s*$",
    I,
)

_HANDLE = rx(
    r"(?i:(?:微信|vx|v信|weixin|\bwechat|\bline|\bskype|\btelegram|\bwhatsapp)(?:号码|号|\s*id)?)"
    r"(?:\s*(?:is|:)\s*|[\s:：是为]*)(@?[A-Za-z][-_A-Za-z0-9.]{3,19})(?![-_A-Za-z0-9.@])",
    literals=frozenset(
        (
            "微信",
            "vx",
            "v信",
            "weixin",
            "wechat",
            "line id",
            "line号",
            "line:",
            "skype",
            "telegram",
            "whatsapp",
        )
    ),
)
_QQ = rx(
    r"(?i:\bqq)(?:号码|号|\s*(?:number|no\.?|#))?[\s:：是为]*([1-9]\d{4,10})(?!\d)",
    literals=frozenset({"qq"}),
    prefix=True,
)


# toll-free and hotline numbers belong to a business, never a person: China's 400/800 service lines, North
# America's 800/888/877/866/855/844/833; Taiwan's, the UK's and New Zealand's 0800/0808, Australia's 1800/1300
_HOTLINE = re.compile(
    r"\+?(?:1[\s.-]?)?\(?(?:400|800|833|844|855|866|877|888)\)?[\s.-]?\d{3}[\s.-]?\d{4}"
    r"|(?:0800|0808|1800|1300)[\s.-]?\d{3}[\s.-]?\d{3,4}"
)
# a number an institution publishes for anyone to call: the words that name it just before it
_PUBLIC_LINE = re.compile(
    r"(?:switchboard|hotline|helpline|help line|main line|customer service|enquiries line|总机|热线|客服|专线"
    r"|服务电话|咨询电话)[^\d\n]{0,12}$",
    I,
)


def phones(text: str, hits: Hits) -> Iterator[Span]:
    """Phone and fax numbers, but an institution's published line (a switchboard, a hotline) is no one's."""
    for span in _phones(text, hits):
        if not _PUBLIC_LINE.search(text, max(0, span[0] - 24), span[0]):
            yield span


def _phones(text: str, hits: Hits) -> Iterator[Span]:
    for pat in (_CN_MOBILE, _CN_LANDLINE, _US_PHONE, _INTL_PHONE, _NATIONAL_PHONE):
        for m in run(pat, text, hits):
            digits = sum(c.isdigit() for c in m.group())
            if (
                digits < 7
                or (pat is _NATIONAL_PHONE and not 10 <= digits <= 11)
                or _HOTLINE.fullmatch(m.group())
            ):
                continue
            before = text[max(0, m.start() - 24) : m.start()]
            yield m.start(), m.end(), "FAX" if _FAX_CTX.search(before) else "PHONE"
    for at in hits.get(_HK_PHONE, ()) if _PHONE_WORDS in hits else ():
        m = _HK_PHONE_AT.match(text, at)
        if m is not None and not (at and text[at - 1] in "0123456789+-"):
            before = text[max(0, at - 24) : at]
            if _HK_PHONE_CTX.search(before):
                yield m.start(), m.end(), "FAX" if _FAX_CTX.search(before) else "PHONE"
    for at in hits.get(_GROUPED_DIGITS, ()) if _PHONE_WORDS in hits else ():
        at = at - 1 if at and text[at - 1] == "(" else at
        m = _GROUPED_DIGITS_AT.match(text, at)
        if (
            m is not None
            and not (at and text[at - 1] in "0123456789+-")
            and _NAMED_PHONE_CTX.search(text, max(0, at - 32), at)
        ):
            yield m.start(), m.end(), "PHONE"
    last = -99  # a second number right after an accepted one ("555-0142 or 555-0199") is one too
    for at in sorted(hits.get(_LOCAL_PHONE, ())) if _PHONE_WORDS in hits else ():
        m = _LOCAL_PHONE_AT.match(text, at)
        if m is None or (at and text[at - 1] in "0123456789-"):
            continue
        before = text[max(0, at - 32) : at]
        if at - last <= 6 or _PHONE_CTX.search(before):
            last = m.end()
            yield m.start(), m.end(), "FAX" if _FAX_CTX.search(before) else "PHONE"


def handles(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_HANDLE, text, hits):
        # a handle holds a digit, an underscore or a hyphen: "加微信 chenba_1975", not "WhatsApp messages"
        if any(c.isdigit() or c in "_-" for c in m.group(1)):
            yield m.start(1), m.end(1), "HANDLE"
    for m in run(_QQ, text, hits):
        yield m.start(1), m.end(1), "HANDLE"


# this machine itself (a developer's config or log): no one's address
_LOOPBACK = re.compile(r"(?:https?://)?(?:localhost|127(?:\.\d{1,3}){3}|0\.0\.0\.0|\[::1\])(?![\w.-])", re.I)


def ipv4(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_IPV4, text, hits):
        if all(int(octet) <= 255 for octet in m.group().split(".")) and not _LOOPBACK.match(m.group()):
            yield m.start(), m.end(), "IP"


_PORT = re.compile(r":\d{1,5}")
_LONG_NUMBER = re.compile(r"\d{4,}")


def url(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_URL, text, hits):
        local = _LOOPBACK.match(m.group())
        # a loopback URL still carries whatever record number its path holds (/api/patients/884213)
        path = m.group()[local.end() :] if local else ""
        if not local or _LONG_NUMBER.search(_PORT.sub("", path, count=1)):
            yield m.start(), m.end(), "URL"


email = simple(_EMAIL, "EMAIL")
mac = simple(_MAC, "DEVICE")


def ipv6(text: str, hits: Hits) -> Iterator[Span]:
    for m in run(_IPV6, text, hits):
        value = m.group()
        groups = [g for g in value.split(":") if g]
        if 2 <= len(groups) <= 8 and any(c.isdigit() for c in value) and value != "::1":
            yield m.start(), m.end(), "IP"
