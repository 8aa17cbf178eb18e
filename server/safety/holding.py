"""What the output guard must hold back: only text that could still become a match.

The guard releases a streamed answer token by token, except for a stretch at its end that a later token
could still turn into something the guard must cut:
- an identifier in the making: the word still being written (it may grow into an e-mail or an id), and
  before it a run of words that each could be part of an identifier or a name (digits, capitalised
  words: "415 555 01", "Dr. Jane Sm", "12 Main St"), held until an ordinary word follows;
- in Chinese, a clause that holds a PHI cue (患者, 电话, 路, 号, a digit...) until the clause ends (a name,
  a phone number or an address is written inside one clause);
- a sentence that already holds a self-harm method cue ("lethal", "致死量", "noose", "painless"), until the
  sentence ends; after a crisis message also a sentence with a dose ("40 tablets", "30片"), since "would be
  enough to kill" comes after the number;
- a placeholder being written ("[PHONE_" before its "]"), so it is restored whole;
- trailing spaces, which belong to whatever follows.
Everything else goes out at once. The hold never exceeds the policy's `hold_back_chars`: past it the oldest
text is released (never in the middle of a word).
"""

from __future__ import annotations

import re

from server.safety.lexicon import latin_names
from server.safety.phi.names import SURNAMES

_WORD = re.compile(r"\S+")
_LATIN_END = re.compile(r"[A-Za-z0-9@._%+\-]+$")
_ADDRESS_CHAR = re.compile(r"[@._%+\-/:]")
_ALNUM = re.compile(r"[A-Za-z0-9]")
_ADDRESS_CUE = re.compile(r"(?i)\b(?:e-?mail|mail|write to|contact|reach|address|at)\b|邮箱|邮件|电邮")
_UPPER = re.compile(r"^[(\[\"'“‘]?(?:[A-ZÀ-ÖØ-Þ]|https?:|www\.)")
# a word that could be part of an identifier or a name: a digit, an @, a capital letter or a web address
_IDENTISH = re.compile(r"\d|@")
# the last clause or sentence end in a text: the greedy (?s:.*) finds it from the right, in time proportional
# to the distance from the end (an answer's context is read again with every token)
_LAST_CLAUSE_END = re.compile(r"(?s:.*)(?:[。！？；，、：\n!?;,]|[.:](?=\s))")
_SENTENCE_END = re.compile(r"[。！？!?\n]|[.;:](?=\s)")
_LAST_SENTENCE_END = re.compile(r"(?s:.*)(?:[。！？!?\n]|[.;:](?=\s))")
_CJK = re.compile("[\u4e00-\u9fff]")
# method cues that open a sentence the answers' method rules could still complete
_METHOD_CUES = re.compile(
    r"\b(?:lethal|fatal|deadly|overdos\w*|noose|ligature|painless|wrists?)\b"
    r"|\b(?:kill|hang|poison|suffocate|drown|shoot)\w* (?:yourself|oneself)\b"
    r"|致死|上吊|割腕|烧炭|跳楼|自杀|无痛|不痛苦"
)
# after a crisis message, a dose or a step also opens such a sentence ("40 tablets would be enough to...")
_DOSE_CUES = re.compile(
    r"\d+(?:\.\d+)?\s*(?:mg|g|grams?|milligrams?|tablets?|pills?|capsules?)\b|\bstep \d|\d+\s*(?:片|粒|颗"
    r"|毫克|克)"
)
_PLACEHOLDER_REACH = 32  # longest placeholder the guard restores ("[HEALTH_PLAN_12]" and room to spare)
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9@._%+\-/:#\[\]()]")


# Chinese words after which a name, an address or an identifier is written in the same clause: relations and
# form fields (a name follows), place words (an address is gathered around them), identifier words (a number
# follows). Digits alone are held by identifier_tail; place characters too common to hold on (道, as in 知道)
# are left out.
_ZH_CUES = re.compile(
    "患者|病人|病患|患儿|伤者|姓名|名字|我叫|他叫|她叫|名叫|叫做|本人|先生|女士|小姐|老公|老婆|丈夫|妻子|爱人|"
    "爸爸|妈妈|父亲|母亲|儿子|女儿|爷爷|奶奶|外公|外婆|姥姥|姥爷|哥哥|姐姐|弟弟|妹妹|孙子|孙女|家属|朋友|同事|"
    "邻居|室友|我妈|我爸|舅舅|姑姑|阿姨|叔叔|收件人|联系人|监护人|开户人|户名|"
    "地址|住址|住在|家住|省|市|区|县|镇|乡|村|路|街|巷|弄|胡同|号楼|栋|幢|单元|小区|花园|大厦|公寓|"
    "身份证|身分证|证件|电话|手机|座机|传真|微信|邮箱|病历|住院号|门诊号|医保|社保|保单|账号|账户|卡号|车牌|"
    "出生|生日|入院|出院|就诊|"
    # a name written before what makes it one: "我是赵敏的家属", "我隔壁的王桂兰阿姨"
    "我是|我们是|作为|隔壁|楼上|楼下|对门|同村"
)
# a nickname that a full name in brackets may follow: "老周（周德明）"
_ZH_NICKNAME = re.compile(f"[老小][{SURNAMES}](?:[（(][\u4e00-\u9fff]{{0,3}})?$")
# a date or an age being written ("3月", "1985年3", "92"): held until it can no longer grow
_ZH_DATE_TAIL = re.compile(r"(?:\d+\s*[年月]\s*)+\d*$")


def identifier_tail(buf: str, context: str = "") -> int:
    """Where the run of identifier-like words at the end of `buf` starts (len(buf): there is none).
    `context`: the text released just before `buf`."""
    cjk = max((m.end() for m in _CJK.finditer(buf, max(0, len(buf) - 80))), default=0)
    words = list(_WORD.finditer(buf, cjk))  # Chinese text before them is chinese_clause's to judge
    if not words:
        return len(buf)
    last = words[-1]
    still_open = last.end() == len(buf)
    if not still_open and last.group()[-1] in ".!?。！？":
        return len(buf)  # the sentence ended: no identifier or name runs on past its full stop
    if not _identish(last.group(), _opens_sentence(context + buf[: last.start()])):
        # an ordinary word still being written may yet become an address ("john" + ".doe@x.org"): held when it
        # already holds an address character, or an address is being given ("email", "write to", 邮箱);
        # otherwise it goes out, so a word streamed in sub-word tokens is not held to its end
        word = last.group()
        looks_like_address = _ALNUM.search(word) is not None and _ADDRESS_CHAR.search(word) is not None
        before = words[-2].group() if len(words) > 1 else ""
        if still_open and _IDENTISH.search(before) and before[-1] not in ".!?。！？":
            # a number's meaning can hang on the word after it ("9/2 and" is a date, "1/2 a tablet" is not)
            return _run_start(buf, words[:-1], context)
        if not still_open or not (looks_like_address or _ADDRESS_CUE.search((context + buf)[-60:])):
            return len(buf)
        latin = _LATIN_END.search(last.group())
        return last.start() + latin.start() if latin else len(buf)
    return _run_start(buf, words, context)


def _run_start(buf: str, words: list[re.Match[str]], context: str = "") -> int:
    """Start of the run of identifier-like words ending with the last of `words` (`context`: the text
    released before `buf`, which says whether a word at the start of `buf` opens a sentence)."""
    start = words[-1].start()
    for word in reversed(words[:-1]):
        text = word.group()
        opens = _opens_sentence(context + buf[: word.start()])
        if (
            not _identish(text, opens)
            or text[-1] in ".!?。！？"
            or _SENTENCE_END.search(buf, word.end(), start)
        ):
            break
        start = word.start()
    return start


# a full name is also found by what follows it ("Beatrice Nwosu, date of birth ...", "Erik Hansen born 1961"):
# after two or three capitalised words, text that may still become such a cue keeps the name held
_NAME_THEN = re.compile(r"(?:[A-Z][a-z'’-]+[ \t]+){1,2}[A-Z][a-z'’-]+(?P<after>,?[ \t]*[A-Za-z. ]{0,14})$")
_NAME_CUES = ("dob", "d.o.b", "born", "mrn", "date of birth", "aged", "ages", "age ")


def name_before_cue(buf: str) -> int:
    """Start of a full name at the end of `buf` whose following words may still become "born", "DOB",
    "MRN", "date of birth" or "aged" (len(buf) when there is none)."""
    m = _NAME_THEN.search(buf)
    if m is None:
        return len(buf)
    after = m.group("after").lstrip(", \t").lower()
    could_be = any(cue.startswith(after) and cue != after for cue in _NAME_CUES)
    return m.start() if could_be else len(buf)


def _identish(word: str, opens_sentence: bool = False) -> bool:
    """A word that may be part of an identifier or a name: a digit, an @, a web address, or a capital
    letter. A capitalised word that opens a sentence is one only when it may be a name (Faker's name lists:
    "Iron", "Statins", "Readings" open sentences all the time; "Beatrice" may be a patient)."""
    if _IDENTISH.search(word) is not None:
        return True
    if _UPPER.match(word) is None:
        return False
    if not opens_sentence or not word[:1].isalpha():
        return True
    # (a word still being written counts only when it is a name already: holding every prefix of a name
    # would hold "A", "For" and "To" at the start of nearly every answer)
    return word.rstrip(",;:'’").lower() in latin_names()


def _opens_sentence(before: str) -> bool:
    """Whether a word after `before` starts a sentence (or the answer)."""
    before = before.rstrip(" \t")
    return not before or before[-1] in ".!?。！？\n"


def chinese_clause(buf: str, context: str = "") -> int:
    """Start (in `buf`) of the last clause when it is Chinese and holds a PHI cue, counting the part of it
    already released in `context` (len(buf): nothing held)."""
    text = context + buf
    if text.isascii():
        return len(buf)
    m = _LAST_CLAUSE_END.match(text)
    start = m.end() if m else 0
    if start == len(text) or not _CJK.search(text, start):
        return len(buf)
    if _ZH_CUES.search(text, start):
        return max(0, start - len(context))
    tail = _ZH_DATE_TAIL.search(text, start) or _ZH_NICKNAME.search(text, start)
    return max(0, tail.start() - len(context)) if tail else len(buf)


def method_sentence(context: str, buf: str, doses: bool) -> int:
    """Start (in `buf`) of the last, unfinished sentence when it holds a method cue, counting the part of it
    already released in `context`; len(buf) when there is none."""
    text = context + buf
    m = _LAST_SENTENCE_END.match(text)
    start = m.end() if m else 0
    cues = _METHOD_CUES.search(text, start) or (_DOSE_CUES.search(text, start) if doses else None)
    if cues is None:
        return len(buf)
    return max(0, start - len(context))


def open_placeholder(buf: str) -> int:
    """Start of a "[..." at the end of `buf` that is not closed yet (len(buf) when there is none)."""
    at = buf.rfind("[")
    if at == -1 or "]" in buf[at:] or len(buf) - at >= _PLACEHOLDER_REACH:
        return len(buf)
    return at


def bounded(buf: str, cut: int, window: int, tail: int) -> int:
    """Raise `cut` so that no more than `window` characters stay held, without splitting a word (a single
    huge token is cut anyway, to bound the memory one stream holds)."""
    if len(buf) - cut <= window:
        return cut
    forced = len(buf) - tail
    while (
        forced > cut and forced > 0 and _TOKEN_CHAR.match(buf[forced - 1]) and _TOKEN_CHAR.match(buf[forced])
    ):
        forced -= 1
    if forced <= cut and len(buf) - cut > 4 * window:
        forced = len(buf) - tail
    return max(cut, forced)
