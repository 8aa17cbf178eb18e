"""Identifiers found by what the writer says they are rather than by their shape or their country: a value
after any noun with a number word ("VA file number", "病歷號", "出生医学证明编号"), a table column headed by
one, a record number read out in words, a name spelled letter by letter, an address whose house number is in
Chinese numerals or whose street word comes first, a phone number after "call me on", a date in French or
Spanish, a birth date's label; each beside the ordinary text it must leave alone (numbers of things: lots,
batches, orders, rooms, approvals)."""

from __future__ import annotations

import pytest

from server.safety import SafetyEngine
from tests.server.safety.phi.test_recognisers import assert_redacted, assert_untouched


@pytest.mark.parametrize(
    ("text", "secret", "entity"),
    [
        # a value after a noun no recogniser lists, and a number word
        ("His VA file number is C-28 447 190 and he's at the VA clinic", "447 190", "OTHER_ID"),
        ("| Hospital IP No. | 1180442 |", "1180442", "OTHER_ID"),
        ("在馬偕醫院急診，病歷號 MMH-ER-77821，他有心律不整", "77821", "OTHER_ID"),
        ("孩子出生医学证明编号 Q510123456，疫苗本上乙肝第三针漏打了", "Q510123456", "OTHER_ID"),
        ("my NDIS participant number is 431 998 221", "431 998 221", "OTHER_ID"),
        ("her ID 48213-7750 is on the card", "48213-7750", None),
        ("patient_id: ZK-448120 (ward 3)", "448120", None),
        # nouns that are labels by themselves
        ("Rx: 4471902   Dr. A. Khan", "4471902", "OTHER_ID"),
        ("Subject: Claim CLM-2024-0081442", "0081442", "OTHER_ID"),
        ("Kia ora, my koro has NHI ZAC5361 and was discharged", "ZAC5361", "OTHER_ID"),
        # read out in words, letters and dashes included
        ("his MRN is four four seven two nine one, thanks", "four four seven two nine one", "OTHER_ID"),
        ("her chart number is P as in Peter seven seven three nine two one", "seven seven three", "OTHER_ID"),
        (
            "social is four two nine dash seven seven dash one three eight eight",
            "one three eight",
            "OTHER_ID",
        ),
        # a column headed by an identifier's label
        (
            "MRN,Surname,DOB\nAB-00771,O'Connor,1941-03-22\nAB-00772,Dlamini,1990-12-01",
            "AB-00772",
            "OTHER_ID",
        ),
        ("病歷號,姓名,電話\nA0012231,張志明,02-2345-6789", "A0012231", "OTHER_ID"),
        # an identifier's own shape with no word before it
        ("pls check PJN448102H on the pump for me", "PJN448102H", "OTHER_ID"),
        ("转给你：ZY2024031577，明天复查", "ZY2024031577", "OTHER_ID"),
        # a person's record in JSON: every number is someone's, an identifier's value, an address line
        (
            '{"patient_name":"Hamid Rezaei","ahcip":"48213-7750","clinic":"Foothills"}',
            "48213-7750",
            "OTHER_ID",
        ),
        ('{"resourceType":"Patient","identifier":[{"value":"E00918273"}]}', "E00918273", "OTHER_ID"),
        ('{"resourceType":"Patient","address":[{"line":["Flat 12, 45 Peckham Rye"]}]}', "Peckham", "ADDRESS"),
        # pinyin: a noun closed by hao (号), and 身份证
        ("ta zuotian zhuyuan le (zhuyuanhao 24030991), yisheng shuo", "24030991", "OTHER_ID"),
        ("wo ma shenfenzheng 510107196304221, zenme ban", "510107196304221", "OTHER_ID"),
    ],
)
def test_a_number_under_any_persons_noun_is_redacted(
    engine: SafetyEngine, text: str, secret: str, entity: str | None
) -> None:
    assert_redacted(engine, text, secret, entity=entity)


@pytest.mark.parametrize(
    "text",
    [
        "lot number 123456 and batch no. 88123 were recalled",
        "国药准字号 H20051234，批号 20240312，有效期至2026年",
        "订单号 202412061234567890 已发货",
        "room no. 12345 is on the fourth floor",
        "the claim was 2024 dollars short",
        "No. 1 Hospital of Wuhan, ward 12",
        "编号：A12345 的器械说明书在哪里下载",
        "the number is one or two tablets a day",
        "I take number one, two, three and four of them in order",
        "| Lot No. | Drug | Qty |\n| 20240311 | Amoxil | 30 |",
        "trial NCT number 04368728 recruited 900 patients",
        "pihao 20240312 de yao hai neng chi ma",
        "国药准字H20003263 是真的吗",
        "results of trial NCT04368728 were published",
        "lot AB123456 was recalled by the maker",
        '{"drug":"amoxicillin","dose_mg":500,"ndc":"0093-4155-73","pack":"21 caps"}',
        "we ate at Shanghao 12345 Main",
    ],
)
def test_numbers_of_things_pass(engine: SafetyEngine, text: str) -> None:
    assert_untouched(engine, text)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("so my sons name is Liam McDonald that's M C D O N A L D uh date of birth", "M C D O N A L D"),
        ("Bobby Delaney, D-E-L-A-N-E-Y, is my dad", "D-E-L-A-N-E-Y"),
        ("Bonjour, mon père Jean-Baptiste Lefèvre, né le 4 avril", "Jean-Baptiste"),
        ("Kia ora, my koro Hemi Walker was discharged from Waikato", "Hemi Walker"),
        ("[scan]\nName: Ge0rge Wash1ngton Carter\nAge: 58", "Wash1ngton"),
        # a nickname's label, and a surname with a kinship title before the full name
        ("孩子：钱多多（小名：豆豆），2019年9月9日生", "豆豆"),
        ("家庭医生随访记录：居民俞老伯（俞金根，1935年3月3日生）", "俞金根"),
        # a pinyin name after the pinyin of 叫
        ("wo ma jiao Liu Guifen, ta zuotian shuaidao le", "Guifen"),
    ],
)
def test_spelled_names_and_relatives_in_other_languages(engine: SafetyEngine, text: str, secret: str) -> None:
    assert_redacted(engine, text, secret)


@pytest.mark.parametrize(
    "text",
    [
        "the letters A B C D on the eye chart",
        "In the ICU, U S A B C rounds start at nine",
        "zhe ge hanbao jiao Big Mac, hen hao chi",
    ],
)
def test_letters_without_a_name_pass(engine: SafetyEngine, text: str) -> None:
    assert_untouched(engine, text)


@pytest.mark.parametrize(
    ("text", "secret", "entity"),
    [
        (
            "she lives at 14 Banksia Cres, Cairns North QLD 4870, regarding",
            "Cairns North QLD 4870",
            "ADDRESS",
        ),
        ("he's at 902 County Rd 14, Tupelo MS 38801. How do we", "Tupelo MS 38801", "ADDRESS"),
        ("born 1955-12-15, 4520 rue Saint-Denis, Montréal QC H2J 2L3. Does", "Saint-Denis", "ADDRESS"),
        ("住在成都市武侯区科华北路六十五号二栋三单元她昨天摔了一跤", "科华北路六十五号", "ADDRESS"),
        ("住喺沙田瀝源邨福海樓1234室，佢每日食十粒藥", "1234室", "ADDRESS"),
        ("住在嘉義市東區民權路 30 號 4 樓。伊血壓 170", "民權路 30 號", "ADDRESS"),
        ("我的手機是零九三二 一二三 四五六", "零九三二 一二三 四五六", "PHONE"),
        ("Can you call me on (02) 9555 0123 tonight?", "9555 0123", "PHONE"),
        ("lives at four twelve Linden Street apartment six, Brookline, and", "Linden Street", "ADDRESS"),
        ("Parent contacted on 08-123 456 78. Should he go home?", "123 456 78", "PHONE"),
        ("mon père, né le 4 avril 1948, hospitalisé depuis le 2 mars", "2 mars", "DATE"),
        ("mi abuela nació el 3 de mayo de 1950", "3 de mayo", "DATE"),
        ("Name: Carter\nDOB: O8/l5/l95O\nAllergies: none", "l95O", "DATE"),
    ],
)
def test_addresses_phones_and_dates_in_more_forms(
    engine: SafetyEngine, text: str, secret: str, entity: str
) -> None:
    assert_redacted(engine, text, secret, entity=entity)


@pytest.mark.parametrize(
    "text",
    [
        "我知道三号要复查，医生说",
        "走这条路十号那天我就不舒服了",
        "一二 三四 年级的孩子打疫苗",
        "I was on 20 000 000 units of penicillin",
        "the two Main Street shops were shut",
        "we walked one or two Park Road blocks",
        "I ate 2 Mars bars and felt sick",
        "add 2 mayo to the salad",
        "DOB: unknown, age 40",
    ],
)
def test_dates_and_counts_beside_those_forms_pass(engine: SafetyEngine, text: str) -> None:
    assert_untouched(engine, text)


@pytest.mark.parametrize(
    ("label", "personal"),
    [
        ("病历号", True),
        ("会员卡号", True),
        ("病歷號", False),
        ("快递单号", False),
        ("订单号", False),
        ("批号", False),
    ],
)
def test_one_reading_of_chinese_nouns_tells_a_persons_number_from_a_things(
    label: str, personal: bool
) -> None:
    """Table headers, nouns before 号 and nouns before a shaped token share one test of a Chinese noun, read
    with and without its number words (快递单号 is a parcel's, though 单号 ends it). 病歷號 is the traditional
    form: the recognisers read simplified text, so a header arrives as 病历号."""
    from server.safety.phi.numbered import _zh_noun_ok, is_id_label

    assert is_id_label(label) is personal
    if label.endswith("号") and label != "病歷號":
        assert _zh_noun_ok(label[:-1]) is personal


@pytest.mark.parametrize(
    "text",
    ["病历号：ZY2024031577，姓王", "快递单号：SF1234567890 到了没有", "3号下午复查，带上片子"],
)
def test_records_read_a_label_ending_in_hao_and_not_a_date(engine: SafetyEngine, text: str) -> None:
    from server.safety.gate import GateSet
    from server.safety.phi import patterns, records

    hits = GateSet(patterns()).scan(text)
    assert (records._GATE in hits) is (text.startswith(("病历号", "快递单号")))  # noqa: SLF001 - the gate
