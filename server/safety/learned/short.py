"""The learned detectors' scores for a short view (a chat question), in plain Python.

A chat question is a few dozen characters. There numpy's fixed cost per call (about 40 calls to featurise and
score) is most of the time, and after an idle moment its code and tables are out of the CPU's caches: between
paced requests on the 2-core machine the numpy path took 0.37 ms of a 30-character question's 0.9 ms of input
rails. This path computes featurise's features with Python ints (masked to 64 bits where numpy's uint64
wraps; a word's hashes are cached by the word) and adds their weights in exactly the order segment_sums and
window_max_columns do, so its scores are the numpy path's bit for bit (tests compare them on thousands of
random texts).
"""

from __future__ import annotations

import re
from bisect import bisect_right

import numpy as np

from server.safety.learned import model as m

_MASK = (1 << 64) - 1
_GOLD, _SHIFT, _S21 = int(m._GOLD), int(m._SHIFT), int(m._S21)
_PAIR, _START, _BASE = int(m._PAIR), int(m._START), m._BASE
_T_WORD, _T_BIGRAM, _T_PREFIX = int(m._T_WORD), int(m._T_BIGRAM), int(m._T_PREFIX)
_CLASS_OF = m._CLASS.tobytes()
_CJK, _SPACE = m._CJK, m._SPACE

# the character classes of model._CLASS as patterns (words: runs of [a-z0-9]; a test checks the table)
_WORDS = re.compile(r"[a-z0-9]+")
_CJK_RUNS = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_CUTS = re.compile("[.!?\n\u3002\uff01\uff1f\uff1b;]")
_SPACES = re.compile("[ \t\u3000]")
_WORD_CACHE_MAX = 1 << 16


def _bucket(key: int) -> int:
    return ((key * _GOLD) & _MASK) >> _SHIFT


def _is_cjk(ch: str) -> bool:
    c = ord(ch)
    return c <= 0xFFFF and _CLASS_OF[c] == _CJK


class ShortScorer:
    """Every category's score for views of at most SHORT characters, equal to LearnedModel's numpy path."""

    def __init__(self, weights: np.ndarray, bias: np.ndarray, windows: np.ndarray) -> None:
        self._k = weights.shape[1]
        self._w = memoryview(np.ascontiguousarray(weights, dtype=np.float64).reshape(-1))
        self._bias = [float(b) for b in bias]
        self._windows = [int(w) for w in windows]
        self._segment = [float(x) for x in weights[m.SEGMENT]]
        self._words: dict[str, tuple[int, int, int]] = {}  # word -> (hash, unigram, prefix bucket)

    def _row(self, bucket: int) -> list[float]:
        at = bucket * self._k
        return self._w[at : at + self._k].tolist()

    def _add(self, acc: list[float], bucket: int) -> None:
        if bucket != m.NULL:  # NULL's weights are 0: adding them changes nothing
            at = bucket * self._k
            w = self._w
            for j in range(self._k):
                acc[j] += w[at + j]

    def _word(self, word: str) -> tuple[int, int, int]:
        hit = self._words.get(word)
        if hit is None:
            h, power, hp = 0, 1, 0
            for i, ch in enumerate(word):  # sum of cp * BASE**offset, mod 2**64
                h = (h + ord(ch) * power) & _MASK
                power = (power * _BASE) & _MASK
                if i + 1 == m.PREFIX:
                    hp = h
            prefix = _bucket(hp ^ _T_PREFIX) if len(word) > m.PREFIX else m.NULL
            if len(self._words) >= _WORD_CACHE_MAX:
                self._words.clear()
            hit = self._words[word] = (h, _bucket(h ^ _T_WORD), prefix)
        return hit

    def scores(self, view: str) -> list[float]:
        text = view.replace("'", "")
        cjk_runs = list(_CJK_RUNS.finditer(text))
        cuts = [x.start() for x in _CUTS.finditer(text)]
        if cjk_runs:  # a space touching a CJK character cuts
            n = len(text)
            near = [
                i
                for i in (x.start() for x in _SPACES.finditer(text))
                if (i > 0 and _is_cjk(text[i - 1])) or (i + 1 < n and _is_cjk(text[i + 1]))
            ]
            if near:
                cuts = sorted(cuts + near)
        # segment -> its features' weight rows, in numpy's order: CJK n-grams per character position
        # (segment_sums reduces every position, 0 where no CJK character starts), then words
        sums: dict[int, list[float]] = {}
        if cjk_runs:
            self._cjk_sums(text, cjk_runs, cuts, sums)
        words: dict[int, list[list[float]]] = {}
        prev_h, prev_seg = _START, -1
        for w in _WORDS.finditer(text):
            s = bisect_right(cuts, w.start())
            h, unigram, prefix = self._word(w.group())
            bigram = _bucket((((prev_h if s == prev_seg else _START) * _PAIR + h) & _MASK) ^ _T_BIGRAM)
            contrib = self._row(unigram)
            self._add(contrib, bigram)
            self._add(contrib, prefix)
            words.setdefault(s, []).append(contrib)
            prev_h, prev_seg = h, s
        for s, rows in words.items():
            total = _column_sums(rows, self._k)
            base = sums.get(s)
            sums[s] = total if base is None else [x + y for x, y in zip(base, total)]
        if not sums:
            return list(self._bias)
        segs = [[x + o for x, o in zip(sums[s], self._segment)] for s in sorted(sums)]
        return [b + _window_max(segs, j, win) for j, (b, win) in enumerate(zip(self._bias, self._windows))]

    def _cjk_sums(
        self, text: str, runs: list[re.Match[str]], cuts: list[int], sums: dict[int, list[float]]
    ) -> None:
        """Each segment's sum of its CJK characters' 1-3-grams (a run has no space and no cut inside)."""
        at: dict[int, list[float]] = {}  # position -> the n-grams starting there
        segments = set()
        for run in runs:
            cps = [ord(c) for c in run.group()]
            n, start = len(cps), run.start()
            segments.add(bisect_right(cuts, start))
            for i, c in enumerate(cps):
                contrib = self._row(_bucket(c))
                if i + 1 < n:
                    k2 = (c << _S21) | cps[i + 1]
                    self._add(contrib, _bucket(k2))
                    if i + 2 < n:
                        self._add(contrib, _bucket(((k2 << _S21) & _MASK) | cps[i + 2]))
                at[start + i] = contrib
        bounds = [0, *cuts, len(text)]  # segment s spans bounds[s] .. bounds[s + 1]
        zero = [0.0] * self._k
        for s in segments:
            sums[s] = _column_sums([at.get(p, zero) for p in range(bounds[s], bounds[s + 1])], self._k)


def _column_sums(rows: list[list[float]], k: int) -> list[float]:
    """Each column's sum as numpy's add.reduce(rows, axis=0) takes it: the first row, plus numpy's pairwise
    sum of the rest (sequential under 8 values, else 8 interleaved partial sums joined as a tree; a view of
    at most SHORT characters never reaches its 128-value blocks)."""
    out = []
    for j in range(k):
        col = [r[j] for r in rows]
        rest = col[1:]
        n = len(rest)
        if n < 8:
            acc = 0.0
            for x in rest:
                acc += x
        else:
            p = rest[:8]
            i = 8
            while i < n - n % 8:
                for q in range(8):
                    p[q] += rest[i + q]
                i += 8
            acc = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
            for x in rest[i:]:
                acc += x
        out.append(col[0] + acc)
    return out


def _window_max(segs: list[list[float]], j: int, window: int) -> float:
    """window_max_columns for column j: the largest sum over 1 to `window` consecutive segments, the sums
    taken as differences of a running total (numpy's cumsum order)."""
    col = [s[j] for s in segs]
    n = len(col)
    best = max(col)
    if n > 1 and window > 1:
        run = [0.0] * (n + 1)
        total = 0.0
        for i, x in enumerate(col):
            total = col[0] if i == 0 else total + x
            run[i + 1] = total
        for k in range(2, min(window, n) + 1):
            best = max(best, max(run[i + k] - run[i] for i in range(n - k + 1)))
    return best
