"""The trained person-name model (server/safety/phi/name_model.py) as the input rails use it: names the rules
miss, common words it must leave alone, determinism, the weights file, the trainer, and where it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from server.safety.normalize import match_view
from server.safety.phi import find_phi, name_cues, name_model, name_train, name_vetoes
from server.safety.phi.name_chars import CharScorer
from server.safety.phi.name_model import FORMAT, NameModel

REPO = Path(__file__).resolve().parents[4]


def names_found(text: str, model: bool = True) -> list[str]:
    """PERSON spans as the input rails find them (the engine passes the text's view)."""
    return [
        text[a:b] for a, b, e in find_phi(text, view=match_view(text), names_model=model) if e == "PERSON"
    ]


# (text, the name in it): formats no rule spells out, so the rules alone miss each one
MISSED_BY_RULES = [
    ("ALLERGY BAND: WOOD, Phillip | MRN 00482913", "WOOD, Phillip"),  # LAST, First on a label
    ("SPECIMEN  MARGARET O'CONNELL  DOB 1950-02-01  ward 7B", "MARGARET O'CONNELL"),  # ALL-CAPS
    ("Name on card: CHEN Shu-fen", "CHEN Shu-fen"),  # Taiwan (Wade-Giles)
    ("Seen today with Lim Boon Keng and his daughter.", "Lim Boon Keng"),  # Singapore Hokkien
    (
        "Name (as in NRIC): NUR AISYAH BINTI HASSAN\nContact: +65 9123 4567",
        "NUR AISYAH BINTI HASSAN",
    ),  # Malay
    ("Next of kin: Rajesh a/l Muthu (son)", "Rajesh a/l Muthu"),  # Tamil patronymic
    ("尊敬的王医生：\n最近一直咳嗽。\n此致\n敬礼\n林淑芬", "林淑芬"),  # a signature under a letter
    # familiar names: 老 or 小 and a surname, 阿 and a name character (老周 is in jieba's dictionary too)
    ("老周昨晚又喘不上气，要不要去急诊？", "老周"),
    ("小刘，你爸的CT报告出来没有？", "小刘"),
    ("阿珍她妈血压一直偏高。", "阿珍"),
    ("我舅舅住院了，叫孙建平，明天手术。", "孙建平"),  # after a bare 叫
    # a hospital's text message, and a name in characters after its romanisation
    ("【市中心医院】尊敬的杜秀英患者，您预约的心内科门诊已成功", "杜秀英"),
    ("我爸在加拿大，名字 Li Jianhua（李建华），住在多伦多", "李建华"),
    # a given name alone after a relation, a name after a greeting, a given name in running prose: forms the
    # writers' messages taught (data/name_writers/)
    ("表妹欣怡说她考研压力大，头发一把一把掉", "欣怡"),
    ("我老公志伟成日打鼻鼾，是不是睡眠窒息", "志伟"),
    ("Hi Sandeep, thanks for covering my shift.", "Sandeep"),
    ("Dear Mrs Shah, please excuse Callum from PE this week.", "Callum"),
    # a surname alone before a kinship word or a title; a name after a bed number or a partner's label
    ("隔壁的王阿姨说她血压高", "王"),
    ("钟师傅，您上回修的制氧机又坏了", "钟"),
    ("5床赵德胜睡前血糖14.2", "赵德胜"),
    ("23床公孙浩然家属要求明天出院", "公孙浩然"),  # a compound surname that starts a word (公孙树)
    ("其配偶柏建业在场", "柏建业"),
    # a romanised name touching Chinese, read with the Chinese cue around it
    ("Uncle Lim昨天在咖啡店昏倒", "Lim"),
    ("我同事Chinedu说他有镰状细胞病", "Chinedu"),
    ("我的保姆Lakshmi每天早上喂饭", "Lakshmi"),
]
# found by the rules already; the model must agree (compound surnames included)
FOUND_BY_BOTH = [
    ("昨晚老诸葛又咳了一夜。", "老诸葛"),  # a familiar name with a compound surname (a rule since)
    ("患者欧阳娜娜，女，32岁，咳嗽两周。", "欧阳娜娜"),
    ("联系人：司徒志明  电话：138 0013 8000", "司徒志明"),
    ("我是慕容雪的家属，想问一下检查结果。", "慕容雪"),
    ("Pt name: HOLLOWAY, Graham    Ward: 7B", "HOLLOWAY, Graham"),
    # a record's own fields (phi/records.py): a form label, a CSV column
    ("Name: CHAN Tai-man\nHKID on file", "CHAN Tai-man"),
    ("Patient Name: Ahmad bin Ismail\nDOB: 1970-01-01", "Ahmad bin Ismail"),
    ("name,dob,phone\nNguyen Van Minh,1960-05-04,415-555-0132", "Nguyen Van Minh"),
    # a transliterated foreign name, its parts joined by an interpunct
    ("患者家属：萨米拉·阿里女士", "萨米拉·阿里"),
]
# common words, drugs, places, eponyms and clinicians in benign sentences: no name
BENIGN = [
    "May I take Advil with Tylenol?",
    "Will Metformin help my sugar levels?",
    "Grace period for the refill ends Monday.",
    "Mark the dates on the calendar before June.",
    "Rose early today and took my Ventolin.",
    "Bill me later, Will you?",
    "I flew from Kuala Lumpur to Hong Kong to see a specialist at Queen Mary Hospital.",
    "Sydney was hot, so was Perth. Paris in spring is nicer.",
    "Lipitor, Warfarin and Eliquis together?",
    "Is Parkinson's hereditary? My uncle had Crohn's disease too.",
    "Can Down syndrome be detected early?",
    "My TSH is 5.2 and my LDL is high.",
    "Dr. Amanda Reyes said my A1c is fine.",
    "I read that Bruce Willis was diagnosed with aphasia.",
    "I'm scared of the side effects.",
    "Hi! I'm Sam. What's a good stretch?",
    "黄疸指数高怎么办？",
    "周围的人都说要去大医院看。",
    "王医生说要多喝水。",
    "我的主治医生李建华主任说要终身吃药。",
    "高血压和糖尿病是什么关系？",
    "我儿子高热惊厥过一次。",
    # words shaped like a familiar name, and 叫 with no name after it
    "他小时候得过肺炎。",
    "老师说孩子发烧要在家休息。",
    "阿莫西林和头孢能一起吃吗？",
    "喷吡虫啉和阿维菌素的时候要戴口罩吗？",
    "小苏打水能不能治胃酸？",
    "小区门口新开了一家药店。",
    "小叶增生要紧吗？",
    "阿姨说孩子咳嗽。",
    "快叫救护车！",
    "我叫小李，请问跑步膝盖疼怎么办？",  # one's own familiar name alone, as "I'm Sam"
    "这种病叫高血压吗？",
    # surname-shaped words the model itself now scores below its line (the dictionary vetoed them before)
    "怎么跟六岁的孙子解释阿公的病？",
    "外婆白内障手术很顺利，明天出院",
    # a given name holds no particle and is no title
    "我是班主任，学生发烧了。",
    "给我妈留了一张卡。",
    # a relation word shaped like a name, an age after one, a drug after its English name
    "留守的婆婆带孙子，孙子三岁了还不太会说话",
    "Amoxicillin（阿莫西林）和 Ibuprofen（布洛芬）能一起吃吗？",
    # a famous transliterated name, a book title; 床 with no bed number; brands touching Chinese
    "弗洛伦斯·南丁格尔的精神值得学习",
    "我在读《列夫·托尔斯泰传》",
    "起床后头晕，病床旁有呼叫器",
    "医生说Lipitor要饭后吃，我用Excel记血糖",
    "王医生让我汇总一下数据",
]


@pytest.mark.parametrize(("text", "name"), MISSED_BY_RULES, ids=[n for _, n in MISSED_BY_RULES])
def test_the_model_finds_names_in_formats_the_rules_miss(text: str, name: str) -> None:
    assert name not in names_found(text, model=False)
    assert name in names_found(text)


@pytest.mark.parametrize(("text", "name"), FOUND_BY_BOTH, ids=[n for _, n in FOUND_BY_BOTH])
def test_names_the_rules_find_stay_found(text: str, name: str) -> None:
    assert name in names_found(text, model=False)
    assert name in names_found(text)


@pytest.mark.parametrize("text", BENIGN)
def test_common_words_drugs_places_and_clinicians_are_no_names(text: str) -> None:
    assert names_found(text) == []


def test_the_model_is_deterministic() -> None:
    raw = json.loads(resources.files("server.safety.phi").joinpath("name_weights.json").read_text("utf-8"))
    chars = CharScorer(raw["char_weights"], raw["char_lines"], frozenset(raw["ordinary_words"]))
    fresh = NameModel(
        raw["weights"],
        float(raw["threshold"]),
        frozenset(raw["common_words"]),
        float(raw["threshold_zh"]),
        chars=chars,
    )
    text = " ".join(t for t, _ in MISSED_BY_RULES + FOUND_BY_BOTH) + " " + " ".join(BENIGN)
    first = name_model.load().find(text)
    assert first  # the mix holds names
    assert fresh.find(text) == first == name_model.load().find(text)
    scores = [(a, b, fresh.score(f)) for a, b, f in fresh.candidates(text)]
    assert scores == [(a, b, fresh.score(f)) for a, b, f in name_model.candidates(text, fresh.common, chars)]


def test_the_weights_file_is_a_name_model_with_its_threshold_and_training_record() -> None:
    raw = json.loads(resources.files("server.safety.phi").joinpath("name_weights.json").read_text("utf-8"))
    assert raw["format"] == FORMAT
    assert isinstance(raw["threshold"], float) and -3 <= raw["threshold"] <= 6
    assert raw["common_words"] == sorted(set(raw["common_words"])) and "the" in raw["common_words"]
    weights = raw["weights"]
    assert len(weights) > 1000 and all(
        isinstance(k, str) and isinstance(v, float) for k, v in weights.items()
    )
    # Latin features and Chinese ones (z...) both learned
    assert "bias" in weights and "zbias" in weights and any(k.startswith("L1c=") for k in weights)
    trained = raw["trained"]
    assert {"docs", "seed", "steps", "l2", "validation", "heldout"} <= set(trained)
    assert trained["heldout"]["precision"] >= 0.97 and trained["heldout"]["recall"] >= 0.85


def test_a_file_that_is_not_a_name_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / name_model.WEIGHTS_FILE).write_text(json.dumps({"format": "other"}), encoding="utf-8")
    monkeypatch.setattr(name_model.resources, "files", lambda _package: tmp_path)
    name_model.load.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="not a"):
            name_model.load()
    finally:
        name_model.load.cache_clear()


def test_the_trainer_runs_and_writes_a_loadable_model(tmp_path: Path) -> None:
    out, held = tmp_path / "w.json", tmp_path / "held.jsonl"
    assert (
        name_train.main(["--docs", "40", "--steps", "20", "--out", str(out), "--heldout-out", str(held)]) == 0
    )
    raw = json.loads(out.read_text(encoding="utf-8"))
    assert raw["format"] == FORMAT and raw["trained"]["docs"] == 40
    chars = CharScorer(raw["char_weights"], raw["char_lines"], frozenset(raw["ordinary_words"]))
    model = NameModel(raw["weights"], raw["threshold"], frozenset(raw["common_words"]), chars=chars)
    model.find("Patient Name: Ahmad bin Ismail, seen with Folasade Okoro")  # loads and runs
    rows = [json.loads(line) for line in held.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 10 and all({"text", "spans", "fmt", "locale", "lang"} <= set(r) for r in rows)


def test_the_output_guard_reads_with_the_rules_alone() -> None:
    """The guard calls find_phi without a view: the model, which reads what follows a name, stays off
    there (a streamed answer releases a name before what follows it is written)."""
    text = "Name on card: CHEN Shu-fen"
    assert "CHEN Shu-fen" in names_found(text)
    assert all(e != "PERSON" for _, _, e in find_phi(text))


def test_importing_the_safety_package_loads_no_weights_and_builds_no_table() -> None:
    code = (
        "import server.safety, server.safety.phi.name_model as m\n"
        "assert all(f.cache_info().currsize == 0 for f in (m.load, m._tables, m._automata, m._zh_tail))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# the model proposes a surname and one or two characters; these are everyday words (jieba's dictionary)
SURNAME_SHAPED_WORDS = [
    ("帮我给我妈解释下", "解释下"),
]


@pytest.mark.parametrize(("text", "proposal"), SURNAME_SHAPED_WORDS, ids=[w for _, w in SURNAME_SHAPED_WORDS])
def test_everyday_words_the_model_proposes_are_no_names(
    text: str, proposal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the Chinese threshold lowered until the model proposes the word, the rules' reading cuts it."""
    shipped = name_model.load()
    score = max(shipped.score(f) for a, b, f in shipped.candidates(text) if text[a:b] == proposal)
    low = name_model.NameModel(
        shipped.weights, shipped.threshold, shipped.common, score - 0.01, chars=shipped.chars
    )
    monkeypatch.setattr(name_model, "load", lambda: low)
    assert proposal in [text[a:b] for a, b, _ in low.find(text)]  # the model alone would cut it
    assert names_found(text) == []


def test_everyday_words_come_from_the_dictionary_without_person_names() -> None:
    from server.safety.phi import zh_words

    words = zh_words.everyday_words()
    assert len(words) > 40_000 and words["信息"] > 1_000
    assert "李建国" not in words and "刘德华" not in words  # tagged as person names (nr)
    assert zh_words.is_everyday_word("解释一") and not zh_words.is_everyday_word("王建国")


def test_writers_marked_names_are_read_as_the_product_reads_names(tmp_path: Path) -> None:
    """A clinician's name a writer marked is no gold span; a surname marked after 老 is read with it."""
    text = "Dr Mehta said 老陈 and Priya can go home; 胡子豪医生 agreed."
    row = {"id": "x-1", "writer": "x", "lang": "en", "text": text}
    row["names"] = [
        {"text": n, "start": text.index(n), "end": text.index(n) + len(n)}
        for n in ("Mehta", "陈", "Priya", "胡子豪")
    ]
    (tmp_path / "x.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    (doc,) = name_train.writer_documents(tmp_path)["x"]
    assert [text[a:b] for a, b in doc.spans] == ["老陈", "Priya"]


def _writers(names: list[float], words: list[float]) -> tuple[list, list[name_train.Doc]]:
    """One message per candidate, ranked as a model fitted without its writer would rank it: a writer's name
    scored `names[i]`, or a word scored `words[i]`."""
    ranked, docs = [], []
    for score, gold in [(s, True) for s in names] + [(s, False) for s in words]:
        ranked.append([(score, 0, 4, False)])
        docs.append(name_train.Doc("Name", [(0, 4)] if gold else [], "writer", "w", "en"))
    return ranked, docs


def _benign(scores: list[float], quiet: int) -> list[list[tuple[float, int, int, bool]]]:
    return [[(s, 0, 4, False)] for s in scores] + [[] for _ in range(quiet)]


def test_the_line_is_the_highest_with_the_best_count_of_names_less_words() -> None:
    # 100 names at 3, a word at 2, 50 names at 1, 60 words at 0.5: the count is 100, 99, 149, then 89
    ranked, docs = _writers([3.0] * 100 + [1.0] * 50, [2.0] + [0.5] * 60)
    line, curve = name_train.choose_line(ranked, docs, _benign([], 1000), zh=False)
    assert line == 0.75  # 0.75 and 0.5 both count 149: the higher is kept
    assert {row["threshold"]: row["net"] for row in curve}[0.25] == 89
    assert curve[-1]["threshold"] == -3.0  # it walked the whole way down


def test_a_line_within_the_tolerance_of_the_best_is_as_good() -> None:
    # 1,000 names at 2; five more at 0 that cost one word: the best count is 1004 at 0, 1000 at 1.75
    ranked, docs = _writers([2.0] * 1000 + [0.0] * 5, [0.0])
    line, _ = name_train.choose_line(ranked, docs, _benign([], 1000), zh=False)
    assert line == 1.75
    ranked, docs = _writers([2.0] * 100 + [0.0] * 5, [0.0])  # 4 of 104 is past 1%: the lower line
    assert name_train.choose_line(ranked, docs, _benign([], 1000), zh=False)[0] == -0.25


def test_the_walk_stops_where_benign_texts_gain_names() -> None:
    ranked, docs = _writers([3.0] * 10 + [-1.0] * 50, [])
    # 400 benign texts allow one to gain a name; one is named at every line (9.0: not one a line trades), one
    # gains at 1.0 and two at 0.2, so the walk ends at 0.25 and the names at -1 are out of reach
    benign = _benign([9.0, 1.0, 0.2, 0.2], 396)
    line, curve = name_train.choose_line(ranked, docs, benign, zh=False)
    assert curve[-1]["threshold"] == 0.25
    assert line == 2.75


def test_each_script_is_read_on_its_own() -> None:
    ranked, docs = _writers([3.0] * 10, [])
    ranked += [[(1.0, 0, 2, True)]] * 20  # Chinese names at 1: no business of the Latin line
    docs += [name_train.Doc("某某", [(0, 2)], "writer", "w", "zh")] * 20
    assert name_train.choose_line(ranked, docs, _benign([], 1000), zh=False)[0] == 2.75
    assert name_train.choose_line(ranked, docs, _benign([], 1000), zh=True)[0] == 0.75


PREFIXED = [
    "我老公志伟成日打鼻鼾，昨天见了表妹欣怡，5床赵德胜说王阿姨和Uncle Lim都好。",
    "Hi Sandeep, my cousin Ann Lee and 同事Chinedu说 萨米拉·阿里女士 来了",
]


@pytest.mark.parametrize("text", PREFIXED)
def test_every_candidate_lies_inside_the_text_whatever_its_end(text: str) -> None:
    """A message may end anywhere, one character after a cue ("我老公志"): no candidate reaches past its
    end, and the input rails read every prefix without an error."""
    model = name_model.load()
    for k in range(1, len(text) + 1):
        prefix = text[:k]
        assert all(0 <= a < b <= k for a, b, _ in model.candidates(prefix)), prefix
        find_phi(prefix, view=match_view(prefix))


@pytest.mark.parametrize(
    ("text", "word", "candidate"),
    [
        (
            "Ngozi and Chidi both have a rash",
            "Chidi",
            True,
        ),  # an unknown capitalised word: the model weighs it
        ("Lagos-Obi was seen today", "Lagos-Obi", True),  # hyphenated
        ("ngozi and chidi both have a rash", "chidi", False),  # lower case needs evidence
        ("NSTEMI ruled out, troponin flat", "NSTEMI", False),  # so does an unknown word in capitals
        ("医生说Lipitor要饭后吃", "Lipitor", False),  # amid Chinese: a medicine as often as a name
        ("医生说 Lipitor 要饭后吃", "Lipitor", False),  # spaces around it change nothing
        ("表哥Tashi下山后总是心慌", "Tashi", True),  # a relation before it is the cue it needs there
    ],
)
def test_an_unknown_capitalised_word_is_a_candidate_outside_chinese(
    text: str, word: str, candidate: bool
) -> None:
    model = name_model.load()
    found = {text[a:b] for a, b, _ in model.candidates(text)}
    assert (word in found) is candidate


@pytest.mark.parametrize(
    ("text", "span", "inside"),
    [
        ("请问刘晓明是哪个病房的？我是他同事", "刘晓明", True),  # mid-clause, no cue
        ("小李，你把吴海燕的化验单拍给我看看", "吴海燕", True),
        ("关于自杀预防的科普文章怎么写", "普文章", False),  # its given name is an everyday word
        ("高血压患者能吃金银花吗", "高血压", False),
        ("医生说要提高运动量", "高运动", False),  # the surname ends a word (提高)
    ],
)
def test_a_surname_inside_a_clause_is_a_candidate_unless_words_make_it(
    text: str, span: str, inside: bool
) -> None:
    """The candidates read inside a clause ("F"); other readings of the same span keep their own cues."""
    found = {text[a:b] for a, b, f in name_model.load().candidates(text) if "zcue=F" in f}
    assert (span in found) is inside


@pytest.mark.parametrize(
    ("text", "word", "header"),
    [
        ("| Lot No. | Drug | Qty |\n|---|---|---|\n| 20240311 | Amoxil | 30 |", "Amoxil", "drug"),
        ("Name\tAge\tWard\nChidi Obi\t30\t7B", "Chidi", "name"),
        ("Name\tAge\tWard\nChidi Obi\t30\t7B", "7B", "ward"),
        (
            "| Patient name | Bed |\n| Chidi | 4 |\n| Ngozi | 5 |",
            "Ngozi",
            "name",
        ),  # the first row is the header
        ("| Drug | Qty |", "Drug", ""),  # the header row itself has none
        ("Seen by Chidi | ward 4", "Chidi", ""),  # one pipe in a sentence is no table
    ],
)
def test_a_table_cell_reads_its_columns_header(text: str, word: str, header: str) -> None:
    assert name_cues.column_header(text, text.index(word)) == header


def test_a_column_header_tells_a_drug_from_a_name_in_the_same_cell() -> None:
    assert names_found("| Lot No. | Drug | Qty |\n| 20240311 | Amoxil | 30 |") == []
    assert names_found("| Bed | Name | Age |\n| 4 | Chidi | 30 |") == ["Chidi"]


@pytest.mark.parametrize(
    ("text", "span", "candidate"),
    [
        ("我是甜甜的妈妈，她在儿科住院", "甜甜", True),  # a child's reduplicated nickname
        ("糖糖烧到39度了，能吃布洛芬吗", "糖糖", True),
        ("奶奶天天咳嗽", "奶奶", False),  # a relative
        ("奶奶天天咳嗽", "天天", False),  # an everyday word
    ],
)
def test_a_reduplicated_nickname_is_a_candidate_unless_a_relative_or_a_word(
    text: str, span: str, candidate: bool
) -> None:
    found = {text[a:b] for a, b, f in name_model.load().candidates(text) if "redup" in f}
    assert (span in found) is candidate


def test_the_baby_is_no_ones_name() -> None:
    """宝宝 is written twice as nicknames are, and is the everyday word for a baby."""
    assert names_found("我家宝宝三个月，拉肚子三天了怎么办") == []
    assert names_found("糖糖烧到39度了，能吃布洛芬吗") == ["糖糖"]


class _Proposes:
    """A stand-in for the shipped model that proposes one span, so that model_names' exclusions are what is
    under test (the real model's common and ordinary words)."""

    def __init__(self, span: str, model: NameModel) -> None:
        self.span, self.common, self.chars = span, model.common, model.chars

    def find(self, text: str) -> list[tuple[int, int, str]]:
        start = text.index(self.span)
        return [(start, start + len(self.span), "PERSON")]


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("Rota w/c 14th Mon - Grace (long day) Tue - Kwame", "Tue"),  # a weekday among weekdays
        ("Kia ora, my mother had an echo on 5 Nov and we've heard nothing", "Nov"),
        ("I am away from 23 Dec returning 2 Jan.", "Jan"),
        ("On Thu, 6 Feb 2025 at 18:22, Rebecca wrote:", "Thu"),
        ("Encik at the counter said I need a referral", "Encik"),  # a title alone
        ("Mam wants to know if the GP visit is still on", "Mam"),  # a relative's word alone
        ("Hiya, I'm Shaz, 27", "Hiya"),
        ("Mark the site with an arrow above the knee", "Mark"),  # a sentence's first word, a verb told
        ("Home now. Jack the bed up 30 degrees please", "Jack"),
        ("zhe ge hanbao jiao Big Mac, hen hao chi", "Mac"),  # a thing's name after an everyday word
        ("Pack-size limits on paracetamol cut overdoses", "Pack-size"),  # a hyphened pair of everyday words
        ("Meds\n| Bed | Name | Qty |\n|---|---|---|\n| 3 | Chidi | 2 |", "Qty"),  # a header row's cell
        ("Visits:\nSlot\tVisitor\tPatient\n14:00\tCarol\tJim Ross", "Visitor"),
    ],
)
def test_what_the_model_proposes_that_is_no_name(
    monkeypatch: pytest.MonkeyPatch, text: str, span: str
) -> None:
    stub = _Proposes(span, name_model.load())
    monkeypatch.setattr(name_model, "load", lambda: stub)
    assert list(name_vetoes.model_names(text)) == []


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("Jan said she would bring the letters", "Jan"),  # a month's short form is a name too
        ("Please tell Sun about the results", "Sun"),
        ("Encik Razak, 67, on warfarin for AF", "Razak"),
        ("Tunde my husband snores like a train", "Tunde"),  # a name before "my" in apposition
        ("Please tell Mark the results today", "Mark"),  # not a sentence's first word
        ("I saw Auntie Mabel at the clinic", "Mabel"),  # a relative's title before a name
        ("Bill from the pharmacy says it is ready", "Bill"),
        ("Mary-Kate rang about the appointment", "Mary-Kate"),
        ("| Bed | Name | Qty |\n|---|---|---|\n| 3 | Chidi | 2 |", "Chidi"),  # a data row's cell
        ("Slot\tVisitor\tPatient\n14:00\tCarol\tJim Ross", "Carol"),
    ],
)
def test_names_beside_those_words_stay(monkeypatch: pytest.MonkeyPatch, text: str, span: str) -> None:
    stub = _Proposes(span, name_model.load())
    monkeypatch.setattr(name_model, "load", lambda: stub)
    assert [text[a:b] for a, b, _ in name_vetoes.model_names(text)] == [span]
