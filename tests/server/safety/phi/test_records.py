"""Identifiers that a record's structure marks (server/safety/phi/records.py) and record numbers under a
service's own word for them (identifiers.py), through the real engine; with the values and texts beside them
that must pass untouched."""

from __future__ import annotations

import pytest

from server.safety import SafetyEngine
from server.safety.normalize import match_view, with_ascii_digits
from server.safety.phi import find_phi
from server.safety.phi.records import looks_like_name
from tests.server.safety.phi.test_recognisers import PHI, assert_redacted, assert_untouched, forwarded

HL7 = (
    "MSH|^~\\&|LAB|TGH|||202403140830||ADT^A01|1|P|2.5\n"
    "PID|1||4432109^^^TGH^MR||NAKAMURA^YUKI^^^MS||19911108|F|||77 Queen St W^^Toronto^ON||(416)555-0166|||||"
    "7781442019\n"
    "NK1|1|NAKAMURA^KENJI|SPO|77 Queen St W^^Toronto|(416)555-0199\n"
    "What does the ADT^A01 event mean?"
)


def test_hl7_segments_lose_every_identifying_field(engine: SafetyEngine) -> None:
    categories, sent = forwarded(engine, HL7)
    assert PHI in categories
    for secret in ("4432109", "NAKAMURA", "YUKI", "19911108", "Queen St", "555-0166", "7781442019", "KENJI"):
        assert secret not in sent, secret
    # the segment's structure and the rest of the message stay
    assert sent.startswith("MSH|^~\\&|LAB|TGH|||202403140830||ADT^A01|1|P|2.5\nPID|1||[MRN_")
    assert sent.endswith("What does the ADT^A01 event mean?")


def test_field_separators_are_not_read_as_ocr_ones() -> None:
    """ "|" stands for a 1 only between two digits; HL7's "|||" before a number stays a separator."""
    assert with_ascii_digits("PID|||4432109^^^TGH^MR||X") == "PID|||4432109^^^TGH^MR||X"
    assert with_ascii_digits("id 12|4567") == "id 1214567"


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        # FHIR Patient: HumanName's family, given and text
        (
            '{"resourceType": "Patient", "name": [{"use": "official", "family": "Okonkwo", '
            '"given": ["Chidi", "Emmanuel"]}], "birthDate": "1980-02-03"}',
            ("Okonkwo", "Chidi", "Emmanuel"),
        ),
        ('{"name": [{"text": "钱佳怡"}], "gender": "female"}', ("钱佳怡",)),
        # flat keys that say what they hold
        ('{"姓名": "邱文杰", "性别": "男", "主诉": "反复胃痛半年"}', ("邱文杰",)),
        ('{"patientName": "Mary-Jane O\'Neill", "ward": "7B"}', ("Mary-Jane O'Neill",)),
        # a table's name column, a "| Field | Value |" row, a CSV column
        ("| 姓名 | 出生日期 | 药物 |\n|---|---|---|\n| 蔡明宏 | 1951-08-15 | Amlodipine 5mg |", ("蔡明宏",)),
        ("| Field | Value |\n|---|---|\n| Insured | Rahul Mehta |\n| Plan | Gold |", ("Rahul Mehta",)),
        (
            "MRN,Surname,Forename,DOB\nAB-00771,O'Connor,Brendan,1941-03-22\nAB-00772,Dlamini,Thabo,1990-12-01",
            ("O'Connor", "Brendan", "Dlamini", "Thabo"),
        ),
        # labelled form lines, Latin and Chinese together, a relation after the name
        ("藥物標籤\n病人姓名：LEUNG, Ka Yan 梁嘉欣\n藥名：Prednisolone", ("LEUNG", "Ka Yan", "梁嘉欣")),
        ("Allergies: none\nNext of kin: Declan (son)\nBed 4", ("Declan",)),
        ("Patient Name: Layla bint Khalid Al-Mansouri\nWard: 3", ("Layla bint Khalid Al-Mansouri",)),
    ],
)
def test_record_fields_that_hold_a_name_are_redacted(
    engine: SafetyEngine, text: str, secrets: tuple[str, ...]
) -> None:
    assert_redacted(engine, text, *secrets, entity="PERSON")


@pytest.mark.parametrize(
    "text",
    [
        # a drug, a ward, a header: a "name" that is no person's
        '{"medications": [{"name": "Amlodipine", "dose": "5 mg"}, {"name": "Metformin"}]}',
        "| Name | Dose | Route |\n|---|---|---|\n| Paracetamol | 1 g | PO |",
        "drug,dose,route\nIbuprofen,400 mg,oral\nOmeprazole,20 mg,oral",
        # a form field whose value is no name
        "Patient: 65-year-old man with chest pain, what tests?",
        "Patient: complains of headache since Monday",
        "患者：老年男性，反复咳嗽两周",
        "联系人：本人",
    ],
)
def test_values_that_are_no_names_are_left(text: str) -> None:
    """The rules, records included, find no name (the trained model is tested in test_name_model.py)."""
    assert find_phi(text, view=match_view(text), names_model=False) == []


def test_a_name_looks_like_one() -> None:
    for name in ("Chidi", "O'Connor", "Daan van der Berg", "LEUNG, Ka Yan 梁嘉欣", "欧阳琳", "GARCIA LOPEZ"):
        assert looks_like_name(name), name
    for value in ("65-year-old man", "complains of pain", "male", "本人", "老年男性", "j.doe@x.org", "配偶"):
        assert not looks_like_name(value), value


def test_records_are_read_on_the_input_rails_only() -> None:
    """The output guard reads a streamed answer before a row or a line is complete, so it does not use them
    (it holds names by its own rules: holding.py)."""
    text = "| 姓名 | 出生日期 |\n|---|---|\n| 蔡明宏 | 民国40年 |"
    assert any(e == "PERSON" for _, _, e in find_phi(text, view=match_view(text), names_model=False))
    assert not any(e == "PERSON" for _, _, e in find_phi(text))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("hosp no RX7734521, dob 2/11/58", "RX7734521"),
        ("Patient: PAPADOPOULOS, Eleni   UR Number: 0082 4471", "0082 4471"),
        ("IP No.: 24/IP/08813   UHID: AIMS-00412987", "24/IP/08813"),
        ("IP No.: 24/IP/08813   UHID: AIMS-00412987", "AIMS-00412987"),
        ("His file no is PIC/CATH/24/3381. Is stenting needed?", "PIC/CATH/24/3381"),
        ("WALGREENS #04417   Rx# 6402281-03", "6402281-03"),
        ("Patient no. BDM-20931. Reply C to confirm", "BDM-20931"),
        ("仁伯爵醫院病人編號 CHCSJ-2024-11873。", "CHCSJ-2024-11873"),
        ("我妈体检编号 TJ20240311-0567，谢谢", "TJ20240311-0567"),
        ("居民签约号 CN-0023318，血压控制不佳", "CN-0023318"),
    ],
)
def test_record_numbers_under_a_services_own_word(engine: SafetyEngine, text: str, secret: str) -> None:
    assert_redacted(engine, text, secret)


@pytest.mark.parametrize(
    "text", ["You are patient number 3 in the queue.", "Visit #2 is next week", "处方号 12 在哪里看"]
)
def test_short_numbers_after_those_words_pass(engine: SafetyEngine, text: str) -> None:
    assert_untouched(engine, text)


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        (
            "[12/02/2024, 08:02] Tunde: Mummy's BP is 190/110\n"
            "[12/02/2024, 08:05] Bisi Adeyemi: Did she take it?",
            ("Tunde", "Bisi Adeyemi"),
        ),
        ("王丽华 21:03：妈今天血糖18.6\n阿强 21:05：明天我带她去复查", ("王丽华", "阿强")),
        (
            "[LINE] 2024/3/12 下午 8:41 阿宏：报告出来了\n[LINE] 2024/3/12 下午 8:43 淑惠：我明天去拿",
            ("阿宏", "淑惠"),
        ),
    ],
)
def test_an_exported_chats_senders_are_redacted(
    engine: SafetyEngine, text: str, secrets: tuple[str, ...]
) -> None:
    assert_redacted(engine, text, *secrets)


def test_a_single_timestamped_line_is_no_chat() -> None:
    text = "Update 21:03: the clinic moved to Level 2"
    assert find_phi(text, view=match_view(text), names_model=False) == []


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        # a romanised name after a Chinese relation or patient word
        ("Hello，我阿公 Lim Ah Huat 昨天在 TTSH 住院", ("Lim Ah Huat",)),
        ("SBAR：病人 Goh Mei Ling 今日入院", ("Goh Mei Ling",)),
        ("我阿嬷 Tân Siù-lân 今年 80 歲", ("Tân Siù-lân",)),
        # the other form of a found name, in brackets after it
        ("My mother Kim Soo-jin (김수진) is visiting from Seoul", ("Kim Soo-jin", "김수진")),
        ("我外公李國強（Lee Kwok-keung）住喺沙田", ("李國強", "Lee Kwok-keung")),
    ],
)
def test_names_in_another_script_are_redacted(
    engine: SafetyEngine, text: str, secrets: tuple[str, ...]
) -> None:
    assert_redacted(engine, text, *secrets)


@pytest.mark.parametrize(
    "text", ["我爸 CT Scan 的报告怎么看？", "病人 ICU Bed 不够怎么办", "我妈说 Vitamin D 要补吗"]
)
def test_acronyms_and_words_after_a_relation_are_no_names(text: str) -> None:
    assert not any(e == "PERSON" for _, _, e in find_phi(text, view=match_view(text), names_model=False))


@pytest.mark.parametrize(
    ("text", "secret", "entity"),
    [
        # labelled and tabled fields whose value is another identifier
        ("Addr: 18 Esplanade Ave, New Orleans LA 70116\nPh: 98450 12345", "Esplanade", "ADDRESS"),
        ("Addr: 18 Esplanade Ave, New Orleans LA 70116\nPh: 98450 12345", "98450 12345", "PHONE"),
        ("地址：桃园市中坜区中正路100巷5弄2号\n电话：(03)425-1234", "(03)425-1234", "PHONE"),
        ("病历号,姓名,身分证,生日\nA0012231,张志明,E123456780,1950/03/14", "E123456780", "NATIONAL_ID"),
        # an address after the words that give one, any country
        ("She lives at 1523 S Euclid St, Anaheim CA 92802. Her BP is high.", "1523 S Euclid St", "ADDRESS"),
        ("他住 Blk 123 Ang Mo Kio Ave 3 #08-1234 Singapore 560123，出院了", "Ang Mo Kio", "ADDRESS"),
        ("wohnhaft Hauptstraße 12, 80331 München. Question: statin?", "Hauptstraße 12", "ADDRESS"),
        # a home written from the flat outwards, with no street word or no word that gives it
        ("send the forms to Flat 5B, 12/F, Tower 2, Taikoo Shing please", "Taikoo Shing", "ADDRESS"),
        ("Room 1203, Building 5, Jinqiao Garden, Pudong. Is it far?", "Jinqiao Garden", "ADDRESS"),
        ("we are at Unit 3, 17 Kingsway, Cardiff", "17 Kingsway", "ADDRESS"),
        ("Block C-12-3, Pangsapuri Seri Mas, Cheras", "Pangsapuri Seri Mas", "ADDRESS"),
        ("Lot 5, Kampung Baru Sungai Buloh, 47000 Selangor", "Kampung Baru", "ADDRESS"),
        # a flat before the house, a compass point and an ordinal, the number after the street, a district
        ("she's at 4/22 Smith Street, Fitzroy VIC 3065", "4/22 Smith Street", "ADDRESS"),
        ("Apt 4B, 225 W 57th St, New York, NY 10019", "225 W 57th St", "ADDRESS"),
        ("mi madre vive en Calle Mayor 5, Madrid", "Calle Mayor 5", "ADDRESS"),
        ("bà ở 14 Nguyen Hue, District 1, TP HCM", "14 Nguyen Hue", "ADDRESS"),
        ("RR 2 Box 45, Moose Jaw SK", "RR 2 Box 45", "ADDRESS"),
        # any country's number after its own name
        ("My father, CNIC 35202-1234567-1, had an angiography", "35202-1234567-1", "NATIONAL_ID"),
        ("Emirates ID 784-1990-1234567-1. Emergency contact", "784-1990-1234567-1", "NATIONAL_ID"),
        ("(PhilHealth no. 12-050123456-7) was brought in", "12-050123456-7", "NATIONAL_ID"),
    ],
)
def test_fields_residences_and_named_numbers(
    engine: SafetyEngine, text: str, secret: str, entity: str
) -> None:
    assert_redacted(engine, text, secret, entity=entity)


@pytest.mark.parametrize(
    "text",
    [
        "He lives at 3 different places with his kids.",
        "Phone: call the clinic in the morning",
        "Address: see the hospital website",
        "BP 190/110 and HR 112, should I go in?",
        "ISBN 9780123456789 is the textbook",
        "NDC 0002-1433-80 is on the box",
        "地址：医院门诊楼三楼",
        # a hospital's rooms and blocks, a medicine's lot, a trial's block, a letter sent via a service
        "Please come to Room 3, Level 2, Outpatients Building",
        "Room 12, 3/F, Block A, Queen Mary Hospital",
        "Lot A123, 20 Tablets of Augmentin, expiry 2027",
        "Block 5, Week 3 of the trial went well",
        "sent via Royal Mail 2 days ago",
    ],
)
def test_words_and_codes_that_are_no_identifiers_pass(engine: SafetyEngine, text: str) -> None:
    assert_untouched(engine, text)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # a letter's signature
        ("Please advise.\n\nThanks,\nS. Whitfield-Hughes\nMob: 07700 900 371", "Whitfield-Hughes"),
        ("想咨询是否需要做基因检测。\n此致\n欧阳琳\n电话：138-1729-4460", "欧阳琳"),
        # relatives by other determiners, with particles, or known by what follows
        ("Our son Daan van der Berg has had diarrhoea for 4 days.", "Daan van der Berg"),
        ("B: COPD, ex-smoker. Wife Fatimah is NOK, mobile 012-345 6789.", "Fatimah"),
        ("Daughter Eleni asks if he can have visitors.", "Eleni"),
    ],
)
def test_signatures_and_relatives_are_redacted(engine: SafetyEngine, text: str, secret: str) -> None:
    assert_redacted(engine, text, secret)


@pytest.mark.parametrize(
    "text",
    [
        "Thanks,\nsee you tomorrow",
        "Best,\nThe Clinic Team",
        "Kind regards,\nDr Amanda Reyes\nGP",
        "Mother Teresa is the subject of my essay.",
    ],
)
def test_sign_offs_teams_and_clinicians_are_no_patients(text: str) -> None:
    assert not any(e == "PERSON" for _, _, e in find_phi(text, view=match_view(text), names_model=False))
