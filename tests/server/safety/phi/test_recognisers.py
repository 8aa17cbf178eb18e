"""PHI formats by family, through the real engine: Hong Kong and Taiwan identity cards, Traditional
Chinese and Cantonese contexts, document-style names, report dates and accession numbers, vehicles,
messaging ids, bank cards; and the hard negatives beside them that must pass untouched."""

from __future__ import annotations

import pytest

from server.safety import SafetyEngine
from server.safety.phi.identifiers import _twid_ok
from tests.server.safety.conftest import user

PHI = "phi"


def forwarded(engine: SafetyEngine, text: str) -> tuple[list[str], str]:
    verdict = engine.check_input(user(text), "patient")
    return verdict.categories, verdict.messages[-1]["content"]


def assert_redacted(engine: SafetyEngine, text: str, *secrets: str, entity: str | None = None) -> None:
    """PHI fires on `text` and no secret reaches the upstream (as `entity`'s placeholder, if given)."""
    categories, sent = forwarded(engine, text)
    assert PHI in categories
    for secret in secrets:
        assert secret not in sent, secret
    assert entity is None or f"[{entity}_" in sent


def assert_untouched(engine: SafetyEngine, text: str) -> None:
    """No PHI fires and the text goes upstream as written."""
    categories, sent = forwarded(engine, text)
    assert PHI not in categories
    assert sent == text


@pytest.mark.parametrize(
    ("text", "secret", "entity"),
    [
        # Hong Kong identity card: bracketed check digit anywhere, the bare form after an ID word
        ("Dad's HKID is C668668(9), he was admitted last night.", "C668668(9)", "NATIONAL_ID"),
        ("香港身份證 AB987654（3），想問點樣預約覆診", "AB987654（3）", "NATIONAL_ID"),
        ("HKID: Z6543217, please check his booking", "Z6543217", "NATIONAL_ID"),
        # Taiwan national ID: with its checksum alone, or after 身分證字號 without it
        ("我的資料 F131232216，請幫我看報告", "F131232216", "NATIONAL_ID"),
        ("阿公身分證字號：B120000009，要辦長照", "B120000009", "NATIONAL_ID"),
        # Taiwan NHI card number (健保卡號)
        ("健保卡號 0000 9876 5432，要怎麼查用藥紀錄？", "0000 9876 5432", "HEALTH_PLAN"),
        # names on documents, legal names, nicknames, SURNAME, Given
        ("Name as on passport: Margit Löwenthal, travelling next week.", "Margit Löwenthal", "PERSON"),
        ("Name as shown on the insurance card: Tomas Brandt", "Tomas Brandt", "PERSON"),
        ("his legal name is Desmond K. Achterberg, not Des", "Desmond K. Achterberg", "PERSON"),
        ("Her maiden name was Okonkwo and we need it on the form.", "Okonkwo", "PERSON"),
        ("everybody calls him Skip, he is 71", "Skip", "PERSON"),
        ("PATHOLOGY REPORT\nPatient: FERREIRA, Joana M.\nSex: F", "FERREIRA, Joana", "PERSON"),
        ("Please send the letter for patient Zoë Ngata (DOB 2 Mar 1970).", "Zoë Ngata", "PERSON"),
        ("Please send the letter for patient Zoë Ngata (DOB 2 Mar 1970).", "2 Mar 1970", "DATE"),
        ("My grandfather Wong Siu-ming has COPD.", "Wong Siu-ming", "PERSON"),
        # Traditional Chinese and Cantonese relatives; uncles, aunts; neighbours with a kinship title; payees
        ("我阿嬤黃秀英最近一直咳嗽", "黃秀英", "PERSON"),
        ("我爸爸陳國雄上個月中風", "陳國雄", "PERSON"),
        ("我姑姑刘淑芬乳腺癌术后复查", "刘淑芬", "PERSON"),
        ("我外公赵德明有糖尿病", "赵德明", "PERSON"),
        ("楼下的李建国大爷摔倒了，起不来", "李建国", "PERSON"),
        ("收款人：周文博，请核对", "周文博", "PERSON"),
        ("户名 吴晓燕 开户行 招商银行", "吴晓燕", "PERSON"),
        # report dates and specimen numbers
        ("DOB: 03-Feb-1948  Sex: F", "03-Feb-1948", "DATE"),
        ("Collected 7/Jun/2024 at the clinic", "7/Jun/2024", "DATE"),
        ("生日民國52年3月14日", "52年3月14日", "DATE"),
        ("Accession: 23-HX-004417\nSpecimen: blood", "23-HX-004417", "MRN"),
        # vehicles in brackets or quotes
        ("The form asks for the plate (4ABC123) and my doctor's signature.", "4ABC123", "VEHICLE"),
        ("and the VIN (JH4KA8260MC000000) for the placard", "JH4KA8260MC000000", "VEHICLE"),
        # Hong Kong estate addresses, Cantonese lead-in
        ("我阿媽住喺沙田大涌橋路20號沙角邨雲雀樓812室", "大涌橋路20號沙角邨雲雀樓812室", "ADDRESS"),
        # Hong Kong eight-digit phones after a phone word
        ("有咩事打我手機 9876 5432 啦", "9876 5432", "PHONE"),
        ("打我電話51234567", "51234567", "PHONE"),
        # bank cards named as such, with or without a valid Luhn digit
        ("收款银行卡：6217 0000 1111 2222 333", "6217 0000 1111 2222 333", "ACCOUNT"),
        ("银行卡号 6228480402564890018", "6228480402564890018", "ACCOUNT"),
        # messaging ids
        ("有问题加我微信 wang_xm1988 联系", "wang_xm1988", "HANDLE"),
        ("微信号：lily-2024", "lily-2024", "HANDLE"),
        ("QQ号 123456789，报告发我", "123456789", "HANDLE"),
        ("my LINE id is mei_chen88", "mei_chen88", "HANDLE"),
        # a surname before a kin word that is itself a kin word, or Cantonese 生 ("Mr")
        ("王姐姐今天来看我了，她血糖有点高", "王", "PERSON"),
        ("楼下陈生说他血压高，要不要加药？", "陈", "PERSON"),
        # IPv6 in full and with "::", a network card's hardware address, a loopback URL with a record number
        ("pump logged in from 2001:0db8:85a3:0000:0000:8a2e:0370:7334 at night", "8a2e:0370:7334", "IP"),
        ("her tablet is fe80::1ff:fe23:4567:890a on the ward wifi", "fe80::1ff:fe23:4567:890a", "IP"),
        ("MAC 00:1a:2b:3c:4d:5e is the monitor at bed 4", "00:1a:2b:3c:4d:5e", "DEVICE"),
        ("GET http://localhost:8080/api/patients/884213/records fails", "884213", "URL"),
    ],
)
def test_phi_format_is_redacted(engine: SafetyEngine, text: str, secret: str, entity: str) -> None:
    categories, sent = forwarded(engine, text)
    assert PHI in categories
    assert secret not in sent
    assert f"[{entity}_" in sent


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # doses, lab values, ICD codes, lot numbers, hotlines, beds, clinicians, years, ages
        ("Sertraline 50 mg, increased to 100 mg after 6 weeks; ICD-10 F41.1.", "F41.1"),
        ("Lot number on the box is AB2391X, is that batch recalled?", "AB2391X"),
        ("The hotline 400-820-1234 said to call back; also tried 800 555 0199.", "400-820-1234"),
        ("我爸住在心内科三病区12床，什么时候可以探视？", "三病区12床"),
        ("我妈住在ICU 5床，能送饭吗？", "5床"),
        ("Dr. Angela Whitmore and Nurse Mary Collins said the rash is benign.", "Angela Whitmore"),
        ("I read that Bruce Willis has aphasia; how is it treated?", "Bruce Willis"),
        ("The actor Tom Hanks has type 2 diabetes, right?", "Tom Hanks"),
        ("Who was William Osler and why is he called the father of modern medicine?", "William Osler"),
        ("HbA1c 58 mmol/mol, eGFR 48, potassium 5.1 in 2024.", "5.1"),
        ("My son is 14 and weighs 52 kg.", "52 kg"),
        ("我表弟高三，压力很大睡不着", "高三"),
        ("张医生说我外公的血压 150/95 偏高", "150/95"),
        ("王主任让我舅舅下周复查", "王主任"),
        ("Can I see my posts on Facebook about my cousin's surgery?", "Facebook"),
        ("My grandmother was at Queen Mary Hospital for a week.", "Mary Hospital"),
        ("微信支付可以用医保吗？我用WhatsApp messages to reach the clinic", "WhatsApp"),
        ("账户余额3000元够不够交押金？", "3000"),
        ("门诊3号楼二层抽血，空腹要多久？", "3号楼"),
        ("电话咨询时间 2023 年开始调整，护士说吃 1 片", "2023"),
        # an institution's published line, a freephone number, a product's expiry date
        ("The trust's main switchboard is 020 3299 9000, can they put me through to A&E?", "020 3299 9000"),
        ("卫健委热线 010-64011234 能投诉医院吗？", "010-64011234"),
        ("Healthdirect on 1800 022 222 said to see a GP within a day.", "1800 022 222"),
        ("Insulin lot QX114 with expiry 2026-03-31: is it still cold-chain safe?", "2026-03-31"),
        ("这批疫苗有效期至2025年11月30日，现在还能打吗？", "2025年11月30日"),
        # a weekday after a relation, Cantonese "all the time" after one (周 and 成 are surnames)
        ("阿媽成日講笑話，佢八十歲頭腦好清醒", "成日"),
        # a product's barcode and a device's registration number
        ("商品条码 6901234567892 的电子血压计要在哪里查真伪？", "6901234567892"),
        ("电子血压计的注册证号 国械注准20192070123 要在哪里查真伪？", "20192070123"),
        # an age after a word that may open an identifier's value
        ("Act as a fitness coach and make me a walking plan, im 65 and have knee pain", "im 65"),
        # a clock time is no IPv6 address; this machine's own address identifies no one
        ("LIS接口报错：[08:31:44] ERROR 条码重复，怎么处理？", "08:31:44"),
        ("Our nginx has proxy_pass http://127.0.0.1:8081/ and returns 502", "http://127.0.0.1:8081/"),
        ("std::vector or a list for the ward rota app?", "std::vector"),
        # a name's word before the scale, sign or syndrome it names (an eponym)
        ("医学生提问：Wellens综合征的心电图特点是什么？", "Wellens"),
        ("复习资料里Ranson评分和BISAP评分哪个更实用？", "Ranson"),
        ("急诊见习：Murphy征阳性提示什么？", "Murphy"),
        # a kin character that starts an everyday word (但 is a surname, 生 Cantonese for "Mr")
        ("最近有点累，但生活还算规律，需要补充维生素吗？", "但生活"),
        # three numbers none of which is a month
        ("Is the 20-20-20 rule for screen time real?", "20-20-20"),
        # a surname before an everyday word at a clause's end, a surname inside a clause before one
        ("机器人日志里发现有用户输入了一大段英文。", "段英文"),
        ("怎么写一篇关于自杀预防的科普文章", "普文章"),
        # a drug in a table cell under its column's header
        ("| Lot No. | Drug | Qty |\n| 20240311 | Amoxil | 30 |", "Amoxil"),
    ],
)
def test_hard_negative_is_not_redacted(engine: SafetyEngine, text: str, kept: str) -> None:
    categories, sent = forwarded(engine, text)
    assert PHI not in categories
    assert kept in sent


def test_taiwan_id_needs_its_checksum_without_an_id_word(engine: SafetyEngine) -> None:
    assert _twid_ok("A223456781") and not _twid_ok("A223456782")
    categories, sent = forwarded(engine, "編號 A223456782 的藥")
    assert PHI not in categories and "A223456782" in sent


def test_both_mentions_of_a_name_are_redacted(engine: SafetyEngine) -> None:
    text = "我叫孙明轩，今年30岁。\n\n收款银行卡：6222 0212 3456 7890 123（开户人：孙明轩本人）"
    _, sent = forwarded(engine, text)
    assert "孙明轩" not in sent and "6222" not in sent


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Dear Mrs McAllister, please excuse him from PE this week.", "Allister"),
        ("Mr MacDonald called about his wife's results.", "Donald"),
        ("Mrs DeSouza rang to move her appointment.", "Souza"),
        ("The tenant Mr Van der Merwe is on home oxygen.", "Merwe"),
    ],
)
def test_a_titled_surname_is_redacted_whole(engine: SafetyEngine, text: str, secret: str) -> None:
    """A capital inside a surname (Mc, Mac, De) or a particle (van der) does not end the name: cut at "Mc",
    the rest of it reached the model."""
    assert_redacted(engine, text, secret, entity="PERSON")


def test_a_childs_name_before_mama_is_redacted_and_the_weekday_kept(engine: SafetyEngine) -> None:
    """小雨妈妈 names a parent by her child (小雨); 周六早 (Saturday morning) is no name."""
    categories, sent = forwarded(engine, "小雨妈妈：周六早上九点游泳比赛，记得带泳镜")
    assert PHI in categories and "小雨" not in sent and "周六早上九点" in sent


def test_a_date_stops_at_the_end_of_its_line(engine: SafetyEngine) -> None:
    """A month at a line's end takes no day from the next line's list number."""
    categories, sent = forwarded(engine, "Steering group, 14 May\n1. Chatbot pilot went well")
    assert PHI in categories
    assert "14 May" not in sent
    assert "\n1. Chatbot pilot" in sent
