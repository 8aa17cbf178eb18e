"""Everyday Chinese words, from the dictionary the `jieba` package ships (dict.txt: word, frequency, part of
speech; 349,000 entries).

The name model proposes a surname and one or two characters, and 白内障, 花生, 信息 and 解释一 have that
shape (白, 花, 信 and 解 are surnames). A proposal that is an everyday word, or starts with a frequent one,
is no name. Words the dictionary tags as person names (nr: 李建国, 刘德华) are never counted as everyday.
Read from the installed package's data file; jieba itself is not imported (nothing of its segmenter runs).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

MIN_FREQ = 20  # the proposal itself is a word at least this frequent
PREFIX_FREQ = 200  # a three-character proposal starts with a word at least this frequent (解释一, 周六早)
# a name the rules read after a cue (我妈 + ...) is vetoed only when it is itself a frequent word: the cue is
# evidence the model's proposals lack, and the prefix test cost real names there on the blind sets
RULE_VETO_FREQ = 100
_NAME_TAGS = frozenset(("nr", "nrt", "nrfg"))


def _dictionary() -> Path:
    spec = importlib.util.find_spec("jieba")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the jieba package is not installed (a dependency of the gateway)")
    return Path(next(iter(spec.submodule_search_locations))) / "dict.txt"


@cache
def everyday_words() -> dict[str, int]:
    """Two- and three-character words that are not person names, with their frequency (at least MIN_FREQ)."""
    words: dict[str, int] = {}
    with _dictionary().open(encoding="utf-8") as fh:
        for line in fh:
            word, freq, tag = line.split()
            if 2 <= len(word) <= 3 and tag not in _NAME_TAGS and int(freq) >= MIN_FREQ:
                words[word] = int(freq)
    return words


def is_everyday_word(name: str) -> bool:
    """Whether a proposed Chinese name is an everyday word, or starts with a frequent one."""
    words = everyday_words()
    return name in words or (len(name) >= 3 and words.get(name[:2], 0) >= PREFIX_FREQ)
