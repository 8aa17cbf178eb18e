"""Person names, found only in context: a title, "my name is", a relative, 患者/病人 + name, a common
first name followed by a surname. That is what keeps eponymous diseases (Parkinson's, Hashimoto) out."""

from __future__ import annotations

import re
from collections.abc import Iterator

from server.safety.gate import GatedPattern, Hits, required_literals
from server.safety.phi import zh_words
from server.safety.phi.common import I, run, rx
from server.safety.verdict import Span

# a capitalised name word, Latin-1 letters included ("Inês", "Müller", "Núñez"), with a capital inside
# ("McAllister", "MacDonald", "DeSouza": read to its end, not cut at "Mc"), double-barrelled or a hyphenated
# Cantonese given name ("Tai-man")
_UP, _LOW = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
_CAP = rf"(?:O['’])?[{_UP}][{_LOW}]+(?:[{_UP}][{_LOW}]+)?(?:-[{_UP}{_LOW}][{_LOW}]+)?"
# a full name with an optional middle initial: "Roberta Q. Nakamura"
_FULL_NAME = rf"{_CAP}(?:\s+[A-Z]\.)?(?:\s+{_CAP}){{0,2}}"
_RELATIVES = (
    r"son|daughter|wife|husband|mother|father|mom|mum|dad|brother|sister|friend|grandma|grandpa|"
    r"grandmother|grandfather|grandson|granddaughter|partner|boyfriend|girlfriend|child|kid|baby|"
    r"nephew|niece|aunt|uncle|cousin|fianc[eé]e?|neighbou?r|roommate|colleague|boss|coworker|stepson"
    r"|stepdaughter"
)
# gate for "my <relative> <name>": the pair, not the relative word alone ("son" is in "reason", "baby" in
# every paediatric question)
_MY_RELATIVE = frozenset(f"my {r}" for r in required_literals(f"(?:{_RELATIVES})") or ())
_THEIR_RELATIVE = frozenset(
    f"{d} {r}" for d in ("our", "his", "her", "their") for r in required_literals(f"(?:{_RELATIVES})") or ()
)
# lower-case particles inside a name ("van der Berg", "bin Ismail", "Al-Mansouri" is capitalised); records.py
# reads the same set
NAME_PARTICLES = frozenset(
    {"van", "der", "den", "de", "da", "di", "del", "la", "le", "von", "bin", "binti", "bint", "al"}
)
_PARTICLES = "(?-i:" + "|".join(sorted(NAME_PARTICLES, key=len, reverse=True)) + ")"
# gate for a relative or contact label followed by a full name: the word where a word starts, then a space or
# colon
_REL_LABEL_GATE = frozenset(
    f"{edge}{r}{after}"
    for r in (
        *(required_literals(f"(?:{_RELATIVES})") or ()),
        "next of kin",
        "emergency contact",
        "contact person",
        "guardian",
        "caregiver",
    )
    for edge in " \n("
    for after in (" ", ":", ",")
)
_NAME_RES: list[tuple[GatedPattern, int]] = [
    (
        rx(
            window=60,
            pattern=rf"(?i:\b(?:my name is|my name's|name\s*:|patient name\s*:?|full name\s*:?|call me"
            rf"|signed,?|sincerely,?|regards,?)\s+)({_CAP}(?:\s+{_CAP}){{0,2}})",
        ),
        1,
    ),
    # "pt" alone is inside "symptoms" and "prompt": gate on the forms that can introduce a name
    (
        rx(
            window=60,
            literals=frozenset({"i am ", "i'm ", "this is ", "it's ", "pt:", "pt :", "patient"}),
            prefix=True,
            pattern=rf"(?i:\b(?:i am|i'm|this is|it's|pt\s*:|patient\s*:?)\s+)({_CAP}(?:\s+{_CAP}){{1,2}})",
        ),
        1,
    ),
    (
        rx(
            window=60,
            pattern=rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Mister)\.?\s+({_CAP}(?:(?:\s+{_PARTICLES})*\s+{_CAP}){{0,2}})",
        ),
        1,
    ),
    # a relative's name written in lower case, and nicknames: "her name's beatrice kowalski", "goes by Tommy"
    (
        rx(
            window=60,
            pattern=r"(?i:\b(?:her|his|their|my \w+'s) name(?:'s| "
            r"is)\s+)([a-z][a-z'-]+(?:\s+[a-z][a-z'-]+){0,2})",
        ),
        1,
    ),
    (
        rx(
            window=60,
            pattern=rf"(?i:\b(?:goes by|known as|nicknamed|we call (?:him|her)|"
            rf"(?:everyone|everybody|we all|they all|people|friends|family)\s+calls?\s+(?:him|her|me"
            rf"|them))\s+)({_CAP})",
        ),
        1,
    ),
    # the name on a document or the legal one: "Name as on passport: Anneliese Vogt", "her legal name is
    # Roberta Q. Nakamura"
    (
        rx(
            window=80,
            literals=frozenset(
                (
                    "name as",
                    "name on",
                    "legal name",
                    "maiden name",
                    "birth name",
                    "real name",
                    "given name",
                    "registered name",
                    "full name",
                    "name in full",
                )
            ),
            prefix=True,
            pattern=r"(?i:\b(?:name\s+(?:as\s+(?:on|in|per|shown\s+on)|on)\s+(?:the\s+|my\s+|his\s+|her\s+"
            r"|their\s+)?"
            r"(?:passport|id|id card|card|record|form|insurance card|licen[cs]e|certificate)|name\s+in\s+full"
            r"|"
            r"(?:legal|full|maiden|birth|real|given|registered)\s+name)(?:\s+(?:is|was)|\s*:)\s+)"
            rf"({_FULL_NAME})",
        ),
        1,
    ),
    # a report header's "Patient: HOLLOWAY, Graham P." (SURNAME, Given M.)
    (
        rx(
            window=60,
            literals=frozenset(("patient:", "patient :", "pt:", "pt :", "name:", "name :", "surname:")),
            pattern=rf"(?i:\b(?:patient(?:\s+name)?|pt|name|surname)\s*:[ \t]*)([{_UP}][{_UP}'’-]+,"
            rf"[ \t]*{_CAP}(?:[ \t]+[A-Z]\.?(?![{_LOW}]))?)",
        ),
        1,
    ),
    (rx(window=60, pattern=rf"(?i:\b(?:hey|hi|hello),? (?:it's|it is|this is)\s+)({_CAP})\b"), 1),
    (
        rx(
            window=60,
            literals=_MY_RELATIVE,
            prefix=True,
            pattern=rf"(?i:\bmy\s+(?:{_RELATIVES})(?:'s)?,?\s+)({_CAP}(?:\s+{_CAP})?)",
        ),
        1,
    ),
    (
        rx(
            window=60,
            pattern=rf"\b({_CAP}\s+{_CAP}),?\s+(?i:dob|d\.o\.b|born|mrn|date of birth|age[ds]?\s+\d)",
        ),
        1,
    ),
]
# read on the input rails only (phi/__init__.py _INPUT_FINDERS): names known by what follows them, which a
# streamed answer has not sent yet when the guard must release the name
_RELATION_NAME_RES: list[tuple[GatedPattern, int]] = [
    # "our son Daan van der Berg", "her husband Omar Al-Mansouri": other determiners, name particles
    (
        rx(
            window=80,
            literals=_THEIR_RELATIVE,
            prefix=True,
            pattern=rf"(?i:\b(?:our|his|her|their)\s+(?:{_RELATIVES})(?:'s)?,?\s+)"
            rf"({_CAP}(?:\s+(?:{_PARTICLES})\s+{_CAP}|(?:\s+(?:{_PARTICLES}))*\s+{_CAP})?)",
        ),
        1,
    ),
    # a relative named by a given name alone in a handoff or a note, known by what follows: "Wife Fatimah is
    # NOK", "Daughter Eleni asks", "sister Meena is NOK (+44 ...)"
    (
        rx(
            window=60,
            literals=_REL_LABEL_GATE,
            prefix=True,
            pattern=rf"(?i:\b(?:{_RELATIVES})\s+)({_CAP})(?=\s+(?:is\s+(?:the\s+)?(?:NOK|next\s+of\s+kin|contact)"
            r"|asks|requests|wants|rang|phoned|called|will\s+(?:collect|visit|call)|\())",
        ),
        1,
    ),
]
# a relative or contact named in full without "my", as in a handoff or a form: "Daughter Claire Pennington is
# the contact", "wife: Mary Jones", "next of kin Rosa Diaz" (two capitalised words; a title such as Dr. is no
# name). Relative words are common, so the regex is only matched where a gate literal starts (like
# _LOCAL_PHONE_AT), never searched over windows
_REL_LABEL_PAT = (
    rf"(?i:(?:{_RELATIVES}|next of kin|emergency contact|contact person|guardian|caregiver))"
    rf"\s*[:,-]?\s+({_CAP}\s+{_CAP})\b"
)
_REL_LABEL = rx(_REL_LABEL_PAT, literals=_REL_LABEL_GATE, prefix=True, window=60)
_REL_LABEL_AT = re.compile(_REL_LABEL_PAT)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FIRST_NAMES = _words("""
james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony
mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan
jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander
frank patrick raymond jack dennis jerry tyler aaron jose adam nathan henry douglas zachary peter kyle
noah ethan jeremy walter christian keith roger terry austin sean gerald carl harold dylan arthur lawrence
jordan jesse bryan billy bruce gabriel joe logan alan juan albert willie elijah wayne randy vincent mason
roy ralph bobby russell bradley philip eugene liam lucas oliver leo owen luke isaac carlos luis miguel
wei ming tom mike chris dan steve bob jim ben sam alex mary patricia jennifer linda elizabeth barbara
susan jessica sarah karen lisa nancy betty sandra margaret ashley kimberly emily donna michelle carol
amanda melissa deborah stephanie dorothy rebecca sharon laura cynthia amy kathleen angela shirley brenda
emma anna pamela nicole samantha katherine christine helen debra rachel carolyn janet maria catherine
heather diane olivia julie joyce victoria ruth virginia lauren kelly christina joan evelyn judith andrea
hannah megan cheryl jacqueline martha madison teresa gloria sara janice ann kathryn abigail sophia
frances jean alice judy isabella julia grace amber denise danielle marilyn beverly charlotte natalie
theresa diana brittany doris kayla alexis lori marie mia ava chloe zoe lily ella sophie jane kate lucy
rose sue meg rosa carmen lucia ana sofia elena isabel pedro diego antonio manuel francisco javier jorge
ricardo fernando alejandro raul ramon rafael sergio andres eduardo roberto mario hector oscar ruben
alberto marta yolanda veronica adriana beatriz mohammed ahmed fatima aisha priya raj anil sunita
""")
# two capitalised words starting at a common first name; the name list is the gate and is checked in code (a
# 340-way alternation tried at every position cost five times more). Only the first word is consumed, so that
# "The James Smith" still finds "James Smith" after rejecting "The James".
_TWO_CAPS = rx(
    rf"\b([A-Z][a-z]+)(?=\s+({_CAP})\b)",
    literals=frozenset(f"{n} " for n in _FIRST_NAMES),
    window=40,
    prefix=True,
)
# a relative's name typed in lower case, "my grandma rosa delgado was admitted": a known first name (not one
# that is also a common word: "my mom rose early"), then a surname only when a verb or punctuation follows it
_LOWER_FIRST = _FIRST_NAMES - _words(
    "mark rose grace frank jack bob sue amber lily will joy hope may june ray"
)
_REL_LOWER = rx(
    rf"(?i:\bmy\s+(?:{_RELATIVES})(?:'s)?,?\s+)((?-i:{'|'.join(sorted(_LOWER_FIRST))}))\b"
    r"((?-i:\s+(?!(?:is|was|has|had|and|who|got|gets|just|went|needs|keeps|can|will|would|did|does|says|said"
    r"|also|"
    r"still|fell|came|lives|turned|died|passed|with|from|in|on|at|to|for|the|a|an)\b)[a-z][a-z'-]+)"
    r"(?=\s*(?:[,.;:!?()]|$|(?:was|is|has|had|who|got|just|went|needs|passed|died|fell|lives|and)\b)))?",
    literals=_MY_RELATIVE,
    prefix=True,
    window=80,
)
_NOT_NAMES = _words("""
parkinson parkinsons hashimoto hashimotos crohn crohns alzheimer alzheimers graves addison addisons
cushing cushings hodgkin hodgkins bell bells tourette tourettes down raynaud raynauds sjogren sjogrens
kawasaki guillain barre huntington huntingtons wilson wilsons paget pagets bright lyme asperger aspergers
reye meniere menieres the and but not just very so my his her our their your this that what when where
how why who which a an i im dr doctor nurse monday tuesday wednesday thursday friday saturday sunday
january february march april may june july august september october november december mondays tuesdays
wednesdays thursdays fridays saturdays sundays god jesus covid ok
okay hi hello dear thanks thank please pregnant diabetic fine sorry worried scared tired afraid sure here
there also still only new type stage reception team staff office admin clinic pharmacy support desk
surgery practice hospital infirmary medical health centre center university college school church
facebook instagram twitter whatsapp tiktok youtube google reddit linkedin wechat
""")

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤"
    "庞樊兰殷施陈倪严牛温芦季俞章鲁葛伍申尤毕聂焦向柳邢岳齐沿梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关苗凌费"
    "纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁隋植甘景薄单包司柏宁柯阮桂闵"
)
_COMPOUND_SURNAMES = "欧阳|司马|上官|诸葛|东方|皇甫|尉迟|公孙|慕容|长孙|宇文|司徒|令狐|夏侯|轩辕"
_COMPOUND_SET = frozenset(_COMPOUND_SURNAMES.split("|"))
ZH_TRIGGER = (
    r"(?:患者|病人|病患|患儿|伤者|产妇|孕妇|家属|姓名|我叫|我的名字是|名字叫|名叫|叫做|本人|老公|老婆|丈夫"
    r"|妻子|爱人|"
    r"爸爸|妈妈|父亲|母亲|儿子|女儿|爷爷|奶奶|外公|外婆|姥姥|姥爷|哥哥|姐姐|弟弟|妹妹|孙子|孙女|朋友|同事"
    r"|室友|邻居|先生|"
    r"我妈|我爸|我哥|我姐|我弟|我妹|老妈|老爸|我婆婆|我公公|"
    # uncles, aunts, in-laws and cousins; Cantonese and Taiwanese forms (the text is read as Simplified)
    r"舅舅|舅妈|姑姑|姑妈|姑父|姨妈|小姨|姨父|叔叔|婶婶|伯伯|伯父|伯母|阿公|阿嬷|阿嫲|阿婆|阿爷|岳父|岳母|"
    r"嫂子|姐夫|表哥|表姐|表弟|表妹|堂哥|堂姐|堂弟|堂妹|侄子|侄女|外甥|外甥女|外孙|外孙女|老豆|阿爸|阿妈"
    r"|细佬|家姐|阿母|阿爸|阿姆|阿嬷|"
    # account holders and payees: "开户人：孙浩然", "户名 孙浩然"
    r"开户人|户名|持卡人|收款人|账户名|"
    # "他叫李建国", and the name fields of forms and parcels ("收件人陈志刚", "紧急联系人：王芳")
    r"他叫|她叫|收件人|收货人|寄件人|联系人|监护人|委托人|申请人|就诊人|受检人|被保险人|投保人)"
)
_ZH_SURNAMED = rf"((?:{_COMPOUND_SURNAMES}|[{SURNAMES}])[\u4e00-\u9fa5]{{1,2}})"
# "我妈叫李秀英": the relative, then 叫 / 名叫 / 叫做, then the name
# (or the name in brackets after the relative: "妈妈（孙桂芳）")
_ZH_NAME = rx(ZH_TRIGGER + r"[\s:：，,（(]*(?:叫|名叫|叫做)?" + _ZH_SURNAMED)
# a surname and a title is a clinician, never a patient's name ("他叫王医生来看", "联系人张主任")
_ZH_TITLE = re.compile(r"(?:医生|大夫|护士|主任|教授|院长|医师|药师|老师)")
# a neighbour named with a kinship title: "我隔壁的王桂兰阿姨", "楼下的李建国大爷"; the full name is required
# ("张阿姨" is a surname and a title)
_ZH_NEIGHBOUR = rx(
    r"(?:隔壁|邻居|楼上|楼下|对门|同村)(?:家)?的?"
    + _ZH_SURNAMED
    + r"(?=阿姨|叔叔|奶奶|爷爷|大爷|大妈|大娘|大婶|婆婆|伯伯|阿婆|阿伯|大姐|大哥|老师傅|老人家|老太太|老先生)"
)
# a familiar name on a compound surname (老诸葛, 小欧阳); not 东方 (小东方 reads as a place or a brand)
_ZH_FAMILIAR_COMPOUND = rx(
    "[老小](?:" + "|".join(s for s in _COMPOUND_SURNAMES.split("|") if s != "东方") + ")",
    literals=frozenset("老小"),
)
# "老周（周德明）", "俞老伯（俞金根，1935年生）": a 老/小 nickname, or a surname and a kinship title, with the
# full name in brackets (both are identifying)
_ZH_NICK_FULL = rx(rf"((?:老|小)[{SURNAMES}])[（(]{_ZH_SURNAMED}[）)]", literals=frozenset("（("))
# (a surname and a kinship title: read on the input rails only, where the whole message is there; an answer
# streamed to the guard has not yet sent what closes the name)
_ZH_KIN_FULL = rx(
    rf"([{SURNAMES}](?:老伯|老伯伯|阿伯|阿婆|老太|大爷|大妈|阿姨|叔))[（(]{_ZH_SURNAMED}[）)，,]",
    literals=frozenset("（("),
)
# a foreign name transliterated into characters, its parts joined by an interpunct ("萨米拉·阿里",
# "穆罕默德·拉希德", "伊万•彼得罗夫"): the characters Chinese uses for foreign sounds, so that the words
# before the name stay out of it ("其家属萨米拉·阿里女士"); a book or film title in 《》 is no person
_TRANSLIT = (
    "阿艾爱安奥巴拜班邦鲍贝本比彼毕波伯博布卜查达黛丹道德迪蒂丁东杜多厄恩法菲费芬弗福盖甘戈格古哈海汉豪赫亨"
    "胡华霍基吉加贾杰金卡凯坎康柯科克肯库拉莱兰朗劳勒雷蕾里利莉丽林琳娄卢鲁路伦罗洛玛马麦曼梅蒙米敏莫默姆穆"
    "纳娜奈内尼妮宁努诺欧帕派潘佩皮普齐奇乔琼丘萨塞桑瑟森沙莎珊舍什史斯索塔泰汤唐特提汀图托瓦万威韦维温沃乌"
    "西希夏谢辛休雅亚扬耶伊因英尤约泽扎詹芝兹佐祖嘉茜娅薇尔丝芙蓓赛易欣依热木江买合罕夫得列捷琴契娃琪何"
)
_ZH_DOT_NAME = rx(
    rf"(?<![《{_TRANSLIT}])[{_TRANSLIT}]{{1,5}}(?:[·•‧・][{_TRANSLIT}]{{1,6}}){{1,3}}(?![》{_TRANSLIT}·•‧・])",
    literals=frozenset("·•‧・"),
    window=40,
)
# famous bearers of transliterated names that medical and everyday text cites (弗洛伦斯·南丁格尔)
_FAMOUS_TRANSLIT = frozenset(
    "南丁格尔 希波克拉底 弗洛伊德 巴甫洛夫 爱因斯坦 居里 弗莱明 巴斯德 达尔文 牛顿 霍金 托尔斯泰 莎士比亚"
    " 贝多芬 莫扎特 梵高 诺贝尔 乔布斯 盖茨 马斯克 特朗普 拜登 奥巴马 普京 曼德拉 甘地 马克思".split()
)
# "我是赵敏的家属": the name comes before the relation
_ZH_NAME_BEFORE = rx(
    r"(?:我是|我们是|作为|是)"
    + _ZH_SURNAMED
    + r"的(?:家属|家人|妈妈|母亲|爸爸|父亲|儿子|女儿|丈夫|妻子|爱人|老公|老婆|监护人|陪护)"
)
# characters that end a name rather than belong to it (the next word has begun)
_ZH_STOP = frozenset(
    "今因于在的是有男女年岁说患诉主自入出需手电身住病来去和与及等也都很就才又还已被将要想会能让给从向对近突无昨前后这那个了吗呢吧啊，"
)
_ZH_NOT_NAMES = frozenset(
    (
        "高血",
        "高烧",
        "高热",
        "高压",
        "高龄",
        "黄疸",
        "白细",
        "白血",
        "白天",
        "马上",
        "何时",
        "方便",
        "常规",
        "常常",
        "夏天",
        "石膏",
        "金黄",
        "毛囊",
        "任何",
        "许多",
        "许久",
        "周围",
        "周身",
        "周前",
        "周后",
        "陈旧",
        "成人",
        "田间",
        "江湖",
        "曾经",
        "史上",
        "龙头",
        "时候",
        "时间",
        "单位",
        "包括",
        "齐全",
        "关节",
        "管理",
        "路上",
        "申请",
        "程度",
        "宁可",
        "景象",
        "甘油",
        "万一",
        "严重",
        "于是",
        "向来",
        "朱砂",
        "孔洞",
        "左侧",
        "左边",
        "左手",
        "左腿",
        "左眼",
        "柏油",
        "谷丙",
        "谷草",
        "牛奶",
        "牛肉",
        "章节",
        "包皮",
        "苗条",
        "齐刷",
        "温度",
        "温水",
        "舒服",
        "季节",
        "成年",
        "游泳",
        "阳性",
        "卫生",
        "屈光",
        "查出",
        "查体",
        "单侧",
        "司机",
        "平时",
        "钱包",
        "项目",
        "曲线",
        "能力",
    )
)
# weekdays (周六早上: 周 is a surname) and Cantonese everyday words that start with a surname (成日, "all the
# time": 阿妈成日讲; jieba's dictionary has no Cantonese)
_ZH_NOT_NAMES |= frozenset(("周" + d for d in "一二三四五六日天末")) | frozenset(("成日", "成晚", "成世"))
# the numerals a school year, a placeholder or an age ends with (高三, 张三, 孙子三岁)
_ZH_NUMERALS = "一二三四五六七八九十两"


_NOT_PATIENT_BEFORE = re.compile(
    r"(?:\b(?:dr|doctor|prof|professor|nurse|np|pa-c|rn|surgeon|consultant|pharmacist|therapist|dietitian"
    r"|midwife)\.?,?\s+"
    r"|\b(?:i|we)\s+(?:just\s+)?(?:read|heard|saw)(?:\s+(?:online|somewhere|on the news|in the news|in an "
    r"article))?\s+that\s+"
    r"|\b(?:the\s+)?(?:actor|actress|singer|celebrity|president|senator|rapper|footballer|athlete|comedian"
    r"|author|"
    r"presenter|broadcaster|star|musician|astronaut|billionaire|scientist|physician|inventor|poet|novelist"
    r"|painter|philosopher|composer|emperor|king|queen|saint)\s+"
    # a historical figure asked about ("Who was William Osler?")
    r"|\bwho\s+was\s+)$",
    I,
)


def _is_name(candidate: str) -> bool:
    words = [w.lower().replace("'", "").replace("’", "") for w in candidate.split()]
    return bool(words) and not any(w in _NOT_NAMES or w.rstrip("s") in _NOT_NAMES for w in words)


def _matched_names(patterns: list[tuple[GatedPattern, int]], text: str, hits: Hits) -> Iterator[Span]:
    for pat, group in patterns:
        for m in run(pat, text, hits):
            start, end = m.span(group)
            # keep the words up to the first one that is not a name ("joan and she" -> "joan")
            words = re.sub(r"['’]s$", "", m.group(group)).split()
            cut = next((i for i, w in enumerate(words) if not _is_name(w)), len(words))
            words = words[:cut]
            if words and _is_name(" ".join(words)):
                yield start, start + len(" ".join(words)), "PERSON"


def relatives_named(text: str, hits: Hits) -> Iterator[Span]:
    """A relative's name after "our/his/her/their <relative>", or known by what follows ("Wife Fatimah is
    NOK"); input rails only."""
    yield from _matched_names(_RELATION_NAME_RES, text, hits)
    for m in run(_ZH_KIN_FULL, text, hits):
        yield m.start(1), m.end(1), "PERSON"
        yield m.start(2), m.end(2), "PERSON"


def names(text: str, hits: Hits) -> Iterator[Span]:
    yield from _matched_names(_NAME_RES, text, hits)
    for at in hits.get(_REL_LABEL, ()):
        m = _REL_LABEL_AT.match(
            text, at + 1
        )  # the literal starts at its edge character (-1: the text's start)
        if m is not None:
            words = m.group(1).split()
            if _is_name(words[0]) and _is_name(m.group(1)):
                yield m.start(1), m.end(1), "PERSON"
    for m in run(_REL_LOWER, text, hits):
        if _is_name(m.group(0)[m.start(1) - m.start() :]):
            yield m.start(1), m.end(2) if m.group(2) else m.end(1), "PERSON"
    for m in run(_TWO_CAPS, text, hits):
        if (
            m.group(1).lower() in _FIRST_NAMES
            and _is_name(m.group(2))
            and not _NOT_PATIENT_BEFORE.search(text, max(0, m.start() - 40), m.start())
        ):
            yield m.start(1), m.end(2), "PERSON"
    for m in run(_ZH_FAMILIAR_COMPOUND, text, hits):
        yield m.start(), m.end(), "PERSON"
    for m in run(_ZH_DOT_NAME, text, hits):
        if not any(part in _FAMOUS_TRANSLIT for part in re.split("[·•‧・]", m.group())):
            yield m.start(), m.end(), "PERSON"
    for m in run(_ZH_NICK_FULL, text, hits):
        yield m.start(1), m.end(1), "PERSON"
        yield m.start(2), m.end(2), "PERSON"
    for m in (*run(_ZH_NAME, text, hits), *run(_ZH_NAME_BEFORE, text, hits), *run(_ZH_NEIGHBOUR, text, hits)):
        start, end = m.span(1)
        name = m.group(1)
        if (
            "某" in name
            or name[:2] in _ZH_NOT_NAMES
            or any(_ZH_TITLE.match(text, start + i) for i in (1, 2, len(name)))
        ):
            continue
        if len(name) == 3 and name[2] in _ZH_STOP:
            name, end = name[:2], end - 1
        # a school year or a placeholder, not a name: "我表弟高三", "张三"; a frequent word ("我妈白内障")
        if (
            name[-1] in _ZH_STOP
            or (len(name) == 2 and name[1] in _ZH_NUMERALS)
            # an age or a count: "孙子三岁了" (孙 is a surname)
            or (name[-1] in _ZH_NUMERALS and text[end : end + 1] in "岁个年周天月")
            or zh_words.everyday_words().get(name, 0) >= zh_words.RULE_VETO_FREQ
        ):
            continue
        yield start, end, "PERSON"


# what a familiar name is made of: 老 or 小 and a surname (老王, 小李), 阿 and a name character (阿强); the
# name model proposes these, and model_names reads them with their own exclusions
FAMILIAR_NAME = re.compile("[老小阿][\u4e00-\u9fff]")
