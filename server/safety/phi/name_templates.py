"""Document templates for the name model's synthetic data: forms, letters, chats, labels, voice transcripts,
CSV and JSON rows, kinship talk, in English and Chinese, with gold PERSON spans.

A template is a string with slots; `expand` fills them and records where each name landed:
  {N} the person's name in a random written form, {Nc} in capitals, {Nl} in lower case, {Nr} "LAST, First",
  {Nh} in Chinese characters when the person has them, {NK} as friends call them (老王, 小李, 阿强), {F} a
  given name or nickname, {R} a relative's full
  name, {Rf} a relative's given name: all gold; and, never gold, {DR} a clinician ("Dr. Okafor", "王医生"),
  {NEG}/{ZNEG} a capitalised non-name (a drug, an eponym, a hospital, a place) or a Chinese word that starts
  with a surname character, {FILL}/{ZFILL} an ordinary sentence, and {DATE} {PHONE} {MRN} {AGE} {PLACE};
  {DRN}/{ZDRN} a clinician named in full ("Dr. Amanda Reyes", "李建华主任"), {CELEB} a public figure in
  the news, {LOW} a lower-case word after "I'm" or "it's" ("scared", "considered"), {PROD} a product or an
  app ("EpiPen"), {ZWORD} a word that starts as a familiar name does ("小时", "阿司匹林"), {ZCALL} what one
calls for after 叫 ("叫车"): names that are no patient's, and words in a name's place, never gold.
The TRAIN and HELDOUT lists share no template: the held-out score is on formats the model never saw.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import opencc

from server.safety.phi.name_cues import _COMPOUND as _COMPOUND_ZH
from server.safety.phi.name_synth import Person, first_name, person, render

EN_TRAIN = [
    ("form", "Patient Name: {N}\nDOB: {DATE}\nMRN: {MRN}\nReason for visit: {FILL}"),
    ("form", "PATIENT: {Nr}\nSex: {SEX}   Age: {AGE}\nReferring: {DR}\n{FILL}"),
    ("form", "Surname: {FAM}\nGiven name(s): {GIV}\nDate of birth: {DATE}"),
    ("form", "Name (as in NRIC): {Nc}\nContact: {PHONE}\nNext of kin: {R}"),
    ("letter", "Dear {DR},\n\nI am writing about my father, {R}, who {FILL}\n\nYours sincerely,\n{N}"),
    ("letter", "To whom it may concern,\n{FILL} This letter confirms that {N} attended on {DATE}.\n{DR}"),
    ("chat", "hi, it's {F} again. {FILL}"),
    ("chat", "my mum {R} has been on {NEG} for two years and {FILL}"),
    ("chat", "{N} here - {FILL} can you call me back on {PHONE}?"),
    ("chat", "asking for my son {Rf}, he is {AGE}. {FILL}"),
    ("chat", "my grandma {Rf} keeps forgetting her {NEG}. {FILL}"),
    ("label", "RX# {MRN}  {Nr}\nTake 1 tablet of {NEG} twice daily\nDr: {DR}"),
    ("label", "SPECIMEN  {Nc}  DOB {DATE}  ward 7B"),
    ("transcript", "Caller: yeah hi um my name's {Nl} and I'm calling about my {NEG} refill\nAgent: {FILL}"),
    ("transcript", "Speaker 2: it's for my husband, his name is {Rl}, he's {AGE}\nSpeaker 1: {FILL}"),
    ("csv", "name,dob,phone\n{N},{DATE},{PHONE}\n{R},{DATE},{PHONE}"),
    ("json", '{"patient_name": "{N}", "dob": "{DATE}", "note": "{FILL}"}'),
    ("running", "{N} was seen today by {DR} at {NEG}. {FILL}"),
    ("running", "{FILL} {N} reports that {FILL}"),
    ("kinship", "Uncle {Rf} and Auntie {F} both have {NEG}; {FILL}"),
    ("kinship", "my wife {R} and my brother-in-law {N} were both at {NEG} last week"),
    ("form", "Pt name: {Nr}    Ward: 7B    Bed: 12\nAllergies: {NEG}"),
    ("form", "Applicant: {N}\nRelationship to patient: {REL}\nPatient: {R}"),
    ("letter", "Hi {F},\n{FILL}\nThanks,\n{DR}"),
    ("letter", "{FILL}\n\nBest wishes\n{N}"),
    ("chat", "this is {Nl}, {FILL}"),
    ("chat", "i'm {Fl} and {FILL}"),
    ("chat", "my nephew {Rf} and his mum {R} both {FILL}"),
    ("chat", "{FILL} - sent on behalf of {N}"),
    ("label", "TO: {Nc}\nFROM: {NEG} Pharmacy\nRX {MRN}"),
    ("label", "{Nr}  {SEX}  {DATE}  {MRN}"),
    ("transcript", "Nurse: and who am I speaking with?\nCaller: {N}. {FILL}"),
    ("transcript", "Caller: it's about my dad {Rl}. {FILL}"),
    ("csv", "{MRN},{Nr},{DATE}\n{MRN},{R},{DATE}"),
    ("json", '{"name": {"family": "{FAM}", "given": "{GIV}"}, "birthDate": "{DATE}"}'),
    ("running", "{FILL} I took {N} to {NEG} on {DATE}. {FILL}"),
    ("running", "Met with {N} and {R} to discuss {NEG}."),
    ("kinship", "Nana {Rf} has {NEG} and my cousin {R} {FILL}"),
    ("kinship", "Auntie {Rf} takes {NEG} every morning and {FILL}"),
    ("kinship", "my brother {Rf} says {FILL}"),
    ("running", "{F} has been on {NEG} since {DATE}; {FILL}"),
    # names in running prose with no cue at all: their letters and the sentence around them are the evidence
    ("running", "{FILL} {N} and I went to {NEG} yesterday."),
    ("running", "Yesterday {N} fell in the garden and {FILL}"),
    ("running", "{FILL} Picked up the {NEG} for {N} this morning."),
    ("running", "I'm worried about {N}; {FILL}"),
    ("running", "Could {N} take {NEG} with {NEG}? {FILL}"),
    ("running", "Can she take {NEG}? (she's {N}, {AGE}, DOB {DATE})"),
    ("running", "{FILL} Please tell {N} that {FILL}"),
    ("running", "{N}, {AGE}, {FILL}"),
    ("negative", "{FILL} We drove past {NEG} to {NEG} and {FILL}"),
    ("negative", "{DR} said {NEG} is fine with {NEG}. {FILL} {FILL}"),
    ("negative", "Will {NEG} help? May I take it with {NEG}? {FILL}"),
    ("negative", "Hope you are well. Grace period ends Monday. {FILL}"),
    ("negative", "{NEG}, {NEG}, {NEG}: {FILL}"),
    ("negative", "{MRN},{NEG},{DATE}\n{MRN};{NEG};{DATE}"),
    ("negative", "Referred from {NEG} to {NEG} by {DR}. {FILL}"),
    ("negative", "{FILL} I read that {NEG} and {NEG} interact. {FILL}"),
    ("negative", "{NEG}\n{FILL}\nSee also {NEG} and {DR}'s clinic."),
    ("negative", "{DRN} said {FILL} {FILL}"),
    ("negative", "My doctor, {DRN}, told me {FILL}"),
    ("negative", "I read that {CELEB} was diagnosed with {NEG}. {FILL}"),
    ("negative", "I'm {LOW} about the {NEG}. It's {LOW} to ask, but {FILL}"),
    ("negative", "This is {LOW}. {FILL} I'm {LOW} and {FILL}"),
    ("negative", "Step 2: {PROD} says {FILL} Then open {PROD} and {FILL}"),
]
EN_HELDOUT = [
    ("form", "Full name: {N}    Phone: {PHONE}\nEmergency contact: {R} ({REL})"),
    ("form", "Name: {Nr}\nD.O.B.: {DATE}\nGP: {DR}"),
    ("letter", "Hello,\n{FILL} Kind regards,\n{N}\n{PHONE}"),
    ("chat", "hey its {Fl} lol. {FILL}"),
    ("chat", "so my daughter {R} got her {NEG} yesterday and {FILL}"),
    ("label", "ALLERGY BAND: {Nc} | {MRN}"),
    ("transcript", "[00:01:12] PATIENT: uh yes this is {Nl} speaking\n[00:01:15] NURSE: {FILL}"),
    ("csv", "{MRN};{Nr};{DATE};{NEG}"),
    ("json", '{"first": "{GIV}", "last": "{FAM}", "mrn": "{MRN}"}'),
    ("running", "Seen with {R}, who {FILL} {FILL}"),
    ("kinship", "Granny {Rf} looks after the kids; {FILL}"),
    ("negative", "{FILL} Ask {DR} about {NEG}. {FILL}"),
]
ZH_TRAIN = [
    ("form", "姓名：{Nh}\n性别：{ZSEX}\n出生日期：{DATE}\n主诉：{ZFILL}"),
    ("form", "患者{Nh}，{ZSEX}，{AGE}岁，{ZFILL}"),
    ("form", "联系人：{Rh}  电话：{PHONE}"),
    ("chat", "我叫{Nh}，{ZFILL}"),
    ("chat", "帮我妈{Rh}问一下，{ZFILL}"),
    ("chat", "我是{Nh}的家属，{ZFILL}"),
    ("chat", "{Nh}先生您好，{ZFILL}"),
    ("kinship", "我外婆{Rh}今年{AGE}岁了，{ZFILL}"),
    ("kinship", "隔壁的{Rh}阿姨{ZFILL}"),
    ("letter", "尊敬的{DR}：\n{ZFILL}\n此致\n敬礼\n{Nh}"),
    ("label", "床号：12  姓名：{Nh}  住院号：{MRN}"),
    ("running", "{Nh}昨天在{ZNEG}做了检查，{ZFILL}"),
    ("romanised", "护照姓名：{Nc}，{ZFILL}"),
    ("form", "患者姓名：{Nh}    科室：心内科\n{ZFILL}"),
    ("form", "投保人：{Nh}\n被保险人：{Rh}\n{ZFILL}"),
    ("chat", "我爸{Rh}和我妈{Rh}都{ZFILL}"),
    ("chat", "你好，我是{Nh}，{ZFILL}"),
    ("chat", "替我奶奶{Rh}挂个号，{ZFILL}"),
    ("kinship", "舅舅{Rh}说{ZFILL}"),
    ("kinship", "我女儿{Rh}上周{ZFILL}"),
    ("kinship", "我哥{Rh}昨天{ZFILL}"),
    ("label", "收货人：{Nh}\n电话：{PHONE}\n地址：见备注"),
    ("letter", "{ZFILL}\n\n签名：{Nh}\n日期：{DATE}"),
    ("running", "{ZFILL}{Nh}的妈妈说{ZFILL}"),
    ("transcript", "护士：请问患者叫什么名字？\n家属：{Nh}。{ZFILL}"),
    ("romanised", "Name: {Nr}\n{ZFILL}"),
    ("negative", "{DR}说{ZNEG}要注意，{ZFILL}{ZFILL}"),
    ("negative", "{ZNEG}和{ZNEG}是什么关系？{ZFILL}"),
    ("negative", "{ZFILL}{ZNEG}的{ZFILL}"),
    ("negative", "我的主治医生{ZDRN}说{ZFILL}"),
    ("negative", "看了{ZDRN}的科普视频，{ZFILL}"),
    ("negative", "{ZFILL}这是{ZNEG}吗？和{ZNEG}一样吗？"),
    ("chat", "{NK}今天又说{ZFILL}"),
    ("chat", "{NK}，你妈妈{Rh}的{ZFILL}"),
    ("chat", "[微信群] {NK} 19:45：{ZFILL}"),
    ("kinship", "{NK}他爸今早{ZFILL}"),
    ("kinship", "{NK}的奶奶{ZFILL}"),
    ("running", "{ZFILL}邻居{NK}说{ZFILL}"),
    ("chat", "我是{DATE}生的，叫{Nh}，{ZFILL}"),
    ("running", "{ZFILL}病人是我舅舅，叫{Nh}，{ZFILL}"),
    ("negative", "{ZFILL}这个叫{ZNEG}吗？"),
    ("negative", "赶紧叫{ZCALL}，{ZFILL}"),
    ("negative", "{ZWORD}{ZFILL}"),
    ("negative", "{ZFILL}{ZWORD}以后，{ZFILL}"),
    ("negative", "{ZWORD}、{ZWORD}和{ZWORD}都{ZFILL}"),
    ("negative", "请问{ZWORD}和{ZWORD}有什么区别？{ZWORD}呢？"),
    ("negative", "用了{ZWORD}，又加了{ZWORD}，{ZFILL}"),
    ("chat", "我和{NK}一起去的，{ZFILL}"),
    ("chat", "{NK}说{ZFILL}"),
    ("running", "{ZFILL}后来{NK}也{ZFILL}"),
    ("sms", "【市人民医院】尊敬的{Nh}患者，您预约的门诊已成功，{ZFILL}"),
    ("sms", "【中心医院】{Nh} 您好，{ZFILL}"),
    ("romanised", "名字 {N}（{Nh}），{ZFILL}"),
    ("romanised", "{ZFILL}我外婆 {N}（{Nh}）{ZFILL}"),
    ("negative", "{ZNEG}患者{ZFILL}"),
    ("negative", "尊敬的{DR}您好，{ZFILL}"),
    ("negative", "{ZFILL}{NEG}（{ZNEG}）{ZFILL}"),
]
ZH_HELDOUT = [
    ("form", "就诊人：{Nh}  身份证号见附件\n{ZFILL}"),
    ("chat", "我老公{Rh}最近{ZFILL}"),
    ("chat", "{Nh}女士，{ZFILL}"),
    ("label", "寄件人：{Nh} 收件人：{Rh} {PHONE}"),
    ("transcript", "患者家属：嗯，病人叫{Nh}，{ZFILL}"),
    ("running", "{ZFILL}{Nh}的检查结果出来了。"),
    ("romanised", "English name on card: {N}\n{ZFILL}"),
    ("chat", "昨晚{NK}又{ZFILL}"),
    ("negative", "{ZFILL}请问{DR}，{ZNEG}怎么办？"),
    ("sms", "亲爱的{Nh}家长：{ZFILL}"),
]
FILL_EN = [
    "has had a cough for three weeks.", "The rash got worse after the second dose.",
    "is the blood pressure of 135/85 too high?", "we were told to repeat the scan in six months.",
    "she has been dizzy since Tuesday.", "Should he keep taking it with food?",
    "The swelling in the left ankle has not gone down.", "I need a copy of the discharge summary.",
    "Thank you for seeing us so quickly.", "He is allergic to penicillin.",
    "Can the appointment be moved to next week?", "She finished the course of antibiotics.",
    "The pharmacy said the prescription was not ready.", "His sugar readings are around 8.",
    "We are worried about the weight loss.", "Please advise on the dose.",
]  # fmt: skip
FILL_ZH = [
    "最近一直咳嗽，晚上更厉害。", "血压有点高，需要调整药量吗？", "上周做了胃镜，结果还没出来。",
    "吃了药以后头晕。", "请问下次复查是什么时候？", "膝盖疼了两个月了。", "医生说要多喝水。",
    "血糖控制得不太好。", "想预约下周的门诊。", "过敏性鼻炎又犯了。", "出院小结在哪里打印？",
    "最近睡眠不好，经常醒。", "高血压吃什么药比较好？", "白细胞偏低要紧吗？", "周围的人都说要去大医院看。",
]  # fmt: skip
NEG_EN = [
    "Parkinson's", "Crohn's disease", "Hashimoto's", "Down syndrome", "Bell's palsy", "Tylenol", "Advil",
    "Lipitor", "Metformin", "Ozempic", "St. Mary's Hospital", "Mayo Clinic", "Queen Mary Hospital",
    "Mount Sinai", "New York", "Hong Kong", "Kuala Lumpur", "Singapore General", "Monday", "Christmas",
    "Medicare", "Walgreens", "Boots", "Apple Watch", "Google", "Graves' disease", "Addison's", "Lyme",
    "Alzheimer's", "Tamiflu", "Warfarin", "Eliquis", "King's College Hospital", "Victoria Park",
]  # fmt: skip
# medicines patients name (brands and generics): capitalised words that are no one, drawn by the trainer's
# word documents (not by the templates, whose held-out documents stay as they were)
DRUGS_EN = [
    "Zyrtec", "Claritin", "Benadryl", "Allegra", "Sudafed", "Nurofen", "Panadol", "Calpol", "Motrin", "Aleve",
    "Excedrin", "Xanax", "Valium", "Ativan", "Zoloft", "Prozac", "Lexapro", "Wellbutrin", "Seroquel",
    "Abilify", "Lamictal", "Keppra", "Depakote", "Ritalin", "Adderall", "Concerta", "Synthroid", "Eltroxin",
    "Lasix", "Norvasc", "Zestril", "Crestor", "Zocor", "Plavix", "Xarelto", "Coumadin", "Januvia",
    "Jardiance", "Trulicity", "Mounjaro", "Wegovy", "Victoza", "Lantus", "Humalog", "NovoRapid", "Ventolin",
    "Seretide", "Symbicort", "Flovent", "Singulair", "Nexium", "Losec", "Zantac", "Pepcid", "Gaviscon",
    "Imodium", "Buscopan", "Augmentin", "Keflex", "Zithromax", "Cipro", "Valtrex", "Diflucan", "Flagyl",
    "Prednisone", "Medrol", "Voltaren", "Celebrex", "Tramadol", "Oxycontin", "Suboxone", "Narcan", "Viagra",
    "Cialis", "Yasmin", "Depo-Provera", "Mirena", "Accutane", "Humira", "Enbrel", "Keytruda", "Herceptin",
]  # fmt: skip
# animals people name by their breed ("our old Labrador"), drawn by the trainer's word documents too
BREEDS_EN = [
    "Labrador", "Retriever", "Spaniel", "Beagle", "Poodle", "Terrier", "Collie", "Husky", "Dachshund",
    "Chihuahua", "Rottweiler", "Dalmatian", "Greyhound", "Whippet", "Schnauzer", "Pomeranian", "Corgi",
    "Shih Tzu", "Alsatian", "Siamese", "Persian", "Ragdoll", "Bengal", "Maine Coon",
]  # fmt: skip
# products and apps, capitalised inside the word ({PROD}; a list of their own, so that adding one leaves the
# held-out documents, which draw from NEG_EN, as they were)
PROD_EN = ["EpiPen", "WhatsApp", "MyChart", "FaceTime", "PowerPoint", "HealthKit", "FreeStyle Libre",
           "OneTouch"]  # fmt: skip
NEG_ZH = [
    "高血压", "白细胞", "周围", "黄疸", "方便", "常规", "北京协和医院", "黄浦区", "金黄色葡萄球菌",
    "马上", "石膏", "温度", "王府井", "林口长庚", "司机", "于是", "左侧", "程度", "包括", "钱包", "项目",
    "华山医院", "杨浦区", "何时", "任何", "许多", "陈旧性", "江湖", "安全", "关节", "管理", "龙头",
]  # fmt: skip
# words that start as a familiar name does (老 or 小 and a surname, 阿 and a name character): never gold
ZWORD_ZH = [
    "小时", "老师", "小于", "老公", "小米粥", "老年人", "小区", "老毛病", "小孩", "阿司匹林", "阿莫西林",
    "阿奇霉素", "小龙虾", "老黄历", "小便", "小儿", "老人", "小腿", "阿姨", "老伴", "小组", "老家",
    "小朋友", "阿胶", "小肠", "老花眼", "小白鼠", "老鼠", "小麦", "小方块", "小心", "老板", "小卖部",
    "阿尔茨海默病", "阿托品", "小金库", "老常规", "小高峰", "小包装", "老干部", "阿托伐他汀", "阿卡波糖",
    "阿昔洛韦", "阿维菌素", "阿法骨化醇", "阿哌沙班", "阿达木单抗", "阿米卡星", "阿糖胞苷", "阿仑膦酸钠",
    "阿替洛尔", "阿立哌唑", "阿普唑仑", "阿德福韦", "阿比多尔", "阿米替林", "阿根廷", "阿富汗", "阿拉伯",
    "阿里巴巴", "小时候", "小范围", "小程序", "老花镜", "小汤圆", "小苏打", "小柴胡", "小红书", "小康",
    "小满", "老祖宗", "老路", "老房子", "老司机", "小游戏", "小叶增生", "小项目", "小关节", "老年斑",
    "小常识", "小区别", "小麦粉", "小商品", "老毛病", "小孔", "小江南", "老江湖", "小单间", "小章鱼",
]  # fmt: skip
# what one calls for ("叫车"): 叫 and no name
ZCALL_ZH = ["车", "救护车", "醒他", "家属来", "司机", "护士", "保安", "了外卖", "邻居帮忙", "高年资医生"]
_RELATIONS = ("daughter", "son", "wife", "husband", "mother", "father", "brother", "sister", "friend")
_DOCTOR_SURNAMES = ("Okafor", "Chen", "Patel", "Smith", "Nguyen", "Müller", "García", "Tan", "Wong", "Kim")
_ZH_DOCTORS = ("王医生", "张主任", "李大夫", "陈教授", "刘护士", "黄医师", "林医生")
_TITLES_EN = ("Dr. ", "Dr ", "Doctor ", "Prof. ", "Nurse ")
_TITLES_ZH = ("医生", "主任", "大夫", "教授", "护士", "医师")
LOW_EN = (
    "scared worried putting summarising yawning considered expressed fine okay sure tired exhausted pregnant"
    " diabetic allergic taking trying looking hoping wondering asking getting feeling writing calling reading"
    " going not still really so just currently due about"
).split()
_S2T = opencc.OpenCC("s2t")
_SLOT = re.compile(r"\{([A-Za-z]+)\}")


@dataclass
class Doc:
    text: str
    spans: list[tuple[int, int]]
    fmt: str
    locale: str
    lang: str


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1930, 2020), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice((f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{y}年{m}月{d}日"))


def expand(template: str, fmt: str, lang: str, locale: str, rng: random.Random) -> Doc:
    """Fill a template with a person of `locale` (and a relative of the same locale)."""
    p, rel = person(locale, rng), person(locale, rng)
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    at = 0
    traditional = locale in ("zh_TW", "zh_HK") and lang == "zh"

    def put(text: str, gold: bool = False) -> None:
        nonlocal at
        if gold:
            spans.append((at, at + len(text)))
        pieces.append(text)
        at += len(text)

    def name_of(who: Person, slot: str) -> str:
        if slot in ("Nh", "Rh"):
            return who.hanzi or render(who, rng, "first_last")
        if slot == "Nc":
            return render(who, rng, "caps")
        if slot in ("Nl", "Rl"):
            return render(who, rng, rng.choice(("lower", "lower_last_first")))
        if slot == "Nr":
            return render(who, rng, rng.choice(("last_comma_first", "last_comma")))
        if slot in ("F", "Rf"):
            return first_name(who, rng) if lang == "zh" or not who.hanzi else first_name(who, rng)
        if slot == "Fl":
            return first_name(who, rng).lower()
        return render(who, rng) if lang == "zh" or rng.random() < 0.85 else render(who, rng, "first_last")

    pos = 0
    for m in _SLOT.finditer(template):
        lit = template[pos : m.start()]
        put(_S2T.convert(lit) if traditional else lit)
        pos = m.end()
        slot = m.group(1)
        if slot in ("N", "Nc", "Nl", "Nr", "Nh", "F", "Fl"):
            name = name_of(p, slot)
            if lang == "en" and p.hanzi and name == p.hanzi:
                name = render(p, rng, "first_last")
            put(name, gold=True)
        elif slot in ("R", "Rf", "Rl", "Rh"):
            name = name_of(rel, slot)
            if lang == "en" and rel.hanzi and name == rel.hanzi:
                name = render(rel, rng, "last_first")
            put(name, gold=True)
        elif slot == "NK":
            put(_familiar(p, rng, traditional), gold=True)
        elif slot == "FAM":
            put(p.family.upper() if rng.random() < 0.5 else p.family, gold=True)
        elif slot == "GIV":
            put(" ".join(p.given), gold=True)
        elif slot in ("DRN", "CELEB", "ZDRN"):  # a named person who is not the patient: never gold
            other = person(locale, rng)
            if slot == "ZDRN":
                title = rng.choice(_TITLES_ZH)
                text = (other.hanzi or render(other, rng, "first_last")) + title
                put(_S2T.convert(text) if traditional else text)
            else:
                text = render(other, rng, "first_last")
                put(rng.choice(_TITLES_EN) + text if slot == "DRN" else text)
        else:
            put(_filler(slot, lang, rng, traditional))
    lit = template[pos:]
    put(_S2T.convert(lit) if traditional else lit)
    return Doc("".join(pieces), spans, fmt, locale, lang)


def _familiar(p: Person, rng: random.Random, traditional: bool) -> str:
    """How friends and family call a person: 老 or 小 and the surname, or 阿 and the last name character."""
    hanzi = p.hanzi or "王"
    surname = hanzi[:2] if hanzi[:2] in _COMPOUND_ZH else hanzi[0]
    text = "阿" + hanzi[-1] if rng.random() < 0.3 and len(hanzi) > 1 else rng.choice("老小") + surname
    return _S2T.convert(text) if traditional else text


def _filler(slot: str, lang: str, rng: random.Random, traditional: bool) -> str:
    if slot == "DR":
        if lang == "zh":
            text = rng.choice(_ZH_DOCTORS)
            return _S2T.convert(text) if traditional else text
        return rng.choice(("Dr. ", "Dr ", "Doctor ", "Prof. ", "Nurse ")) + rng.choice(_DOCTOR_SURNAMES)
    if slot == "NEG":
        return rng.choice(NEG_EN)
    if slot in ("ZNEG", "ZFILL"):
        text = rng.choice(NEG_ZH if slot == "ZNEG" else FILL_ZH)
        return _S2T.convert(text) if traditional else text
    if slot in ("ZWORD", "ZCALL"):
        text = rng.choice(ZWORD_ZH if slot == "ZWORD" else ZCALL_ZH)
        return _S2T.convert(text) if traditional else text
    if slot == "FILL":
        return rng.choice(FILL_EN)
    if slot == "DATE":
        return _date(rng)
    if slot == "PHONE":
        return rng.choice(("415-555-0132", "+65 9123 4567", "138 0013 8000", "0412 345 678", "6123 8876"))
    if slot == "MRN":
        return rng.choice(("MRN00482913", "H2301-4471", "A1234567", "ZY20230981"))
    if slot == "AGE":
        return str(rng.randint(2, 95))
    if slot == "SEX":
        return rng.choice(("F", "M", "Female", "Male"))
    if slot == "ZSEX":
        return rng.choice(("男", "女"))
    if slot == "REL":
        return rng.choice(_RELATIONS)
    if slot == "LOW":
        return rng.choice(LOW_EN)
    if slot == "PROD":
        return rng.choice(PROD_EN)
    return ""


def documents(n: int, heldout: bool, seed: int) -> list[Doc]:
    """`n` documents from the TRAIN (or HELDOUT) templates and locales, deterministic for a seed."""
    from server.safety.phi.name_synth import HELDOUT_LOCALES, TRAIN_LOCALES

    rng = random.Random(seed)
    locales = HELDOUT_LOCALES if heldout else TRAIN_LOCALES
    en, zh = (EN_HELDOUT, ZH_HELDOUT) if heldout else (EN_TRAIN, ZH_TRAIN)
    zh_locales = [loc for loc in locales if loc.startswith("zh")]
    out = []
    for _ in range(n):
        if rng.random() < 0.45 and zh_locales:
            fmt, template = rng.choice(zh)
            locale = rng.choice(zh_locales) if fmt != "romanised" else rng.choice(locales)
            out.append(expand(template, fmt, "zh", locale, rng))
        else:
            fmt, template = rng.choice(en)
            out.append(expand(template, fmt, "en", rng.choice(locales), rng))
    return out
