"""Identifiers read out or typed past filters (spoken and bracketed e-mails, phone numbers in words, spelled
and Chinese-numeral dates, OCR look-alike digits) and identity and health numbers from Singapore, Malaysia,
Macau, Korea, Japan, India, the UK, Canada and Australia, through the real engine; with the ordinary text
beside them that must pass untouched."""

from __future__ import annotations

import pytest

from server.safety import SafetyEngine
from server.safety.normalize import with_ascii_digits
from server.safety.phi.regional import _medicare_au_ok, _nhs_ok, _nric_ok
from tests.server.safety.phi.test_recognisers import PHI, forwarded


@pytest.mark.parametrize(
    ("text", "secret", "entity"),
    [
        # e-mail addresses said aloud, bracketed, or with 艾特/点
        ("My email is john dot smith at gmail dot com, please write.", "john dot smith", "EMAIL"),
        ("you can reach me at mary underscore lee 88 at hotmail dot co dot uk", "hotmail", "EMAIL"),
        ("email: wang.fang(at)163(dot)com", "wang.fang", "EMAIL"),
        ("我的邮箱是 zhangwei at qq dot com", "zhangwei", "EMAIL"),
        ("邮箱 lihua艾特163点com", "lihua", "EMAIL"),
        ("e-mail: peter [at] clinic-mail [dot] org", "peter", "EMAIL"),
        # phone numbers read out in words
        ("call me on oh seven seven double nine, one two three four five six", "double nine", "PHONE"),
        ("phone: nine one two three four five six seven", "nine one two", "PHONE"),
        ("电话一三八幺二三四五六七八", "一三八幺二三四五六七八", "PHONE"),
        # dates spelled out, in Chinese numerals, in the Minguo and lunar calendars
        ("Date of birth: the fourth of July nineteen fifty-two", "fourth of July", "DATE"),
        ("born on March seventh, nineteen sixty", "March seventh", "DATE"),
        ("she was born on the twenty-first of October", "twenty-first of October", "DATE"),
        ("民国四十年三月七日出生", "四十年三月七日", "DATE"),
        ("生日：民國五十二年十二月廿三日", "十二月廿三日", "DATE"),
        ("一九五一年三月七日出生，住院三天", "一九五一年三月七日", "DATE"),
        ("奶奶农历三月初七生日", "三月初七", "DATE"),
        # digits misread by OCR or typed as letters
        ("DOB: 12/O3/1958, tel O2O 7946 O123", "7946", "PHONE"),
        ("DOB: 12/O3/1958, tel O2O 7946 O123", "1958", "DATE"),
        ("MRN: l2345678, ward 4", "2345678", "MRN"),
        # Singapore, Malaysia, Korea, UK, Canada, India, Australia, Macau, Japan
        ("NRIC S8214589J, please update", "S8214589J", "NATIONAL_ID"),
        ("IC no: S9812345A", "S9812345A", "NATIONAL_ID"),
        ("Please see my dad, IC 750312-14-5527.", "750312-14-5527", "NATIONAL_ID"),
        ("MyKad 750312-14-5527", "750312-14-5527", "NATIONAL_ID"),
        ("주민등록번호 850101-1234567", "850101-1234567", "NATIONAL_ID"),
        ("RRN 850101-2345678", "850101-2345678", "NATIONAL_ID"),
        ("NHS number 943 476 5919", "476 5919", "HEALTH_PLAN"),
        ("NI number QQ 12 34 56 C", "12 34 56", "NATIONAL_ID"),
        ("OHIP 1234-567-890-AB", "1234-567-890", "HEALTH_PLAN"),
        ("card 1234 567 890 XY is the Ontario one", "1234 567 890", "HEALTH_PLAN"),
        ("SIN 046 454 286", "046 454 286", "NATIONAL_ID"),
        ("Aadhaar 2345 6789 0123", "6789", "NATIONAL_ID"),
        ("aadhaar no. 234567890123", "234567890123", "NATIONAL_ID"),
        ("Medicare card 2428 77813 2/1", "77813", "HEALTH_PLAN"),
        ("澳门身份证 1234567(8)", "1234567(8)", "NATIONAL_ID"),
        ("Macau BIR 5/123456/7", "123456", "NATIONAL_ID"),
        ("マイナンバー 1234 5678 9012", "5678", "NATIONAL_ID"),
        # postcodes that locate a household, and India's PAN, beside any other identifier
        ("Flat 3, 12 Elm Road, London SW1A 2AA, tel 020 7946 0958", "SW1A 2AA", "ADDRESS"),
        ("My postcode is M1 1AE and DOB 03/04/1961", "M1 1AE", "ADDRESS"),
        ("Send to 24 Sussex Dr, Ottawa ON K1A 0B1, phone 613-555-0142", "K1A 0B1", "ADDRESS"),
        ("PAN ABCPE1234F, Aadhaar 2345 6789 0123", "ABCPE1234F", "NATIONAL_ID"),
        # "my number" in English is a phone number; Japan's is マイナンバー or "My Number card"
        ("my number is 9123 456 789, text me", "9123 456 789", "PHONE"),
        # a number typed one digit at a time
        ("我爸身份证 3 2 0 1 0 2 1 9 5 8 0 6 1 4 3 3 2 1，今天住院", "3 2 0 1 0 2", "CN_ID"),
        ("call my son on 0 7 7 0 0 9 0 0 1 2 3 tonight", "0 7 7 0 0 9", "PHONE"),
        # a resident ID with a wrong check digit: a province's code and a real birth date still make it one
        ("wo ba shenfenzheng 320102195806143320, zhuyuan le", "320102195806143320", "CN_ID"),
        ('{"identifier": [{"value": "440106197012245514"}]}', "440106197012245514", "CN_ID"),
        # a word of the card, then a Chinese "number"
        ("我妈在悉尼，Medicare 号 3123 45678 1，能报销吗", "45678", "HEALTH_PLAN"),
    ],
)
def test_identifier_is_redacted(engine: SafetyEngine, text: str, secret: str, entity: str) -> None:
    categories, sent = forwarded(engine, text)
    assert PHI in categories
    assert secret not in sent
    assert f"[{entity}_" in sent


@pytest.mark.parametrize(
    "text",
    [
        "NHS 111 said go to A&E",
        "take one or two tablets, three or four times a day",
        "the fourth of July fireworks scared the dog",
        "He works at amazon dot com now.",
        "my daughter is in year nine at school",
        "Type I 2019 guidelines say what about insulin?",
        "O2 sat 95 on room air, is that ok?",
        "Oil 1234 lol",
        "每月三日复查，一个月后复诊",
        "正月十五吃汤圆会不会血糖高？",
        "IC 3 on the ward means intensive care bed three",
        "count backwards: ten nine eight seven",
        "rate the pain on a scale: 1 2 3 4 5 6 7 8 9 10",
        "订单号 202412061234567890 已发货",  # no province's code, no birth date where an ID holds it
        "batch 991231202401019999 expired",
    ],
)
def test_ordinary_text_passes(engine: SafetyEngine, text: str) -> None:
    categories, sent = forwarded(engine, text)
    assert PHI not in categories
    assert sent == text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("vitamin B12 5MG daily, call 020 7946 0958 to order", "B12 5MG"),
        ("CD19 CAR-T therapy for my dad, ward phone 020 7946 0958", "CD19 CAR-T"),
    ],
)
def test_codes_shaped_like_postcodes_are_kept(engine: SafetyEngine, text: str, kept: str) -> None:
    """Postcodes are searched once any identifier is in the text: a vitamin or a CAR-T target beside a
    phone number stays."""
    _, sent = forwarded(engine, text)
    assert kept in sent and "7946" not in sent


def test_ocr_look_alikes_become_digits_only_inside_numbers() -> None:
    assert with_ascii_digits("tel O2O 7946 O123") == "tel 020 7946 0123"
    assert with_ascii_digits("DOB 12/O3/1958") == "DOB 12/03/1958"
    for kept in ("Oil 1234 lol", "Type I 2019", "room 1O1", "O2 sat 95", "I was 12 or 13"):
        assert with_ascii_digits(kept) == kept


def test_check_digits() -> None:
    assert _nric_ok("S8214589C") and not _nric_ok("S8214589J")
    assert _nric_ok("T0123456G") and _nric_ok("F1234567N") and _nric_ok("G1234567X")
    assert _nhs_ok("9434765919") and not _nhs_ok("9434765918")
    assert _medicare_au_ok("242877813") and not _medicare_au_ok("242877814")
