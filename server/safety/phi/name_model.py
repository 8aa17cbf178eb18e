"""Person names as a recognition problem: candidate spans from evidence, scored by a trained linear model.

The rules in names.py catch a name after a cue they spell out ("my name is", 患者, "Patient: HOLLOWAY,
Graham"). This model reads the same evidence as features and learns how much each is worth, so a name is
also found where no single rule fires: "CHAN Tai-man", "Nur Aisyah binti Hassan", "WOOD, Phillip" on a
label, "destiny mcgee" after "my name's", 欧阳娜娜 in a form, a signature under a letter.

Candidates (only these are scored, which bounds the cost per message):
- Latin script: every run of up to six name-shaped tokens (capitalised, ALL-CAPS, initials, hyphenated,
  joined by spaces, one comma, or a patronymic connector: bin, binti, a/l, s/o, van, de...), and every
  sub-span of up to four tokens of it that holds a lexicon word or follows a cue; lower-case words only
  right after a cue ("my name's", "it's", "this is", a relative), and after the weaker cues only when the
  first is a lexicon name and no common English word ("I'm scared" is no name);
- Chinese: a surname (compound ones first) and one or two more characters, where a left cue ends (患者,
  姓名：, 我妈, 联系人...), where a right cue starts (先生, 女士, 的家属, 阿姨..., punctuation, the end), or
  alone on a line (a signature, a form cell).
Features (strings; the weight table ships as JSON): token shapes, lexicon membership per position (Faker's
given names and surnames, romanised Chinese syllables, Chinese surname rank and given-name characters),
common English words by identity, one and two words or one to three characters of left and right context,
cue classes, sentence start. score = sum of weights; overlapping candidates: the best one; a span is a name
when its score clears the threshold. Trained by name_train.py on synthetic documents (name_templates.py).

Cost: cues are found by one Aho-Corasick pass per script (the gate module's crate), the context of a token
is read once however many candidates share it, and a token's shape and lexicon reading are memoised; the
weights load at first use (load(), cached), never at import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources

import ahocorasick_rs

from server.safety import lexicon
from server.safety.normalize import simplified
from server.safety.phi.names import SURNAMES
from server.safety.verdict import Span

WEIGHTS_FILE = "name_weights.json"
FORMAT = "antangelmed-phi-name-model"
MAX_TOKENS = 4  # a candidate name has at most this many tokens ("Maria del Carmen Ruiz" is four)

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
# it, so that the regex engine skips to capitals instead of trying every position
_LATIN_RUN = re.compile(
    rf"([{_UP}](?<![\w'’\-/@.][{_UP}]){_WORD_TAIL}(?:(?: |,[ \t]?)(?:{_CONNECTOR} )?{_CAP_TOKEN}){{0,5}})"
    r"(?![\w@])"
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
).split()
# what the word before a candidate says about it (a class generalises across templates the way one word
# cannot: "its", "it's" and "this is" introduce a name alike)
_CUE_CLASS = {
    **dict.fromkeys(_RELATIVES, "rel"),
    **dict.fromkeys("is am im i'm it's its name name's names named called me by as speaking".split(),
                    "intro"),
    **dict.fromkeys("mr mrs ms miss mx mister master madam mdm mme mlle sr sra herr frau".split(), "title"),
    # kinship titles written before a relative's name ("Granny Edwie", "Auntie May", "Uncle Ah Seng")
    **dict.fromkeys("granny nana nan gran grandma grandpa grandad granddad auntie aunty aunt uncle".split(),
                    "kin"),
    # titles of places and institutions, never of a patient ("Queen Mary Hospital", "St. Luke's")
    **dict.fromkeys("queen king saint st prince princess sir lady lord".split(), "inst"),
    **dict.fromkeys(
        "dr doctor prof professor nurse consultant surgeon np rn gp dentist therapist pharmacist physician"
        " midwife registrar sister matron".split(), "clin"),
    **dict.fromkeys("dear hi hello hey thanks regards sincerely cheers love from signed yours".split(),
                    "greet"),
    **dict.fromkeys("with for and to of at by or".split(), "prep"),
    **dict.fromkeys("dob born aged age mrn nric hkid id passport".split(), "id"),
}  # fmt: skip
_TITLES = frozenset(w for w, c in _CUE_CLASS.items() if c in ("title", "clin", "kin", "inst")) - {"sister"}
# the word before a capitalised run that lets any capitalised word in it be a name the lexicon does not know
# ("Granny Edwie", "Name: Xzylo Brandt"); "this is" and "i am" are checked as pairs
_CUE_WORDS = frozenset(("name", "name's", "named", "called", "it's", "its", "i'm", "patient", "pt", "kin",
                        "contact", *_RELATIVES))  # fmt: skip
# places and organisations whose words are also surnames ("Kong", "York", "Park", "Mayo"): a name is rarely
# written next to them
_PLACE_WORDS = frozenset(
    """hong kong kowloon york angeles francisco london manchester singapore kuala lumpur penang johor macau
    macao taipei kaohsiung taichung beijing shanghai guangzhou shenzhen sydney melbourne brisbane perth
    toronto vancouver montreal ottawa auckland wellington dublin mumbai delhi chennai bangalore jersey
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
    " 外甥 老豆 阿爸 阿妈 隔壁的 楼下的 楼上的 对门的 我是 是 给 帮 替 和 跟 与"
).split()
_ZH_SEPARATORS = " \t\n:：，,（("
_ZH_CALLED = ("名叫", "叫做", "叫")
_ZH_LEFT_CLASS = {
    **dict.fromkeys(("我叫", "名叫", "叫做", "他叫", "她叫", "我是", "是"), "intro"),
    **dict.fromkeys(("和", "跟", "与", "给", "帮", "替"), "prep"),
    **dict.fromkeys(("隔壁的", "楼下的", "楼上的", "对门的"), "nb"),
}
_ZH_LABELS = frozenset(
    "姓名 名字 就诊人 受检人 被保险人 投保人 申请人 委托人 监护人 联系人 收件人 收货人 寄件人 开户人 户名"
    " 持卡人 收款人 签名 签字 署名 患者 病人 病患 患儿 伤者 产妇 孕妇 本人 家属".split()
)
_ZH_RIGHT_CLASS = {
    **dict.fromkeys(("先生", "女士", "小姐", "同学"), "title"),
    **dict.fromkeys(("阿姨", "叔叔", "奶奶", "爷爷", "大爷", "大妈", "婆婆", "伯伯"), "kin"),
    **dict.fromkeys(("医生", "大夫", "护士", "主任", "教授", "院长", "医师", "老师"), "clin"),
    **dict.fromkeys(("的家属", "的家人", "的妈妈", "的爸爸", "的母亲", "的父亲", "的儿子", "的女儿", "的丈夫",
                     "的妻子", "的爱人", "的监护人", "的检查", "的报告", "的病历", "的结果"), "poss"),
}  # fmt: skip
_ZH_RIGHT_PUNCT = frozenset("，,。：:（( \t\n\r")
_ZH_LINE = re.compile(r"(?m)^[ \t]*([\u4e00-\u9fff]{2,4})[ \t]*$")
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


def _cued(text: str, pos: int) -> bool:
    """A name cue right before `pos`: a colon, "name", "called", "it's", "this is", a relative..."""
    start, w, sep = _word_before(text, pos, max(0, pos - 24))
    if ":" in sep or w in _CUE_WORDS:
        return True
    if w in ("is", "am") and start > 0:
        return _word_before(text, start, max(0, start - 12))[1] == ("this" if w == "is" else "i")
    return False


class NameModel:
    def __init__(self, weights: dict[str, float], threshold: float, common: frozenset[str]) -> None:
        self.weights = weights
        self.threshold = threshold
        self.common = common
        self._tokens: dict[str, tuple[str, str]] = {}  # token -> (shape, lexicon reading), memoised
        self._found: dict[tuple[str, float], list[Span]] = {}  # recent texts -> their names

    def score(self, feats: list[str]) -> float:
        w = self.weights
        return sum(w.get(f, 0.0) for f in feats)

    def find(self, text: str) -> list[Span]:
        """Non-overlapping name spans: the best-scoring candidates that clear the threshold. Remembered for
        the last few hundred texts: a conversation's earlier turns come back with every request."""
        key = (text, self.threshold)
        found = self._found.get(key)
        if found is None:
            found = self._find(text)
            if len(text) <= 20_000:
                if len(self._found) >= 256:
                    self._found.pop(next(iter(self._found)))  # the oldest
                self._found[key] = found
        return list(found)

    def forget(self) -> None:
        """Drop the remembered texts (for timing the work itself)."""
        self._found.clear()

    def _find(self, text: str) -> list[Span]:
        scored = [
            (s, start, end) for start, end, feats in self.candidates(text)
            if (s := self.score(feats)) > self.threshold
        ]  # fmt: skip
        scored.sort(key=lambda x: (-x[0], x[1]))
        taken: list[Span] = []
        for _, start, end in scored:
            if all(end <= a or start >= b for a, b, _ in taken):
                taken.append((start, end, "PERSON"))
        return sorted(taken)

    def candidates(self, text: str) -> Iterator[tuple[int, int, list[str]]]:
        """(start, end, features) of every candidate span of `text` (find_phi's text: Traditional read as
        Simplified, case kept)."""
        if not text.isascii() and _CJK.search(text):
            yield from self._zh_candidates(text)
        yield from self._latin_candidates(text)

    # -- Latin script ---------------------------------------------------------------------------------------

    def _token(self, tok: str) -> tuple[str, str]:
        got = self._tokens.get(tok)
        if got is None:
            if len(self._tokens) > 50_000:  # user text has no bound on its words; the memo has
                self._tokens.clear()
            given, sur, syl, _, _ = _tables()
            shape = "S" if tok.lower().rstrip(".").translate(_APOS) in _STOP else _shape(tok)
            got = self._tokens[tok] = (shape, "k" if shape == "K" else _lex(tok, given, sur, syl))
        return got

    def _segments(self, text: str, base: int, run: str) -> Iterator[tuple[list[tuple[int, int, str]], list]]:
        """The tokens of a run, and their (shape, lexicon reading), split where a function word stands."""
        tokens: list[tuple[int, int, str]] = []
        info: list[tuple[str, str]] = []
        for t in _TOKEN.finditer(run):
            got = self._token(t.group())
            if got[0] == "S":
                if tokens:
                    yield tokens, info
                tokens, info = [], []
                continue
            tokens.append((base + t.start(), base + t.end(), t.group()))
            info.append(got)
        if tokens:
            yield tokens, info

    def _latin_candidates(self, text: str) -> Iterator[tuple[int, int, list[str]]]:
        memo = self._tokens
        for m in _LATIN_RUN.finditer(text):
            run = m.group()
            if " " not in run and "," not in run:  # one token, as most runs are ("I", "What", "Tylenol")
                got = memo.get(run) or self._token(run)
                if got[0] not in "SKT" and (got[1] != "0" or _cued(text, m.start())):
                    yield from self._latin_spans(text, [(m.start(), m.end(), run)], [got], [True], False)
                continue
            for tokens, info in self._segments(text, m.start(), run):
                capital = [
                    t[2] != "," and t[2][0].isupper() and i[0] not in "KT" for t, i in zip(tokens, info)
                ]
                useful = [c and i[1] != "0" for c, i in zip(capital, info)]
                if useful != capital:
                    # after a cue, or a title or kinship word in the run, any capitalised word may be a name
                    # the lexicon does not know ("Granny Edwie", "Name: Xzylo Brandt")
                    cued = _cued(text, tokens[0][0])
                    for k, t in enumerate(tokens):
                        if cued and capital[k]:
                            useful[k] = True
                        cued = cued or _CUE_CLASS.get(t[2].lower().rstrip("."), "") in ("kin", "title")
                if any(useful):
                    yield from self._latin_spans(text, tokens, info, useful, False)
        low = text.lower()
        if len(low) != len(text):
            return  # a letter whose lower case is longer ("İ"): positions would not line up
        automaton, strong, _ = _automata()
        done: set[int] = set()
        for cue, start, end in automaton.find_matches_as_indexes(low, overlapping=True):
            if end in done or (start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")):
                continue
            m = _LOWER_WORDS.match(text, end)
            if m is None:
                continue
            done.add(end)
            tokens, info = next(self._segments(text, m.start(1), m.group(1)), ([], []))
            if not tokens or tokens[0][0] != m.start(1):
                continue  # a function word first ("it's the", "i'm on")
            if strong[cue]:
                useful = [i[1] != "0" or t[2] not in self.common for t, i in zip(tokens, info)]
            else:
                useful = [i[1] not in ("0", "k") and t[2] not in self.common for t, i in zip(tokens, info)]
            if useful and useful[0]:
                yield from self._latin_spans(text, tokens, info, useful, True)

    def _latin_spans(
        self,
        text: str,
        tokens: list[tuple[int, int, str]],
        info: list[tuple[str, str]],
        useful: list[bool],
        lower: bool,
    ) -> Iterator[tuple[int, int, list[str]]]:
        """Every sub-span of a run that starts and ends on a word, holds no title and at least one useful
        token, and has at most MAX_TOKENS words (three in lower case)."""
        shapes = [i[0] for i in info]
        left: dict[int, tuple[str, str, str, str]] = {}
        right: dict[int, tuple[str, list[str]]] = {}
        for i in range(len(tokens)):
            if shapes[i] in ",KT":
                continue
            words = 0
            for j in range(i + 1, len(tokens) + 1):
                if shapes[j - 1] == "T":
                    break
                if shapes[j - 1] != ",":
                    words += 1
                if words > MAX_TOKENS or (lower and words > 3):
                    break
                if shapes[j - 1] in ",K" or not any(useful[i:j]):
                    continue
                if lower and not (useful[i] and useful[j - 1]):
                    continue  # in lower case the words around a name are lower case too: "its romeo lol"
                start, end = tokens[i][0], tokens[j - 1][1]
                if i not in left:
                    left[i] = self._left(text, start)
                if j not in right:
                    right[j] = self._right(text, end)
                n, first = words, info[i][1]
                feats = self._inside(tokens[i:j], info[i:j], lower)
                feats.append(f"first={first}")
                w1, cls, prev, two = left[i]
                feats.append(f"p={prev if not prev.isalnum() else 'w'}")
                if w1:
                    feats += [f"L1={w1}", f"L1c={cls}", f"L1c={cls}|{shapes[i]}|n={n}", f"L1c={cls}|p={prev}"]
                    if two:
                        feats.append(two)
                else:
                    feats.append("L1=^")
                if prev in "^.!?\n":
                    feats.append(f"sent|n={n}|{first}")
                q, after = right[j]
                feats += after
                # the cue before with what follows: a relative's or a title's name runs on into the sentence
                # ("Granny Qin looks after"), a capitalised word after a full stop rarely is one
                feats.append(f"LQ={cls or '^'}|{q}|n={min(n, 3)}|{'low' if lower else shapes[i]}")
                yield start, end, feats

    def _inside(
        self, toks: list[tuple[int, int, str]], info: list[tuple[str, str]], lower: bool
    ) -> list[str]:
        """The features read from the candidate itself."""
        common = self.common
        words = [(t[2], i) for t, i in zip(toks, info) if t[2] != ","]
        lex = [i[1] for _, i in words]
        n = len(words)
        feats = ["bias", f"n={n}", "shape=" + " ".join(i[0] for i in info), "lex=" + " ".join(lex)]
        feats.append(f"last={lex[-1]}")
        feats.append(f"hits={sum(x not in ('0', 'k') for x in lex)}/{n}")
        if lower:
            feats.append("lowercue")
        for k, (w, i) in enumerate(words):
            low = w.lower().rstrip(".")
            if low in common:
                feats.append(f"cw={low}")
                feats.append(f"cw_shape={i[0]}")
                feats.append(f"cw_at={'first' if k == 0 else 'last' if k == n - 1 else 'mid'}|n={n}")
            if low in _PLACE_WORDS:
                feats.append("place")
            if lex[k] == "0" and len(low) > 3:  # "speaking", "tomorrow": word endings names rarely have
                feats.append(f"suf={low[-3:]}")
        return feats

    def _left(self, text: str, start: int) -> tuple[str, str, str, str]:
        """(the word before, its cue class, the character before, the two words before as a feature)."""
        lo = max(0, start - 40)
        k = start
        while k > lo and text[k - 1] in " \t":
            k -= 1
        prev = text[k - 1] if k > lo else "^"
        if prev not in ":：" and ("\t" in text[k:start] or start - k >= 2):
            prev = "\t"  # a field separator
        at, w1, _ = _word_before(text, start, lo)
        if not w1:
            return "", "", prev, ""
        cls = _CUE_CLASS.get(w1, "cw" if w1 in self.common else "other")
        w2 = _word_before(text, at, lo)[1]
        return w1, cls, prev, f"L2={w2} {w1}" if w2 else ""

    def _right(self, text: str, end: int) -> tuple[str, list[str]]:
        k = end
        while k < len(text) and k - end < 30 and text[k] in " \t":
            k += 1
        nxt = text[k] if k < len(text) and k - end < 30 else "$"
        # two spaces or a tab end a form's field as a newline does ("Full name: Grant Jones    Phone:")
        q = "\t" if "\t" in text[end:k] or k - end >= 2 else nxt if not nxt.isalnum() else "w"
        feats = [f"q={q}"]
        r1 = _word_after(text, end)
        if r1:
            cls = _CUE_CLASS.get(r1, "cw" if r1 in self.common else "other")
            feats += [f"R1={r1}", f"R1c={cls}|q={q}"]
        if text.startswith(("'s", "’s"), end):
            feats.append("R=poss")
        return q, feats

    # -- Chinese --------------------------------------------------------------------------------------------

    def _zh_candidates(self, text: str) -> Iterator[tuple[int, int, list[str]]]:
        _, _, _, ranks, given_chars = _tables()
        n = len(text)
        seen: set[tuple[int, int]] = set()

        def surname_at(i: int) -> int:
            return 2 if text[i : i + 2] in _COMPOUND else 1 if text[i] in ranks else 0

        def plausible(i: int, end: int, sur: int) -> bool:
            """Without a strong cue, the given name must be made of name characters ("普通" is no name)."""
            return all(c in given_chars for c in text[i + sur : end])

        # left cues: where each ends (after separators and 叫), the cue it ends; right cues: where they start
        cue_at: dict[int, str] = {}
        right_at: list[int] = []
        for k, start, end in _automata()[2].find_matches_as_indexes(text, overlapping=True):
            cue = _ZH_CUES[k]
            if cue in _ZH_RIGHT_CLASS:
                right_at.append(start)
            if cue not in _ZH_LEFT_SET:
                continue
            p = end
            while p < n and text[p] in _ZH_SEPARATORS:
                p += 1
            if p < n and text[p] in "叫名":  # "我妈叫李秀英", "名叫", "叫做"
                called = next((c for c in _ZH_CALLED if text.startswith(c, p)), "")
                p, cue = p + len(called), "叫" if called else cue
            if p < n and (text[p] in ranks or text[p : p + 2] in _COMPOUND):
                if p not in cue_at or len(cue) >= len(cue_at[p]):
                    cue_at[p] = cue
        for i in sorted(cue_at):
            sur = surname_at(i)
            weak = cue_at[i] in _ZH_WEAK_LEFT
            for extra in (1, 2) if sur else ():
                end = i + sur + extra
                if end <= n and _CJK_RUN.fullmatch(text, i, end) and (not weak or plausible(i, end, sur)):
                    seen.add((i, end))
                    yield i, end, self._zh_features(text, i, end, sur, "L", cue_at)
        # right cues: a title or relation after the name (any given name), punctuation or the end of the text
        # (a plausible one); the regex finds the first surname character of the last four before punctuation
        ends = [(end, True) for end in right_at]
        ends += [(m.end(), False) for m in _zh_tail().finditer(text)]
        for end, strong in ends:
            for size in (4, 3, 2):
                i = end - size
                if i < 0 or (i, end) in seen or not _CJK_RUN.fullmatch(text, i, end):
                    continue
                sur = surname_at(i)
                if sur and 1 <= size - sur <= 2 and (strong or plausible(i, end, sur)):
                    seen.add((i, end))
                    yield i, end, self._zh_features(text, i, end, sur, "R", cue_at)
        for m in _ZH_LINE.finditer(text):
            i, end = m.span(1)
            sur = surname_at(i)
            if sur and 1 <= end - i - sur <= 2 and (i, end) not in seen and plausible(i, end, sur):
                seen.add((i, end))
                yield i, end, self._zh_features(text, i, end, sur, "line", cue_at)

    def _zh_features(
        self, text: str, start: int, end: int, sur_len: int, cue: str, cue_at: dict[int, str]
    ) -> list[str]:
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
        return feats


def candidates(text: str, common: frozenset[str]) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, features) of every candidate span of `text` (for training: no weights needed)."""
    return NameModel({}, 0.0, common).candidates(text)


@cache
def load() -> NameModel:
    """The shipped model (package data next to this module), read at first use."""
    raw = json.loads(resources.files(__package__).joinpath(WEIGHTS_FILE).read_text(encoding="utf-8"))
    if raw.get("format") != FORMAT:
        raise RuntimeError(f"{WEIGHTS_FILE}: not a {FORMAT} file")
    return NameModel(raw["weights"], float(raw["threshold"]), frozenset(raw["common_words"]))
