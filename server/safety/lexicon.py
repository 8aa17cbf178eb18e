"""Person-name lexicons from packages that ship their data: Faker's locale providers (given names and
surnames of many locales, Latin script; Chinese given names and surnames with their weights; Taiwan's
Wade-Giles and the mainland's pinyin romanisations), read once at first use, plus the small romanisation
tables Faker lacks (Hong Kong Cantonese, Singapore and Malaysia Hokkien/Teochew, Malay and Tamil patronymic
connectors).

Why Faker and not `names-dataset`: that package's wheel is 56 MB and it needs about 3.2 GB of memory to load
(its own README), far beyond the slim gateway image; its data also comes from the 2021 Facebook scrape.
"""

from __future__ import annotations

import importlib
from functools import cache

# Locales whose providers carry Latin-script name lists (Chinese names are recognised by their surname
# tables and context in phi/names.py)
_LOCALES = (
    "en_US", "en_GB", "en_IN", "en_IE", "en_NZ", "es_ES", "es_MX", "fr_FR", "de_DE", "it_IT", "pt_BR",
    "pt_PT", "nl_NL", "pl_PL", "sv_SE", "no_NO", "da_DK", "fi_FI", "cs_CZ", "hu_HU", "ro_RO", "tr_TR",
    "id_ID", "vi_VN", "tl_PH", "fil_PH", "zh_TW", "zh_CN", "ja_JP", "ko_KR",
)  # fmt: skip
_FIELDS = ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary", "last_names")
_GIVEN_FIELDS = _FIELDS[:4]


def _provider(locale: str):  # noqa: ANN202 - Faker's Provider classes have no common base worth naming
    try:
        return importlib.import_module(f"faker.providers.person.{locale}").Provider
    except (ImportError, AttributeError):
        return None


# the name model's lexicons read every Latin-script locale Faker ships, accented names included ("Raphaël",
# "Nguyễn"): a lexicon is evidence, and the broader it is the less a name depends on its context
_ALL_LATIN = (
    *_LOCALES, "en_AU", "en_CA", "en_NZ", "en_PH", "en_KE", "en_NG", "en_PK", "fr_CA", "fr_QC", "fr_BE",
    "fr_CH", "de_AT", "de_CH", "es_AR", "es_CO", "es_CL", "it_CH", "nl_BE", "sk_SK", "sl_SI", "hr_HR",
    "lt_LT", "lv_LV", "et_EE", "ga_IE", "sw", "yo_NG", "zu_ZA", "tw_GH", "az_AZ", "uz_UZ",
)  # fmt: skip


def _latin(fields: tuple[str, ...], locales: tuple[str, ...] = _LOCALES, ascii_only: bool = True) -> set[str]:
    out: set[str] = set()
    for locale in locales:
        provider = _provider(locale)
        for field in fields if provider is not None else ():
            names = getattr(provider, field, None) or ()
            if not isinstance(names, (list, tuple, dict)):
                continue  # a provider that computes its names (a property) has no list to read
            if ascii_only:  # the output guard's list, as it has always been
                out.update(n.lower() for n in names if isinstance(n, str) and n.isascii() and n.isalpha())
            else:  # Latin letters with accents; cased scripts only (no Han, Thai, Devanagari)
                out.update(
                    n.lower() for n in names if isinstance(n, str) and n.replace("-", "").isalpha()
                    and n[0].lower() != n[0] and n[0] < "\u0250"
                )  # fmt: skip
    return out


@cache
def latin_names() -> frozenset[str]:
    """Lower-cased given names and surnames written in Latin letters."""
    out = _latin(_FIELDS)
    if not out:  # the package is a dependency: without it names would go out unheld, so say so at once
        raise RuntimeError("the safety layer needs Faker's name lists: pip install 'faker>=40'")
    return frozenset(out)


# Hong Kong (Cantonese), Singapore and Malaysia (Hokkien, Teochew, Hakka) romanisations: Faker has no locale
# for them, and they are how these patients' names appear on identity cards and forms ("CHAN Tai Man",
# "Tan Ah Kow", "Lim Boon Keng")
HK_SURNAMES = (
    "chan chen cheung chung chow chu choi fung ho hui ip kwok kwan lam lau law lee leung li lo lui lai mak ma"
    " mok ng poon siu so tam tang tse tsang tsui wong wan wu yau yeung yip yu yuen kong kan ko fok hung"
    " shum sze szeto auyeung au chiu chong chau cheng kam kot lung man pang sin tai tong tsoi wai yim"
).split()
HK_GIVEN = (
    "tai man siu ming ka wai kin chi yan wing kwok hung mei ling fung sze hoi yee lok chun pui shan suet"
    " yuk kit tsz hin ho long lai kam fai kei yu bo nga ching wah keung tung shing kwan chak lun sum yin"
    " wan chiu cheuk hei yat ngai choi fong mui oi sau po kiu on"
).split()
SG_SURNAMES = (
    "tan lim lee ng ong wong goh chua chan koh teo ang yeo tay ho low toh sim chong chia seah heng quek"
    " khoo teh ooi loh foo soh phua neo pang yap leong wee kwek lau tang hui lui poh gan aw"
).split()
SG_GIVEN = (
    "ah kow boon keng chok tong hock seng kim beng huat eng hwee siew leng swee choo bee geok lian kiat"
    " kok wee meng soon hong guan chye peng hui yong liang jun jie xin wei"
).split()
# Malay and Tamil patronymics join a given name to a father's ("Ahmad bin Ismail", "Rajesh s/o Muthu")
CONNECTORS = frozenset(
    "bin binti bte bt b. a/l a/p s/o d/o al el van von de da del della di du la le".split()
)
# syllables of pinyin names (the ones given names are made of; surnames come from Faker's table)
PINYIN_GIVEN = (
    "wei fang xiu ying jian guo hua ming li na jing hong yu hui lan zhi qiang jun tao ping xin yan lin chen"
    " hao yi zi han rui xuan jia qi yue xiao mei ling yun hai bo gang lei peng fei chao bin tian kai wen"
    " jie lu ning dong xue zhen shu qing juan xia feng long hui min yong de hu an le shan cheng kang rong"
    " zhong ju yao ao meng jin xiang chun hong qin jiao shuang"
).split()


@cache
def given_names() -> frozenset[str]:
    """Lower-cased Latin-script given names (Faker's first-name fields of every Latin locale above, and the
    romanised Japanese ones: "Hiroshi", "Yumiko")."""
    return frozenset(_latin(_GIVEN_FIELDS, _ALL_LATIN, ascii_only=False) | _romanised_japanese("first"))


def _romanised_japanese(part: str) -> set[str]:
    provider = _provider("ja_JP")
    names = getattr(provider, f"{part}_romanized_names", None) or ()
    return {n.lower() for n in names if isinstance(n, str) and n.isascii() and n.isalpha()}


@cache
def surnames() -> frozenset[str]:
    """Lower-cased Latin-script surnames, the romanised Chinese and Japanese ones included."""
    out = _latin(("last_names",), _ALL_LATIN, ascii_only=False) | set(HK_SURNAMES) | set(SG_SURNAMES)
    out |= _romanised_japanese("last")
    for locale in ("zh_CN", "zh_TW"):
        provider = _provider(locale)
        out.update(n.lower() for n in getattr(provider, "last_romanized_names", ()) or ())
    return frozenset(out)


@cache
def romanised_syllables() -> frozenset[str]:
    """Syllables of romanised Chinese given names: pinyin, Wade-Giles (Taiwan), Cantonese, Hokkien."""
    out = set(PINYIN_GIVEN) | set(HK_GIVEN) | set(SG_GIVEN) | set(HK_SURNAMES) | set(SG_SURNAMES)
    for locale in ("zh_CN", "zh_TW"):
        provider = _provider(locale)
        for field in ("first_romanized_names", "last_romanized_names"):
            for name in getattr(provider, field, None) or ():
                out.update(part.lower() for part in name.replace("-", " ").split())
    return frozenset(out)


@cache
def chinese_surname_ranks() -> dict[str, int]:
    """Chinese surnames (compound ones included) -> rank by Faker's weights (0 = most common), Simplified and
    Traditional alike (the rails read Traditional as Simplified, but the generator writes both)."""
    weights: dict[str, float] = {}
    for locale in ("zh_CN", "zh_TW"):
        provider = _provider(locale)
        for name, weight in dict(getattr(provider, "last_names", None) or {}).items():
            weights[name] = max(weights.get(name, 0.0), float(weight))
    ranked = sorted(weights, key=lambda n: (-weights[n], n))
    return {name: rank for rank, name in enumerate(ranked)}


# characters common in Chinese given names beyond Faker's few hundred first names (generation names, the
# 1950s-2010s fashions): the featuriser asks "could this character be part of a given name"
CHINESE_GIVEN_EXTRA = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红娥玲芬燕彬鹏辉国建文志海波宁春梅琳晶雪慧颖琪欣"
    "怡婷雅佳嘉俊浩宇轩然博瑞晨昊鑫子涵梓萱诗琦思睿泽一可心悦馨蕾璐瑶菲露凤琴云莲真环淑荣爱妹香月莺媛珍贞"
    "莉娣叶妍茜秋珊莎锦黛青倩姣婉娴瑾婵雁蓓仪荷丹蓉眉君蕊薇菁梦岚婕琰韵园艺咏卿聪澜纯毓昭冰爽琬茗羽希飘"
    "滢馥筠柔竹凝晓欢霄枫芸寒伊亚宜舒影妮宝贝程恒鸿桦骞剑晔瀚亭智灵德福禄寿喜祥贵富生荣成功胜利新民正义"
    "忠孝仁礼信天地金木水火土山林森松柏兴旺发达永长保安康健乐光亮耀宏伦斌彪豪威武雄峰岩石磊坚钢铁军兵"
    "立学武振家庭淳朴美善良颂歌婧琼瑛琳娅姗姝嫣嫦娇媚婀娆娉婷妙妩媛嫱嫒婵娟姣姿婕"
)


@cache
def chinese_given_chars() -> frozenset[str]:
    """Characters of Chinese given names (Faker zh_CN and zh_TW first names, and the list above)."""
    out: set[str] = set(CHINESE_GIVEN_EXTRA)
    for locale in ("zh_CN", "zh_TW"):
        provider = _provider(locale)
        for field in _GIVEN_FIELDS:
            for name in getattr(provider, field, None) or ():
                out.update(name)
    return frozenset(out)


# every syllable of Mandarin pinyin, toneless (the standard inventory): a pinyin name in a chat typed without
# characters is made of these ("Liu Guifen"); Faker's romanised names hold only some of them
PINYIN_SYLLABLES = frozenset(
    """a ai an ang ao ba bai ban bang bao bei ben beng bi bian biao bie bin bing bo bu ca cai can cang cao
    ce cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai chuan chuang chui
    chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei den deng di dia dian diao die
    ding diu dong dou du duan dui dun duo e ei en eng er fa fan fang fei fen feng fo fou fu ga gai gan
    gang gao ge gei gen geng gong gou gu gua guai guan guang gui gun guo ha hai han hang hao he hei hen
    heng hong hou hu hua huai huan huang hui hun huo ji jia jian jiang jiao jie jin jing jiong jiu ju
    juan jue jun ka kai kan kang kao ke kei ken keng kong kou ku kua kuai kuan kuang kui kun kuo la lai
    lan lang lao le lei leng li lia lian liang liao lie lin ling liu lo long lou lu luan lun luo lv lve
    ma mai man mang mao me mei men meng mi mian miao mie min ming miu mo mou mu na nai nan nang nao ne
    nei nen neng ni nian niang niao nie nin ning niu nong nou nu nuan nuo nv nve o ou pa pai pan pang
    pao pei pen peng pi pian piao pie pin ping po pou pu qi qia qian qiang qiao qie qin qing qiong qiu
    qu quan que qun ran rang rao re ren reng ri rong rou ru rua ruan rui run ruo sa sai san sang sao se
    sen seng sha shai shan shang shao she shei shen sheng shi shou shu shua shuai shuan shuang shui shun
    shuo si song sou su suan sui sun suo ta tai tan tang tao te teng ti tian tiao tie ting tong tou tu
    tuan tui tun tuo wa wai wan wang wei wen weng wo wu xi xia xian xiang xiao xie xin xing xiong xiu xu
    xuan xue xun ya yan yang yao ye yi yin ying yo yong you yu yuan yue yun za zai zan zang zao ze zei
    zen zeng zha zhai zhan zhang zhao zhe zhei zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang
    zhui zhun zhuo zi zong zou zu zuan zui zun zuo""".split()
)
