"""The evidence the person-name model (name_model.py) reads: what a name token looks like (Latin letters with
accents, connectors such as bin/binti/van/de), the cue words and characters around a name and their classes
(field label, title, relative, greeting, clinician, place), Chinese surname and given-name tables, and the
small helpers that read the words before and after a candidate. Tables are built at first use."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache

import ahocorasick_rs

from server.safety import lexicon
from server.safety.normalize import simplified
from server.safety.phi import zh_words
from server.safety.phi.names import SURNAMES

# letters: Latin with accents, Latin Extended and Vietnamese ("Nguyễn", "Đặng"); a token's first letter
# must be an upper-case one
_UP = "A-ZÀ-ÖØ-ÞĀ-ɏḀ-ỿ"
_L = "A-Za-zªºÀ-ÖØ-öø-ɏḀ-ỿ"  # Latin letters only: "PERSONS和哥伦比亚" is no token
_CONNECTOR = r"(?i:bin|binti|bte|bt|a/l|a/p|s/o|d/o|van|von|de|da|del|della|di|du|al|el)"
# (character classes, not an alternation per letter: the run regex reads every capital of a message)
_WORD_TAIL = rf"[{_L}'’]*(?:-[{_L}][{_L}'’]*)*\.?"
_CAP_TOKEN = rf"[{_UP}]{_WORD_TAIL}"
# a run of name-shaped tokens: "WOOD, Phillip", "Ahmad bin Ismail", "Peter Chan Tai-man" (one space between
# tokens: forms put several between a value and the next field). It starts with the capital and looks behind
# it, so that the regex engine skips to capitals instead of trying every position. Chinese characters may
# touch it on either side ("同事Chinedu说", "López先生"): they are word characters, but no letter of a name
_NOT_CJK_WORD = r"[^\W\u4e00-\u9fff]"
_LATIN_RUN = re.compile(
    rf"([{_UP}](?<!{_NOT_CJK_WORD}[{_UP}])(?<![’'\-/@.][{_UP}]){_WORD_TAIL}"
    rf"(?:(?: |,[ \t]?)(?:{_CONNECTOR} )?{_CAP_TOKEN}){{0,5}})(?!{_NOT_CJK_WORD}|@)"
)
_TOKEN = re.compile(rf"(?i:[asdb]/[lpo])|[{_L}]{_WORD_TAIL}|,")
# lower-case words after a cue ("my name's destiny mcgee")
_LOWER_WORDS = re.compile(r"\s+([a-zß-ÿ][\w'’-]*(?:[ \t]+[a-zß-ÿ][\w'’-]*){0,2})")
_RELATIVES = (
    "mum mom mother mama mommy dad father papa daddy son daughter wife husband brother sister grandma grandpa"
    " granny grandmother grandfather nan nana nanna gran grandson granddaughter aunt auntie aunty uncle"
    " cousin nephew niece friend partner boyfriend girlfriend fiance fiancee baby kid child stepson"
    " stepdaughter stepmother stepfather neighbour neighbor roommate colleague kin contact guardian"
    " caregiver carer sibling twin in-law brother-in-law sister-in-law mother-in-law father-in-law"
    # the same words in the languages patients mix into English ("mon père Jean-Baptiste", "my koro Hemi",
    # "my lola Corazon", "my nani Kamla"); none is an English word of its own
    " père mère fils fille frère soeur sœur padre madre hijo hija abuela abuelo abuelita abuelito esposo"
    " esposa vater mutter sohn tochter opa oma koro kuia lola lolo nani dadi ammi abba amma appa mam obaachan"
    " ojiichan"
).split()
# what the word before a candidate says about it (a class generalises across templates the way one word
# cannot: "its", "it's" and "this is" introduce a name alike)
_CUE_CLASS = {
    **dict.fromkeys(_RELATIVES, "rel"),
    # (jiao: 叫 in pinyin, "wo ma jiao Liu Guifen")
    **dict.fromkeys("is am im i'm it's its name name's names named called me by as speaking jiao".split(),
                    "intro"),
    **dict.fromkeys("mr mrs ms miss mx mister master madam mdm mme mlle sr sra herr frau".split(), "title"),
    # the titles of Malay, Indonesian and Thai ("Encik Razak", "Hjh. Rohani", "Pak Hendra", "Khun Somchai")
    **dict.fromkeys("encik cik puan haji hajah hj hjh datuk dato datin pak ibu khun".split(), "title"),
    # kinship titles written before a relative's name ("Granny Edwie", "Auntie May", "Uncle Ah Seng")
    **dict.fromkeys("granny nana nan gran grandma grandpa grandad granddad auntie aunty aunt uncle".split(),
                    "kin"),
    # titles of places and institutions, never of a patient ("Queen Mary Hospital", "St. Luke's")
    **dict.fromkeys("queen king saint st prince princess sir lady lord".split(), "inst"),
    **dict.fromkeys(
        "dr doctor prof professor nurse consultant surgeon np rn gp dentist therapist pharmacist physician"
        " midwife registrar sister matron".split(), "clin"),
    **dict.fromkeys("dear hi hello hey hiya thanks regards sincerely cheers love from signed yours bye aloha"
                    .split(), "greet"),
    **dict.fromkeys("with for and to of at by or".split(), "prep"),
    **dict.fromkeys("dob born aged age mrn nric hkid id passport".split(), "id"),
}  # fmt: skip
_TITLES = frozenset(w for w, c in _CUE_CLASS.items() if c in ("title", "clin", "kin", "inst")) - {"sister"}


def is_cue_word(word: str) -> bool:
    """A title, a relative, a greeting or a clinician's word ("Encik", "Mam", "Cheers"): what stands before a
    name, never one alone."""
    return _CUE_CLASS.get(word.lower().strip(".")) in ("title", "kin", "rel", "clin", "greet")


# the word before a capitalised run that lets any capitalised word in it be a name the lexicon does not know
# ("Granny Edwie", "Name: Xzylo Brandt"); "this is" and "i am" are checked as pairs
_CUE_WORDS = frozenset(("name", "name's", "named", "called", "jiao", "it's", "its", "i'm", "patient", "pt",
                        "kin", "contact", *_RELATIVES))  # fmt: skip
# places and organisations whose words are also names ("Kong", "York", "Park", "Mayo", "Paris"), and the
# cities messages name most: a name is rarely written next to them
_PLACE_WORDS = frozenset(
    """hong kong kowloon york angeles francisco london manchester singapore kuala lumpur penang johor macau
    macao taipei kaohsiung taichung beijing shanghai guangzhou shenzhen sydney melbourne brisbane perth
    toronto vancouver montreal ottawa auckland wellington dublin mumbai delhi chennai bangalore jersey
    paris berlin rome madrid lisbon amsterdam brussels vienna zurich geneva munich milan tokyo osaka seoul
    busan bangkok jakarta hanoi dubai doha cairo lagos nairobi johannesburg karachi lahore dhaka kathmandu
    colombo chicago boston houston seattle miami atlanta dallas denver
    clinic hospital infirmary centre center medical health university college school pharmacy street road
    avenue park general mount saint st valley island city county district ward unit trust foundation
    institute group insurance bank""".split()
)
# cues after which a name may be typed in lower case: strong ones take any word that is not a common one,
# weak ones only a lexicon name ("it's andie", not "it's considered"; "my son jack", not "my son has")
_LOWER_STRONG = ("my name is", "my name's", "name is", "name's", "names", "call me", "name:", "name :",
                 "called", "named", "regards,", "sincerely,", "thanks,")  # fmt: skip
_LOWER_WEAK = ("it's", "its", "it is", "this is", "i am", "i'm", "im",
               *(f"{p} {r}" for p in ("my", "his", "her", "our") for r in _RELATIVES))  # fmt: skip
_APOS = str.maketrans("’", "'")
# English function words, capitalised at a sentence start or in capitals ("I", "My TSH", "Should I", "MY NAME
# IS"): never a name's token, so they split a run rather than join one (a third of a message's capitalised
# runs are these). Words that are also common names stay out ("He" and "To" are Chinese surnames, "May",
# "Will"); a few rare ones are in ("My", "Do", "Can"): at a sentence start they are the word
_STOP = frozenset(
    """i i'm i've i'd i'll im ive the a what what's whats how is are was were am be been can can't cannot
    could couldn't should shouldn't would wouldn't does doesn't did didn't do don't has have had having
    this that these those there there's here and but or nor for if when where why who whom whose which
    it it's its we we're you you're your yours our ours their theirs they they're she she's his her hers
    him them me my mine not no yes any all some also then than thanks thank please after before since
    because about with from into of in at by as very just still only anyway ok okay sorry every each
    both either neither such much many more most other another same own""".split()
)

_CJK = re.compile("[\u4e00-\u9fff]")
_CJK_RUN = re.compile("[\u4e00-\u9fff]+")
_ZH_LEFT_CUES = (
    "患者 病人 病患 患儿 伤者 产妇 孕妇 姓名 名字 我叫 名叫 叫做 他叫 她叫 本人 就诊人 受检人 被保险人 投保人"
    " 申请人 委托人 监护人 联系人 收件人 收货人 寄件人 开户人 户名 持卡人 收款人 签名 签字 署名 家属"
    " 老公 老婆 丈夫 妻子 爱人 爸爸 妈妈 父亲 母亲 儿子 女儿 爷爷 奶奶 外公 外婆 姥姥 姥爷 哥哥 姐姐 弟弟"
    " 妹妹 孙子 孙女 朋友 同事 室友 邻居 我妈 我爸 我哥 我姐 我弟 我妹 老妈 老爸 婆婆 公公 舅舅 舅妈 姑姑"
    " 姑妈 姨妈 小姨 叔叔 婶婶 伯伯 阿公 阿嬷 阿婆 阿爷 岳父 岳母 表哥 表姐 表弟 表妹 堂哥 堂姐 侄子 侄女"
    " 外甥 老豆 阿爸 阿妈 隔壁的 楼下的 楼上的 对门的 我是 是 给 帮 替 和 跟 与 叫 尊敬的 亲爱的"
    # partners, carers and the people a form or a ward note names ("其配偶柏建业", "护工小芳", "经办人：蒲")
    " 配偶 老伴 男友 女友 男朋友 女朋友 对象 其子 其女 其夫 其妻 孩子 闺蜜 同学 舍友 工友 保姆 护工 义工 房东"
    " 经办人 经手人 取药人 陪同人 记录人 审核人 填表人"
    # a bed number ("5床赵德胜", "23床公孙浩然"): read only after a digit or 号 (see name_model)
    " 床"
).split()
_ZH_SEPARATORS = " \t\n:：，,（("
_ZH_CALLED = ("名叫", "叫做", "叫")
_ZH_LEFT_CLASS = {
    **dict.fromkeys(("我叫", "名叫", "叫做", "他叫", "她叫", "我是", "是"), "intro"),
    **dict.fromkeys(("和", "跟", "与", "给", "帮", "替"), "prep"),
    **dict.fromkeys(("隔壁的", "楼下的", "楼上的", "对门的"), "nb"),
    "called": "called",  # a bare 叫 (name_model reads it as its own, weakest cue)
    **dict.fromkeys(("尊敬的", "亲爱的"), "salut"),
    "paren": "paren",  # after a romanised name and a parenthesis (name_model finds these itself)
    "床": "bed",
}
_ZH_LABELS = frozenset(
    "姓名 名字 就诊人 受检人 被保险人 投保人 申请人 委托人 监护人 联系人 收件人 收货人 寄件人 开户人 户名"
    " 持卡人 收款人 签名 签字 署名 患者 病人 病患 患儿 伤者 产妇 孕妇 本人 家属".split()
)
_ZH_RIGHT_CLASS = {
    **dict.fromkeys(("先生", "女士", "小姐", "同学"), "title"),
    **dict.fromkeys(("阿姨", "叔叔", "奶奶", "爷爷", "大爷", "大妈", "婆婆", "伯伯", "老伯", "阿婆", "阿伯",
                     "大叔", "大哥", "大姐", "大娘", "大婶", "姑娘", "师傅", "老先生", "老太太"), "kin"),
    "太太": "kin",
    **dict.fromkeys(("医生", "大夫", "护士", "主任", "教授", "院长", "医师", "老师"), "clin"),
    **dict.fromkeys(("的家属", "的家人", "的妈妈", "的爸爸", "的母亲", "的父亲", "的儿子", "的女儿", "的丈夫",
                     "的妻子", "的爱人", "的监护人", "的检查", "的报告", "的病历", "的结果"), "poss"),
    # a hospital's text message or letter ("尊敬的杜秀英患者", "苏怡君 您好")
    **dict.fromkeys(("患者", "病人", "患儿"), "pt"),
    **dict.fromkeys(("您好", "你好"), "greet"),
}  # fmt: skip
# the classes of the English cue words (_CUE_CLASS) that the Chinese cues stand for, for a romanised name in
# Chinese text ("同事Chinedu说", "López先生", "我是Wang Hui")
_ZH_AS_LATIN = {"intro": "intro", "called": "intro", "prep": "prep", "nb": "rel", "salut": "greet",
                "bed": "id", "title": "title", "kin": "kin", "clin": "clin", "greet": "greet", "pt": "title",
                "poss": "rel"}  # fmt: skip


def zh_cue_before(run: str) -> tuple[str, str]:
    """The Chinese cue a run of characters ends with, and its class as an English cue's: ("", "") for none."""
    for k in (4, 3, 2, 1):
        cue = run[-k:]
        if len(cue) == k and cue in _ZH_LEFT_SET and cue != "床":
            cls = "intro" if cue in _ZH_LABELS else _ZH_AS_LATIN.get(_ZH_LEFT_CLASS.get(cue, ""), "rel")
            return cue, cls
    return "", ""


def zh_cue_after(run: str) -> tuple[str, str]:
    """The Chinese cue a run of characters starts with ("先生在世博园", "大叔68岁") and its English class."""
    for k in (3, 2):
        cls = _ZH_RIGHT_CLASS.get(run[:k])
        if cls is not None:
            return run[:k], _ZH_AS_LATIN[cls]
    return "", ""


# a romanised word, then an opening parenthesis: what follows may be the same name in characters
_LATIN_THEN_PAREN = re.compile(r"[A-Za-z\u00c0-\u024f][ \t]*[（(][ \t]*")
_ZH_LINE = re.compile(r"(?m)^[ \t]*([\u4e00-\u9fff]{2,4})[ \t]*$")
# grammatical characters no given name holds
_ZH_PARTICLES = frozenset("了的是在着过吗呢吧啊嘛呀被把就都还又很太")
_COMPOUND = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 令狐 夏侯 轩辕 端木 钟离 独孤 南宫"
    " 万俟 闻人 澹台 申屠 西门".split()
)


@cache
def _tables() -> tuple[frozenset[str], frozenset[str], frozenset[str], dict[str, int], frozenset[str]]:
    """Lexicons as the featuriser reads them (Chinese ones in Simplified, as find_phi's text is)."""
    ranks: dict[str, int] = {}
    for name, rank in lexicon.chinese_surname_ranks().items():
        name = simplified(name)
        ranks[name] = min(rank, ranks.get(name, rank))
    for ch in SURNAMES:
        ranks.setdefault(ch, 150)
    for name in _COMPOUND:
        ranks.setdefault(name, 300)
    given_chars = frozenset(simplified("".join(lexicon.chinese_given_chars())))
    return lexicon.given_names(), lexicon.surnames(), lexicon.romanised_syllables(), ranks, given_chars


_ZH_CUES = tuple(dict.fromkeys((*_ZH_LEFT_CUES, *_ZH_RIGHT_CLASS)))
_ZH_LEFT_SET = frozenset(_ZH_LEFT_CUES)
# left cues too common to vouch for a name by themselves ("是普通的", "和周围")
_ZH_WEAK_LEFT = frozenset(("是", "和", "跟", "与", "给", "帮", "替"))


@cache
def _zh_tail() -> re.Pattern[str]:
    """Two to four Chinese characters before punctuation or the end, from a surname's first character."""
    _, _, _, ranks, _ = _tables()
    first = "".join(sorted({k[0] for k in ranks} | {k[0] for k in _COMPOUND}))
    return re.compile(rf"[{first}][\u4e00-\u9fff]{{1,3}}(?=[，,。：:（(\s]|$)")


@cache
def _automata() -> tuple[ahocorasick_rs.AhoCorasick, tuple[bool, ...], ahocorasick_rs.AhoCorasick]:
    """The lower-case cues of Latin text (and whether each is a strong one), and the Chinese cues (_ZH_CUES:
    left ones, before a name, and right ones, after it)."""
    lower = (*_LOWER_STRONG, *_LOWER_WEAK)
    kind = ahocorasick_rs.MatchKind.Standard
    return (
        ahocorasick_rs.AhoCorasick(list(lower), matchkind=kind),
        tuple(i < len(_LOWER_STRONG) for i in range(len(lower))),
        ahocorasick_rs.AhoCorasick(list(_ZH_CUES), matchkind=kind),
    )


def _shape(tok: str) -> str:
    if tok == ",":
        return ","
    low = tok.lower().rstrip(".")
    if low in lexicon.CONNECTORS or tok.lower() in lexicon.CONNECTORS:
        return "K"
    if low in _TITLES:
        return "T"
    core = tok.rstrip(".")
    if len(core) == 1:
        return "I"
    if "-" in core:
        return "H" if not core.isupper() else "HU"
    if core.isupper():
        return "U"
    if core[0].isupper():
        # a capital inside a word: a product or a handle ("EpiPen", "WhatsApp") more often than a name
        # ("McDonald", "DeShawn": the model weighs it)
        return "M" if any(c.isupper() for c in core[2:]) else "C"
    return "L"


def _lex(tok: str, given: frozenset[str], sur: frozenset[str], syl: frozenset[str]) -> str:
    low = tok.lower().rstrip(".").replace("’", "'")
    g, s = low in given, low in sur
    r = not (g or s) and all(p in syl for p in low.split("-"))
    return ("g" if g else "") + ("s" if s else "") + ("r" if r else "") or "0"


_BACK = re.compile(r"([^\w\n]{0,3})([\w'’]*)")  # on reversed text: separators, then the word before them


def _word_before(text: str, pos: int, lo: int) -> tuple[int, str, str]:
    """The word that ends at most three separators (no newline) before `pos`, not reaching before `lo`:
    (its start, the word lower-cased, the separators); (-1, "", separators) when there is none; a number
    reads as "#" ("Step 2: DocBot", "Bed 12: ...")."""
    back = text[lo:pos][::-1]
    m = _BACK.match(back)
    sep, word = m.group(1)[::-1], m.group(2)[::-1]
    k = 0
    while k < len(word) and not word[k].isalpha():  # a word starts with a letter ("2nd" -> "nd")
        k += 1
    if k == len(word):
        return (pos - len(sep) - len(word), "#", sep) if word[-1:].isdigit() else (-1, "", sep)
    return pos - len(sep) - len(word) + k, word[k:].lower().translate(_APOS), sep


_FORWARD = re.compile(r"[^\w\n]{0,3}([^\W\d_][\w'’]{0,29})")


def _word_after(text: str, pos: int) -> str:
    m = _FORWARD.match(text, pos)
    return m.group(1).lower() if m else ""


_SOFT_CLASSES = frozenset(("greet", "kin", "title"))


def _soft_cued(text: str, start: int, end: int) -> bool:
    """A weaker cue for a capitalised word neither lexicon nor letters read as a name: a greeting, a kinship
    word or a title right before it ("Hi Sandeep", "Auntie Blessing"), or a possessive after it ("Yaw's
    review"). Not a preposition or "and": medicines stand there as often ("Tylenol and Zyrtec"). The name
    model weighs it; no rule reads it."""
    w = _word_before(text, start, max(0, start - 16))[1]
    if w and _CJK.match(w[-1]):  # Chinese around a romanised name: "表哥Tashi", "López先生"
        return zh_cue_before(w)[1] in _SOFT_CLASSES or zh_cue_after(text[end : end + 3])[1] in _SOFT_CLASSES
    return _CUE_CLASS.get(w) in _SOFT_CLASSES or text[end : end + 2] in ("'s", "’s")


# lexicon readings that are no evidence of a name: no lexicon word and letters not a name's ("0"), a word
# of the ordinary vocabulary ("w")
_NO_EVIDENCE = frozenset(("0", "w"))
# a capitalised word (hyphenated or not) that is no ordinary word is a candidate with no evidence: the model
# weighs its context ("Ngozi and Chidi", "Chidi keeps waking"); a medicine stands there as often ("Tylenol and
# Zyrtec"), which is what its weights are for. An unknown word in lower case or all capitals needs evidence.
_OPEN_SHAPES = frozenset(("C", "H"))


def _evidence(text: str, start: int, end: int, reading: tuple[str, str]) -> bool:
    """Whether the token text[start:end], with its (shape, lexicon reading), is a candidate without a cue.
    Inside Chinese an unknown Latin word is a medicine or an app as often as a name ("医生说Lipitor要饭后吃",
    "我用Excel记"): there it needs a soft cue still ("表哥Tashi", "López先生")."""
    if reading[1] not in _NO_EVIDENCE:
        return True
    if reading[1] != "0":
        return False
    before, after = text[max(0, start - 3) : start].rstrip()[-1:], text[end : end + 3].lstrip()[:1]
    amid_chinese = bool(_CJK.match(before) or _CJK.match(after))
    return (reading[0] in _OPEN_SHAPES and not amid_chinese) or _soft_cued(text, start, end)


def _cued(text: str, pos: int) -> bool:
    """A name cue right before `pos`: a colon, "name", "called", "it's", "this is", a relative..."""
    start, w, sep = _word_before(text, pos, max(0, pos - 24))
    if ":" in sep or w in _CUE_WORDS:
        return True
    if w and _CJK.match(w[-1]):  # "同事Chinedu", "我叫Kelly"
        return zh_cue_before(w)[1] in ("rel", "intro")
    if w in ("is", "am") and start > 0:
        return _word_before(text, start, max(0, start - 12))[1] == ("this" if w == "is" else "i")
    return False


# where a clause starts: the text's start, or after sentence or clause punctuation, a list's 、 or an arrow
# ("黄梓涵、马骁", "涂晶→查老师"), or a space
_CLAUSE_PUNCT = r"(?:^|[。！？!?，,；;：:、→\s])\s*"


@cache
def _clause_names() -> re.Pattern[str]:
    """Clause starts whose next two characters may open a name (a surname's or a name character, then a name
    character): one regex pass instead of a Python test at every comma of a long message."""
    _, _, _, ranks, given_chars = _tables()
    first = {k[0] for k in ranks} | {k[0] for k in _COMPOUND} | set(given_chars)
    second = set(given_chars) | {k[1] for k in _COMPOUND}
    cls = lambda chars: "[" + "".join(sorted(c for c in chars if "\u4e00" <= c <= "\u9fff")) + "]"  # noqa: E731
    return re.compile(f"{_CLAUSE_PUNCT}(?={cls(first - _CLAUSE_VERBS)}{cls(second)})")


# a character, then a one-character kin or title word (李伯, 张哥, 黄太, 陈生 in Cantonese, 肖总): the
# surname table and the everyday-word count decide whether the character is a surname. Found from the kin
# word, a class of twelve (a pattern that opens with any Chinese character is tried at each of them).
_KIN_AFTER_CHAR = re.compile("[伯叔姨姐哥嫂婶太生婆公总](?<=[\u4e00-\u9fff][伯叔姨姐哥嫂婶太生婆公总])")


def surname_kin_starts(text: str) -> list[int]:
    """Where a character stands before a one-character kin or title word, pairs not overlapping, read left
    to right ("王叔叔": 王 only)."""
    starts: list[int] = []
    free = 0  # where the next pair may start
    for m in _KIN_AFTER_CHAR.finditer(text):
        if m.start() - 1 >= free:
            starts.append(m.start() - 1)
            free = m.start() + 1
    return starts


# characters that open a clause as a verb or an adverb far more often than as a given name ("想学一下")
_CLAUSE_VERBS = frozenset("想要会能可请让给使叫问说看听去来到做吃喝买找等学刚已正再又先")
# what a parent calls any child or a partner, not a name (the dictionary lists them with names)
_ENDEARMENTS = frozenset(("宝宝", "宝贝", "宝儿", "乖乖", "亲爱", "亲亲", "老公", "老婆", "娃娃", "妞妞"))


def zh_features(text: str, start: int, end: int, sur_len: int, cue: str, cue_at: dict[int, str]) -> list[str]:
    _, _, _, ranks, given_chars = _tables()
    name = text[start:end]
    sur = name[:sur_len]
    rank = ranks.get(sur, 999)
    given = name[sur_len:]
    feats = ["zbias", f"zn={len(name)}", f"zs={len(sur)}", f"zcue={cue}"]
    feats.append(f"zrank={0 if rank < 20 else 1 if rank < 100 else 2 if rank < 400 else 3}")
    feats.append(f"zgiven={len(given)}|" + "".join("1" if c in given_chars else "0" for c in given))
    for k, ch in enumerate(given):
        feats.append(f"zg{k}={ch}")
    feats.append(f"zsur={sur}")
    for k in (1, 2, 3):
        if start - k >= 0:
            feats.append(f"zL{k}={text[start - k : start]}")
    for k in (1, 2):
        if end + k <= len(text):
            feats.append(f"zR{k}={text[end : end + k]}")
    nxt = text[end : end + 1]
    nx = "g" if nxt in given_chars else "c" if _CJK.match(nxt or " ") else "x"
    # a two-character name followed by a name character may be the first two of three ("凌婷" in "凌婷婷")
    feats.append(f"znext={nx}|zn={len(name)}")
    left_cue = cue_at.get(start)
    if left_cue is None:
        left = "none"
    elif left_cue in _ZH_LABELS:
        left = "label"
    else:
        left = _ZH_LEFT_CLASS.get(left_cue, "intro" if left_cue == "叫" else "rel")
    if text[start - 1 : start] in (":", "：") and start > 0:
        left += ":"
    after = text[end : end + 3]
    right = _ZH_RIGHT_CLASS.get(after) or _ZH_RIGHT_CLASS.get(after[:2])
    if right is None:
        right = (
            "poss"
            if after.startswith("的")
            else "cjk"
            if after and _CJK.match(after)
            else "punct"
            if after
            else "end"
        )
    feats += [f"zLc={left}", f"zRc={right}", f"zLR={left}|{right}", f"zRc={right}|zn={len(name)}"]
    # where the name ends: the next character a name character or not, by cue and length
    # ("我老公司徒瑞最近": 最 ends it; "李秀" in "李秀英": 英 goes on)
    feats.append(f"zLN={left}|{nx}|zn={len(name)}|zs={len(sur)}")
    feats.append(f"zx={_joins_next(text, end)}")
    return feats


def _joins_next(text: str, end: int) -> int:
    """How frequent a word a candidate's last character makes with the next one (小高 before 峰: 高峰), in
    three bands: a name ends where such a word does not begin."""
    freq = zh_words.everyday_words().get(text[end - 1 : end + 1], 0) if end < len(text) else 0
    return 0 if not freq else 1 if freq < 200 else 2


# a pair of characters this frequent in jieba's dictionary is a word, not a familiar name (小时 8,143, 老师
# 6,415; 小张 302 and 老周 56 are names as often)
FAMILIAR_WORD_FREQ = 500


@cache
def _surname_then_given() -> re.Pattern[str]:
    """Where a one-character surname stands before one or two name characters (group 1: those)."""
    _, _, _, ranks, given = _tables()
    surnames = "".join(sorted(c for c in ranks if len(c) == 1))
    return re.compile(f"(?=[{surnames}]([{''.join(sorted(given))}]{{1,2}}))")


def names_inside_clauses(
    text: str,
    seen: set[tuple[int, int]],
    possible: Callable[[int, int, int], bool],
    words: dict[str, int],
) -> Iterator[tuple[int, int, list[str]]]:
    """A surname and one or two name characters inside a clause, with no cue ("请问刘晓明是哪个病房",
    "陪阮氏梅去产检"): the weakest reading, weighed by what stands around it ("F" features: the model
    learns from the writers' messages how rarely such a pair is a name)."""
    for m in _surname_then_given().finditer(text):
        i = m.start()
        if i > 0 and words.get(text[i - 1 : i + 1], 0) >= FAMILIAR_WORD_FREQ:
            continue  # the end of a word (提高, 大方)
        for end in (i + 2, i + 3):
            if (
                end <= m.end(1)
                and (i, end) not in seen
                and text[end : end + 1] != "氏"
                and possible(i, end, 1)
                # neither the whole, its first two characters nor its given name is an everyday word (普文章,
                # 高血压; 海燕 and 志强 are rare enough as words to stay names)
                and all(
                    words.get(w, 0) < FAMILIAR_WORD_FREQ
                    for w in (text[i:end], text[i : i + 2], text[i + 1 : end])
                )
            ):
                seen.add((i, end))
                yield i, end, zh_features(text, i, end, 1, "F", {})


# what a bed number ends with before 床 ("5床", "１２床", "3号床")
_BED_NUMBER = re.compile("[0-9０-９号]")
# everyday words that begin with a one-character kin or title word and are kin or titles themselves
# (王姐姐, 李总监): after a surname they still name a person
_KIN_WORDS = frozenset("哥哥 姐姐 太太 婆婆 叔叔 公公 嫂子 总裁 总监 总管 公子 公主".split())
_ZH_KIN = frozenset("公婆姨爸妈嬷爷伯叔哥姐弟妹嫂舅")  # 阿公, 阿姨: a relative, not a familiar name
# a character written twice, as children's and pet names are (甜甜, 豆豆) and many words too (妈妈, 常常)
_REDUPLICATED = re.compile(r"([\u4e00-\u9fff])\1")


_RULE_CELL = re.compile(r"[\s|:+=-]*")  # a markdown table's rule line: |---|:--:|


def _table_header(text: str, sep: str, line_start: int, known: dict[tuple[str, int], str]) -> str:
    """The topmost row that is no rule line (|---|) among the rows right above the line at `line_start` that
    hold `sep` ("" where there is none). Each row's answer is kept in `known` (one text's, by separator and
    row start), so every cell of a long table does not walk up through all the rows above it again."""
    rows = []  # (row start, the row above it, where that row starts), from the line up
    pos = line_start
    while (sep, pos) not in known:
        above_start = text.rfind("\n", 0, max(0, pos - 1)) + 1
        above = text[above_start : pos - 1] if pos > 1 else ""
        if sep not in above:
            known[sep, pos] = ""
            break
        rows.append((pos, above, above_start))
        pos = above_start
    for pos, above, above_start in reversed(rows):
        known[sep, pos] = known[sep, above_start] or ("" if _RULE_CELL.fullmatch(above) else above)
    return known[sep, line_start]


def column_header(text: str, start: int, rows: dict[tuple[str, int], str] | None = None) -> str:
    """The last word of the header of the table column that `start` is in, where its line is a row of a
    pipe- or tab-separated table under a header row ("| Drug | Qty |" above "| Amoxil | 30 |"), else "". The
    header is the label a form would write before the value ("Drug: Amoxil", "Name: Chidi"). `rows`: the
    headers already found in this text (a memo the caller keeps for one text)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    sep = "|" if line.count("|") >= 2 else "\t" if "\t" in line else ""
    if not sep or line_start == 0:
        return ""
    column = text.count(sep, line_start, start)
    cells = _table_header(text, sep, line_start, {} if rows is None else rows).split(sep)
    words = re.findall(r"[\w']+", cells[column].lower()) if column < len(cells) else []
    return words[-1] if words else ""


def nick_features(text: str, start: int, end: int, rank: int, freq: int) -> list[str]:
    """The features of a familiar name (老王, 小李, 阿强) at text[start:end]: its prefix and characters, the
    surname's rank band (`rank`), whether the pair is a dictionary word (`freq`), what stands around it."""
    pre, ch = text[start], text[start + 1 : end]
    feats = ["kbias", f"kpre={pre}", f"kch={ch}", f"kpc={pre}{ch}"]
    band = 0 if rank < 20 else 1 if rank < 100 else 2 if rank < 400 else 3
    feats.append(f"kpre={pre}|krank={band}")
    # whether the pair is a word too (老周 56 in jieba's dictionary, 小刘 none; a more frequent one than
    # FAMILIAR_WORD_FREQ is no candidate), and that with the surname's rank: a word made with a rare
    # surname is a word (小区, 小楼), one made with a common surname is a name as often (小张, 老高)
    feats += [f"kdict={1 if freq else 0}", f"krank={band}|kdict={1 if freq else 0}"]
    feats.append(f"kx={_joins_next(text, end)}")
    for k in (1, 2):
        if end + k <= len(text):
            feats.append(f"kR{k}={text[end : end + k]}")
    before, after = text[start - 1 : start], text[end : end + 1]
    feats.append(f"kL1={before or '^'}")
    cls = "end" if not after else "cjk" if _CJK.match(after) else "punct" if not after.isalnum() else "w"
    feats += [
        f"kRc={cls}",
        f"kpre={pre}|kRc={cls}",
        f"kL1c={'cjk' if _CJK.match(before or ' ') else 'x'}",
    ]
    return feats


def reduplicated_names(
    text: str, seen: set[tuple[int, int]], words: dict[str, int]
) -> Iterator[tuple[int, int, list[str]]]:
    """A reduplicated nickname (甜甜, 豆豆, 糖糖): not a relative (妈妈, 姐姐) nor an everyday word (常常,
    天天); read with a familiar name's features, the character itself in place of a prefix's."""
    for m in _REDUPLICATED.finditer(text):
        i, end = m.span()
        if (
            (i, end) in seen
            or text[i] in _ZH_KIN
            or (freq := words.get(text[i:end], 0)) >= FAMILIAR_WORD_FREQ
        ):
            continue
        seen.add((i, end))
        yield i, end, ["kbias", "redup", f"rch={text[i]}", *nick_features(text, i, end, 999, freq)[4:]]
